/**
 * ssh2 initialises an emscripten module (its Poly1305 WASM, embedded as a data URI) when
 * it is loaded, and that code reads the CommonJS `__dirname`. In the ESM bundle ncc makes
 * for dist/, `__dirname` does not exist, so loading ssh2 throws a ReferenceError (an
 * unhandled rejection that kills the process). Importing this module first defines a
 * global `__dirname` for the moment ssh2 loads; `restoreDirname()` removes it again. The
 * value is never used to read a file (the WASM is inline).
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const scope = globalThis as { __dirname?: string };
const defined = typeof scope.__dirname === 'undefined';
if (defined) scope.__dirname = dirname(fileURLToPath(import.meta.url));

/** Removes the global `__dirname` this module defined, if it did. */
export function restoreDirname(): void {
  if (defined) delete scope.__dirname;
}

/**
 * The one place ssh2 is imported from, so that the bundle can load it: see
 * `esm-dirname.ts`. ESM evaluates imports in order (a bare side-effect import also stops
 * import sorting from moving anything across it), all before this module's body.
 */
import './esm-dirname.js';
import ssh2 from 'ssh2';
import { restoreDirname } from './esm-dirname.js';

restoreDirname();

export default ssh2;

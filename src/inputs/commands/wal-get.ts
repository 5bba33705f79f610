import { isAbsolute, resolve } from 'node:path';
import type { DecryptionSettings } from '../../crypto/age.js';
import { InputError } from '../../errors.js';
import { parseWalFileName, type WalFileName } from '../../postgres/lsn.js';
import type { CommonSettings } from '../common.js';
import { parseDecryption } from '../keys.js';
import { hasControlCharacters, parseRequired } from '../primitives.js';
import type { InputSource } from '../source.js';

export interface WalGetSettings extends CommonSettings {
  readonly command: 'wal-get';
  /** The WAL file asked for (`%f`). */
  readonly file: WalFileName;
  /** Where it is written (`%p`), resolved against the current directory (the data directory). */
  readonly path: string;
  readonly decryption: DecryptionSettings;
}

export function parseWalGet(src: InputSource, common: CommonSettings): WalGetSettings {
  const name = parseRequired(
    src,
    'wal-file',
    'a WAL file name such as 000000010000000000000003 (%f)',
  );
  const file = parseWalFileName(name);
  if (!file)
    throw new InputError(
      'wal-file',
      `Invalid 'wal-file': "${name}". Expected a WAL segment name (24 hex digits, e.g. 000000010000000000000003) or a timeline history file (00000002.history).`,
    );
  const path = parseRequired(src, 'wal-path', 'the path to write the WAL file to (%p)');
  if (hasControlCharacters(path))
    throw new InputError(
      'wal-path',
      "Invalid 'wal-path': contains control characters. Expected a file path (%p).",
    );
  return {
    ...common,
    command: 'wal-get',
    file,
    path: isAbsolute(path) ? path : resolve(process.cwd(), path),
    decryption: parseDecryption(src, true),
  };
}

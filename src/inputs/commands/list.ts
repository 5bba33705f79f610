import { parseSourceDatabase } from '../backup-id.js';
import type { CommonSettings } from '../common.js';
import type { InputSource } from '../source.js';

export interface ListSettings extends CommonSettings {
  readonly command: 'list';
  /** `source-database`: only this database's backups; null: all, with their database. */
  readonly sourceDatabase: string | null;
}

export function parseList(src: InputSource, common: CommonSettings): ListSettings {
  return { ...common, command: 'list', sourceDatabase: parseSourceDatabase(src) };
}

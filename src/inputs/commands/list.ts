import type { CommonSettings } from '../common.js';
import type { InputSource } from '../source.js';

export interface ListSettings extends CommonSettings {
  readonly command: 'list';
}

export function parseList(_src: InputSource, common: CommonSettings): ListSettings {
  return { ...common, command: 'list' };
}

import type { RetentionRules } from '../../retention/policy.js';
import type { CommonSettings } from '../common.js';
import { parseBoolean, parseWholeNumber } from '../primitives.js';
import type { InputSource } from '../source.js';

export interface PruneSettings extends CommonSettings {
  readonly command: 'prune';
  /** keep-last / keep-daily / keep-weekly / keep-monthly / keep-yearly. */
  readonly rules: RetentionRules;
  /** List what would go, delete nothing. */
  readonly dryRun: boolean;
  /** Pruning is refused while the newest complete backup is older than this. */
  readonly maxBackupAgeHours: number;
  /** The verification window of the safety rails. */
  readonly maxVerifyAgeDays: number;
  /** At most this many backups deleted per destination in one run; above it, none is. */
  readonly maxDeletions: number;
}

/** What prune (and backup's prune-after-backup) reads: the rules and the safety rails. */
export type PruneRules = Pick<
  PruneSettings,
  'rules' | 'dryRun' | 'maxBackupAgeHours' | 'maxVerifyAgeDays' | 'maxDeletions'
>;

export function parsePrune(src: InputSource, common: CommonSettings): PruneSettings {
  return { ...common, command: 'prune', ...parsePruneRules(src) };
}

export function parsePruneRules(src: InputSource): PruneRules {
  return {
    rules: {
      last: parseWholeNumber(src, 'keep-last'),
      daily: parseWholeNumber(src, 'keep-daily'),
      weekly: parseWholeNumber(src, 'keep-weekly'),
      monthly: parseWholeNumber(src, 'keep-monthly'),
      yearly: parseWholeNumber(src, 'keep-yearly'),
    },
    dryRun: parseBoolean(src, 'dry-run'),
    maxBackupAgeHours: parseWholeNumber(src, 'max-backup-age-hours', 1),
    maxVerifyAgeDays: parseWholeNumber(src, 'max-verify-age-days', 1),
    maxDeletions: parseWholeNumber(src, 'max-deletions', 1),
  };
}

import { InputError } from '../../errors.js';
import type { CommonSettings } from '../common.js';
import { parseFraction, parseWholeNumber } from '../primitives.js';
import type { InputSource } from '../source.js';

export interface MonitorSettings extends CommonSettings {
  readonly command: 'monitor';
  readonly maxBackupAgeHours: number;
  /** The newest shipped WAL may be at most this old, when the prefix holds any. */
  readonly maxWalAgeMinutes: number;
  readonly maxVerifyAgeDays: number;
  /** Workflow file whose runs give the success rate; null: that check is skipped. */
  readonly backupWorkflow: string | null;
  readonly minSuccessRate: number;
  /** `keep-daily`, as prune reads it: older nights hold one backup a week, none missed. */
  readonly keepDaily: number;
}

/** `backup-workflow`: a workflow file name or numeric id; null when not set. */
export function parseBackupWorkflow(src: InputSource): string | null {
  const workflow = src.get('backup-workflow').trim();
  if (workflow !== '' && !/^[\w.-]+\.ya?ml$|^\d+$/.test(workflow))
    throw new InputError(
      'backup-workflow',
      `Invalid 'backup-workflow': "${workflow}". Expected a workflow file name such as dr-backup.yml (or its numeric id).`,
    );
  return workflow === '' ? null : workflow;
}

export function parseMonitor(src: InputSource, common: CommonSettings): MonitorSettings {
  const backupWorkflow = parseBackupWorkflow(src);
  return {
    ...common,
    command: 'monitor',
    maxBackupAgeHours: parseWholeNumber(src, 'max-backup-age-hours', 1),
    maxWalAgeMinutes: parseWholeNumber(src, 'max-wal-age-minutes', 1),
    maxVerifyAgeDays: parseWholeNumber(src, 'max-verify-age-days', 1),
    backupWorkflow,
    minSuccessRate: parseFraction(src, 'min-success-rate'),
    keepDaily: parseWholeNumber(src, 'keep-daily'),
  };
}

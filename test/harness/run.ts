import { Writable } from 'node:stream';
import { cliInputSource } from '../../src/inputs/source.js';
import { run } from '../../src/main.js';
import { createCliHost, type SummaryTable } from '../../src/report/host.js';

export interface RunOutcome {
  /** The step's outputs. */
  readonly outputs: Record<string, string>;
  /** The failure message, if the step failed. */
  readonly failed: string | undefined;
  /** Everything logged (secrets already redacted by the host, as a user would see it). */
  readonly log: string;
  readonly tables: readonly SummaryTable[];
}

/** Runs a pg-dr command in-process, with inputs given as flags (as the CLI takes them). */
export async function runPgDr(
  inputs: Record<string, string>,
  env: NodeJS.ProcessEnv = {},
): Promise<RunOutcome> {
  const argv = Object.entries(inputs).flatMap(([k, v]) => [`--${k}=${v}`]);
  let log = '';
  const sink = new Writable({
    write(chunk, _e, cb) {
      log += String(chunk);
      cb();
    },
  });
  const host = createCliHost(sink);
  const fullEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  await run({ inputs: cliInputSource(argv, fullEnv), host, env: fullEnv });
  return {
    outputs: Object.fromEntries(host.outputs),
    failed: host.failed,
    log,
    tables: host.tables,
  };
}

/** Inputs pointing at a pair of local S3 servers. */
export function destinationInputs(
  primary: { endpoint: string; accessKeyId: string; secretAccessKey: string },
  secondary: { endpoint: string; accessKeyId: string; secretAccessKey: string } | null,
  buckets = { primary: 'pgdr-primary', secondary: 'pgdr-secondary' },
): Record<string, string> {
  const out: Record<string, string> = {
    'primary-name': 'b2',
    'primary-endpoint': primary.endpoint,
    'primary-bucket': buckets.primary,
    'primary-access-key-id': primary.accessKeyId,
    'primary-secret-access-key': primary.secretAccessKey,
    'primary-region': 'us-east-1',
  };
  if (secondary) {
    Object.assign(out, {
      'secondary-name': 'r2',
      'secondary-endpoint': secondary.endpoint,
      'secondary-bucket': buckets.secondary,
      'secondary-access-key-id': secondary.accessKeyId,
      'secondary-secret-access-key': secondary.secretAccessKey,
    });
  }
  return out;
}

import type { AlertFeed, AlertOutcome } from '../alerts/index.js';
import { alertsSummary } from '../alerts/index.js';
import { UserError } from '../errors.js';
import type { Settings } from '../inputs/parse.js';
import type { Manifest } from '../manifest/schema.js';
import type { DatabaseTarget } from '../postgres/url.js';
import type { Host, SummaryTable } from '../report/host.js';
import type { Destination } from '../storage/destination.js';

/** A command's name: `backup`, `verify`, … */
export type Command = Settings['command'];

/** What every command runs with. */
export interface Context {
  readonly host: Host;
  readonly env: NodeJS.ProcessEnv;
  readonly feed: AlertFeed;
  /** Aborted on cancellation (SIGTERM/SIGINT) or a dropped tunnel: the command stops. */
  readonly signal: AbortSignal;
  readonly destinations: readonly Destination[];
  /** Where PostgreSQL clients connect when an SSH tunnel is up (its local end). */
  readonly target?: DatabaseTarget;
}

/** One entry of the backup's `destinations` output. */
export interface DestinationOutput {
  readonly name: string;
  readonly bucket: string;
  readonly endpointHost: string;
  readonly ok: boolean;
  readonly error: string | null;
}

/**
 * The step's outputs, in the order they are set. Documents (manifest, report,
 * destinations) are objects here: they are serialised once, by `outputText`.
 */
export interface Outputs {
  readonly report?: object;
  readonly 'backup-id'?: string;
  readonly status?: string;
  readonly manifest?: Manifest;
  readonly 'database-sha256'?: string;
  readonly 'size-bytes'?: string;
  readonly destinations?: readonly DestinationOutput[];
}

/** The outcome of a command: its outputs, its summary tables and whether the step fails. */
export interface CommandResult {
  readonly outputs: Outputs;
  /** The job summary, alerts raised or cleared included. */
  readonly tables: readonly SummaryTable[];
  /** Set when the command's result must fail the step (degraded with fail-on-degraded, …). */
  readonly failure: string | null;
}

/** A command: its settings and the context in, its outcome out. */
export type Handler<K extends Command> = (
  settings: Extract<Settings, { command: K }>,
  ctx: Context,
) => Promise<CommandResult>;

/** Every command's handler, by name. */
export type Handlers = { readonly [K in Command]: Handler<K> };

/** An output's value as the step sees it: text as is, a document as compact JSON. */
export function outputText(value: string | object): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The tables, with the alerts table after them when any alert was raised or cleared. */
export function withAlerts(
  tables: readonly SummaryTable[],
  alerts: readonly AlertOutcome[],
): SummaryTable[] {
  const t = alertsSummary(alerts);
  return t ? [...tables, t] : [...tables];
}

/** A failure as the user reads it: a user error's message as it is, else with its kind. */
export function describeError(e: unknown): string {
  if (e instanceof UserError) return e.message;
  if (e instanceof Error) return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  return `Unexpected failure: ${String(e)}`;
}

import { isAbsolute } from 'node:path';
import type { TrustedSigner } from '../crypto/sshsig.js';
import { InputError } from '../errors.js';
import type { DestinationSettings } from '../storage/settings.js';
import { parseDestinations } from './destinations.js';
import { parseTrusted } from './keys.js';
import {
  hasControlCharacters,
  parseCommaList,
  parseOneOf,
  parseSecretUrl,
  parseWholeNumber,
} from './primitives.js';
import type { InputName, InputSource } from './source.js';

export const COMMANDS = [
  'backup',
  'verify',
  'monitor',
  'restore',
  'list',
  'prune',
  'check',
  'wal',
  'wal-get',
] as const;
export type Command = (typeof COMMANDS)[number];

/** Inputs whose values are secrets: masked before anything else happens. */
export const SECRET_INPUTS = [
  'primary-secret-access-key',
  'secondary-secret-access-key',
  'github-token',
  'database-url',
  'drill-database-url',
  'ssh-private-key',
  'passphrase',
  'age-identity',
  'signing-key',
  'heartbeat-url',
  'alert-webhook-url',
] as const satisfies readonly InputName[];

/** What every command needs. */
export interface CommonSettings {
  readonly command: Command;
  /** Key prefix of every object, e.g. `disaster_recovery/`. */
  readonly prefix: string;
  /** Primary first; one or two. */
  readonly destinations: readonly DestinationSettings[];
  /** Token for the alert feed; '' when none. */
  readonly githubToken: string;
  readonly alertLabels: readonly string[];
  /** GitHub logins a new alert issue is assigned to. */
  readonly alertAssignees: readonly string[];
  /** `@user` / `@org/team` named once when an alert opens. */
  readonly alertMentions: readonly string[];
  /** Chat webhook the alerts also go to (`alert-webhook-url`, secret); null: none. */
  readonly alertWebhookUrl: string | null;
  /** Where config-paths globs are resolved: GITHUB_WORKSPACE, else the current directory. */
  readonly workspace: string;
  /** Days to keep the audit artifact; null = the repository's default. */
  readonly artifactRetentionDays: number | null;
  /**
   * Public keys whose signatures make a backup or a record trusted (`trusted-signers`);
   * null: nothing is authenticated (as before signatures existed).
   */
  readonly trusted: readonly TrustedSigner[] | null;
}

/** The inputs every command reads, in the order their errors are reported. */
export function parseCommon(src: InputSource, env: NodeJS.ProcessEnv): CommonSettings {
  const command = parseOneOf(src, 'command', COMMANDS);
  const destinations = parseDestinations(src);
  const workspace = env.GITHUB_WORKSPACE || process.cwd();
  if (!isAbsolute(workspace))
    throw new InputError(
      'GITHUB_WORKSPACE',
      `GITHUB_WORKSPACE is not an absolute path: "${workspace}".`,
    );
  const prefix = parsePrefix(src);
  const githubToken = src.get('github-token').trim();
  const alertLabels = parseCommaList(src, 'alert-labels');
  const alertAssignees = parseLogins(src, 'alert-assignees', false);
  const alertMentions = parseLogins(src, 'alert-mentions', true);
  const alertWebhookUrl = parseSecretUrl(
    src,
    'alert-webhook-url',
    'https://hooks.slack.com/services/…',
  );
  parseOutputFormat(src);
  return {
    command,
    prefix,
    destinations,
    githubToken,
    alertLabels,
    alertAssignees,
    alertMentions,
    alertWebhookUrl,
    workspace,
    artifactRetentionDays: parseRetentionDays(src),
    trusted: parseTrusted(src),
  };
}

/**
 * `format`: how the CLI prints its result (`src/main.ts` runCli reads the input itself).
 * Checked with the other inputs so a bad value fails before any work.
 */
export function parseOutputFormat(src: InputSource): 'table' | 'json' {
  return parseOneOf(src, 'format', ['table', 'json'] as const);
}

function parsePrefix(src: InputSource): string {
  const v = src.get('prefix').trim();
  if (
    v.startsWith('/') ||
    v.split('/').includes('..') ||
    hasControlCharacters(v) ||
    v.includes('\\')
  )
    throw new InputError(
      'prefix',
      `Invalid 'prefix': "${v}". Expected a key prefix such as disaster_recovery/ (no leading '/', no '..').`,
    );
  return v;
}

function parseRetentionDays(src: InputSource): number | null {
  if (src.get('artifact-retention-days').trim() === '') return null;
  return parseWholeNumber(src, 'artifact-retention-days', 1, { max: 90 });
}

const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const TEAM = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * `alert-assignees` (logins) and `alert-mentions` (logins or `org/team`, shown with `@`):
 * comma-separated, a leading `@` accepted.
 */
function parseLogins(src: InputSource, name: InputName, teams: boolean): string[] {
  return parseCommaList(src, name).map((raw) => {
    const v = raw.replace(/^@/, '');
    if (LOGIN.test(v) || (teams && TEAM.test(v))) return teams ? `@${v}` : v;
    throw new InputError(
      name,
      `Invalid '${name}': "${raw}" is not a GitHub login${teams ? ' or an org/team' : ''}. Expected e.g. ${teams ? '@alice, @acme/oncall' : 'alice, bob'}.`,
    );
  });
}

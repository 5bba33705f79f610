import { alertFeedFromEnv } from './alerts/index.js';
import { withWebhook } from './alerts/webhook.js';
import {
  type CommandResult,
  type Context,
  describeError,
  type Outputs,
  outputText,
} from './commands/command.js';
import { dispatch } from './commands/index.js';
import { BackupFailed, isInputError } from './errors.js';
import { cliWording } from './inputs/cli-wording.js';
import { envName } from './inputs/env-file.js';
import { cliHelp, commandHelp } from './inputs/help.js';
import {
  COMMANDS,
  type Command,
  parseSettings,
  SECRET_INPUTS,
  type Settings,
  type SshSettings,
} from './inputs/parse.js';
import {
  actionInputSource,
  type CliArgs,
  cliInputSource,
  ENV_FILE_VARIABLE,
  INPUT_NAMES,
  type InputSource,
} from './inputs/source.js';
import { INPUT_SPECS } from './inputs/spec.generated.js';
import { didYouMean } from './inputs/suggest.js';
import { inputsOf } from './inputs/usage.js';
import {
  type DatabaseTarget,
  parseDatabaseUrl,
  passwordForms,
  viaLocalPort,
} from './postgres/url.js';
import { uploadAudit } from './report/artifact.js';
import { colourFor, paint } from './report/colour.js';
import {
  createActionHost,
  createCliHost,
  type Host,
  tableToText,
  withoutDetails,
} from './report/host.js';
import { lit } from './report/status.js';
import { describeSource } from './source/index.js';
import { createDestination } from './storage/destination.js';
import { openTunnel } from './tunnel/index.js';
import { VERSION } from './version.js';
import { WAL_GET_FAILED_EXIT, WalFileMissing } from './wal/fetch.js';

export interface RunOptions {
  readonly inputs?: InputSource;
  readonly host?: Host;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Told what failed the run, when something did, and whether it was the inputs, before any
   * work (the CLI exits 2 for those, 1 for the rest).
   */
  readonly onFailure?: (error: unknown, atInputs: boolean) => void;
}

/** The outputs a run set, in order; documents (manifest, report, destinations) as objects. */
export type RunOutputs = ReadonlyMap<string, string | object>;

/**
 * The whole run, top to bottom: inputs → masks → settings → command → outputs and
 * summary. The one place that fails the step.
 */
export async function run(options: RunOptions = {}): Promise<RunOutputs> {
  const env = options.env ?? process.env;
  const host = options.host ?? createActionHost();
  const inputs = options.inputs ?? actionInputSource(env);
  const outputs = new Map<string, string | object>();
  const setOutput = (name: string, value: string | object) => {
    outputs.set(name, value);
    host.setOutput(name, outputText(value));
  };
  const cancel = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (cancel.signal.aborted) return;
    host.warning(`Received ${sig}: stopping; nothing will be committed.`);
    cancel.abort(new Error(`cancelled by ${sig}`));
  };
  // `on`, not `once`: execa re-raises a signal when it finds itself the only listener.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let parsed = false;
  try {
    maskSecrets(inputs, host);
    const settings = parseSettings(inputs, env);
    parsed = true;
    const issues = alertFeedFromEnv({
      token: settings.githubToken,
      labels: settings.alertLabels,
      env,
      runUrl: (await describeSource(env, settings.workspace)).runUrl,
      log: (w) => host.warning(w),
      secrets: secretValues(inputs),
      assignees: settings.alertAssignees,
      mentions: settings.alertMentions,
    });
    const feed = withWebhook(issues, settings.alertWebhookUrl, host);
    const result = await execute(settings, { host, env, feed, signal: cancel.signal });
    for (const [k, v] of Object.entries(result.outputs)) setOutput(k, v);
    await report(settings, result, env, host);
  } catch (e) {
    const message = describeError(e);
    options.onFailure?.(e, !parsed);
    setOutput('status', 'failed');
    if (e instanceof BackupFailed && e.id) setOutput('backup-id', e.id);
    // The CLI prints the error once, on stderr (host.fail); a table repeating it is for the job summary.
    if (host.kind === 'action')
      await host
        .summary([
          {
            title: `pg-dr ${safeCommand(inputs)}: ${lit('failed', 'failed')}`,
            header: ['Status', lit('failed', 'failed')],
            rows: [['Error', message]],
          },
        ])
        .catch(() => undefined);
    host.fail(message);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return outputs;
}

/** The audit artifact, the job summary, and the step's failure when the result is one. */
async function report(
  settings: Settings,
  result: CommandResult,
  env: NodeJS.ProcessEnv,
  host: Host,
): Promise<void> {
  const { outputs } = result;
  const audit = await uploadAudit({
    command: settings.command,
    id: outputs['backup-id']?.split(',')[0] || null,
    now: new Date(),
    files: auditFiles(outputs),
    retentionDays: settings.artifactRetentionDays,
    env,
    host,
  });
  await host
    .summary(
      audit.state === 'failed'
        ? [
            ...result.tables,
            {
              title: 'Audit artifact',
              header: ['Audit artifact', 'why'],
              rows: [['⚠️ not uploaded', audit.error]],
            },
          ]
        : result.tables,
    )
    // The summary is a report of the result, not part of it: a backup that is committed
    // stays a success even when the summary file cannot be written.
    .catch((e: unknown) =>
      host.warning(`Could not write the job summary: ${(e as Error).message}`),
    );
  if (result.failure) host.fail(result.failure);
}

/** The manifest and the report, as the audit artifact keeps them (indented JSON). */
function auditFiles(outputs: Outputs): Record<string, string> {
  const files: Record<string, string> = {};
  for (const k of ['manifest', 'report'] as const) {
    const doc = outputs[k];
    if (doc) files[`${k}.json`] = `${JSON.stringify(doc, null, 2)}\n`;
  }
  return files;
}

/** Masks every secret input, and the forms it can take (the password inside a URL). */
function maskSecrets(inputs: InputSource, host: Host): void {
  for (const name of SECRET_INPUTS) {
    const value = inputs.get(name);
    if (value.trim() === '') continue;
    host.mask(value);
    host.mask(value.trim());
    for (const line of value.split('\n')) if (line.trim().length >= 8) host.mask(line.trim());
    if (name === 'database-url' || name === 'drill-database-url') {
      try {
        for (const f of passwordForms(value, parseDatabaseUrl(name, value))) host.mask(f);
      } catch {
        // Reported by parseSettings, without the value.
      }
    }
  }
}

/** Every secret input's value: no request to GitHub may carry one. */
function secretValues(inputs: InputSource): string[] {
  return SECRET_INPUTS.map((n) => inputs.get(n).trim()).filter((v) => v.length >= 6);
}

function safeCommand(inputs: InputSource): string {
  const c = inputs.get('command').trim();
  return /^[a-z]{1,20}$/.test(c) ? c : 'run';
}

/** The database a command connects to, and the bastion in front of it, if any. */
function databaseRoute(settings: Settings): { ssh: SshSettings; target: DatabaseTarget } | null {
  if (settings.command === 'backup' || settings.command === 'restore' || settings.command === 'wal')
    return settings.ssh && settings.database
      ? { ssh: settings.ssh, target: settings.database }
      : null;
  if (settings.command === 'verify' && settings.ssh && settings.drill)
    return { ssh: settings.ssh, target: settings.drill };
  return null;
}

/** What `execute` adds to the context: the destinations, and the tunnel's end when there is one. */
type BaseContext = Omit<Context, 'destinations' | 'target'>;

/**
 * Runs the command, through an SSH tunnel when `ssh-host` is set: the tunnel is up
 * (host key checked, the database reached from the bastion) before the first PostgreSQL
 * connection, a drop stops the command, and it is closed however the command ends.
 */
async function execute(settings: Settings, ctx: BaseContext): Promise<CommandResult> {
  const { host, signal: cancel } = ctx;
  const route = databaseRoute(settings);
  if (!route) return dispatch(settings, withDestinations(settings, ctx));
  const t0 = Date.now();
  const tunnel = await host.group(
    `Open SSH tunnel via ${route.ssh.user}@${route.ssh.host}:${route.ssh.port}`,
    () =>
      openTunnel(
        route.ssh,
        { host: route.target.host, port: route.target.port },
        { signal: cancel, log: (l) => host.warning(l) },
      ),
  );
  host.info(
    `SSH tunnel up in ${Date.now() - t0} ms: 127.0.0.1:${tunnel.localPort} → ${route.ssh.host} → ${route.target.host}:${route.target.port}`,
  );
  const stop = new AbortController();
  const onCancel = () => stop.abort(cancel.reason);
  cancel.addEventListener('abort', onCancel, { once: true });
  tunnel.dropped.catch((e: unknown) => {
    host.error(`The SSH tunnel dropped: ${(e as Error).message}`);
    stop.abort(new Error(`The SSH tunnel dropped (${(e as Error).message})`));
  });
  try {
    return await dispatch(settings, {
      ...withDestinations(settings, { ...ctx, signal: stop.signal }),
      target: viaLocalPort(route.target, tunnel.localPort),
    });
  } finally {
    cancel.removeEventListener('abort', onCancel);
    await tunnel.close();
  }
}

function withDestinations(settings: Settings, ctx: BaseContext): Context {
  return { ...ctx, destinations: settings.destinations.map((d) => createDestination(d)) };
}

/** The CLI: flags and PG_DR_* variables in, the result on stdout, logs on stderr. Returns the exit code. */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { stdout, stderr } = process;
  const colour = colourFor(stderr, env);
  // Exit 2: the command line itself is wrong (an unknown command or flag, a bad input).
  const usage = (message: string) => {
    const line = `error: ${cliWording(message)}\n`;
    stderr.write(colour ? paint(line) : line);
    return 2;
  };
  let args: CliArgs;
  try {
    args = cliInputSource(argv, env);
  } catch (e) {
    const code = usage(describeError(e));
    // restore_command: a command line pg-dr cannot read (its settings file gone) must stop
    // recovery, never read as "no such WAL file" (exit 1, or 2 ≤ 125: the end of recovery).
    return argv.find((a) => !a.startsWith('-')) === 'wal-get' ? WAL_GET_FAILED_EXIT : code;
  }
  if (args.version) {
    stdout.write(`pg-dr ${VERSION}\n`);
    return 0;
  }
  const command = args.command;
  if (command !== undefined && !isCommand(command))
    return usage(
      `Unknown command '${command}'.${didYouMean(command, COMMANDS)} Expected one of: ${COMMANDS.join(', ')} (pg-dr --help).`,
    );
  if (args.help) {
    stdout.write(`${command === undefined ? cliHelp() : commandHelp(command, args.verbose)}\n`);
    return 0;
  }
  if (argv.length === 0) {
    stderr.write(`${cliHelp()}\n`);
    return 2;
  }
  // The lock file pins an SDK that supports Node 20; its notice about future releases is noise here.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const host = createCliHost(stderr, { verbose: args.verbose, colour, wording: cliWording });
  warnAboutCommandLine(argv, env, host);
  warnAboutUnused(args, argv, host);
  let usageError = false;
  let missingWal = false;
  const outputs = await run({
    inputs: args,
    host,
    env,
    onFailure: (e, atInputs) => {
      usageError = atInputs && isInputError(e);
      missingWal = e instanceof WalFileMissing;
    },
  });
  printResult(args, outputs, host, colourFor(stdout, env));
  if (host.failed === undefined) return 0;
  // restore_command: exit 1 only for a file not in the archive (PostgreSQL's end of WAL).
  if (command === 'wal-get') return missingWal ? 1 : WAL_GET_FAILED_EXIT;
  return usageError ? 2 : 1;
}

function isCommand(word: string): word is Command {
  return (COMMANDS as readonly string[]).includes(word);
}

/** A secret given as a flag, and a PG_DR_ variable that is no input (a typo): warned about. */
function warnAboutCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv, host: Host): void {
  // A secret given as a flag is in the process list and the shell history: say so.
  const flagged = SECRET_INPUTS.filter((name) =>
    argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`)),
  );
  for (const name of flagged)
    host.warning(
      `'--${name}' is a secret given on the command line, where the process list and the shell history show it: set ${envName(name)} instead.`,
    );
  const known = new Set([...INPUT_NAMES.map(envName), ENV_FILE_VARIABLE]);
  // PG_DR_TEST_*: the test harness's own settings (test/harness/postgres.ts).
  for (const key of Object.keys(env))
    if (key.startsWith('PG_DR_') && !key.startsWith('PG_DR_TEST_') && !known.has(key))
      host.warning(
        `${key} is set but is not a pg-dr variable: it is ignored.${didYouMean(key, known)}`,
      );
}

/** A flag the command does not read is ignored: say so, rather than let it seem to work. */
function warnAboutUnused(args: CliArgs, argv: readonly string[], host: Host): void {
  const command = args.get('command').trim();
  if (!isCommand(command)) return;
  const used = new Set<string>(inputsOf(command).map((u) => u.name));
  const given = argv.flatMap((a) =>
    /^--[a-z]/.test(a) ? [a.slice(2).split('=')[0] as string] : [],
  );
  for (const flag of new Set(given))
    if (flag in INPUT_SPECS && !used.has(flag))
      host.warning(
        `--${flag} is not used by ${command}: it is ignored (pg-dr ${command} --help lists its flags).`,
      );
}

/** The result on stdout: one JSON document with --format json, else the tables (details with --verbose). */
function printResult(
  args: CliArgs,
  outputs: RunOutputs,
  host: ReturnType<typeof createCliHost>,
  colour: boolean,
): void {
  if (args.get('format').trim() === 'json') {
    const doc: Record<string, unknown> = { ok: host.failed === undefined };
    for (const [k, v] of outputs) doc[k] = v;
    if (host.failed) doc.error = host.failed;
    // stdout carries the same masks as stderr: a secret echoed by a store or a child in an
    // error or a report never reaches it.
    process.stdout.write(host.redact(`${JSON.stringify(doc, null, 2)}\n`));
    return;
  }
  for (const t of host.tables) {
    const shown = args.verbose ? t : withoutDetails(t);
    if (!shown) continue;
    const text = host.redact(`${tableToText(shown)}\n`);
    process.stdout.write(colour ? paint(text) : text);
  }
}

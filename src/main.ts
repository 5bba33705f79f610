import {
  backupDegraded,
  backupFailed,
  untrustedObjects,
  verificationFailed,
} from './alerts/conditions.js';
import {
  type AlertFeed,
  type AlertOutcome,
  alertFeedFromEnv,
  alertsSummary,
  apiUrlFromEnv,
  createGitHubClient,
  parseRepository,
} from './alerts/index.js';
import { BackupFailed, backup } from './commands/backup.js';
import { list } from './commands/list.js';
import { monitor, type RunHistory } from './commands/monitor.js';
import { prune } from './commands/prune.js';
import { restore } from './commands/restore.js';
import { verify } from './commands/verify.js';
import { InputError } from './errors.js';
import { parseSettings, SECRET_INPUTS, type Settings, type SshSettings } from './inputs/parse.js';
import { actionInputSource, cliHelp, cliInputSource, type InputSource } from './inputs/source.js';
import { RebuildError } from './postgres/rebuild.js';
import {
  type DatabaseTarget,
  parseDatabaseUrl,
  passwordForms,
  viaLocalPort,
} from './postgres/url.js';
import { uploadAudit } from './report/artifact.js';
import {
  createActionHost,
  createCliHost,
  type Host,
  type SummaryTable,
  tableToText,
} from './report/host.js';
import { describeSource } from './source/index.js';
import { createDestination } from './storage/destination.js';
import { openTunnel, TunnelError } from './tunnel/index.js';

export interface RunOptions {
  readonly inputs?: InputSource;
  readonly host?: Host;
  readonly env?: NodeJS.ProcessEnv;
}

/** The outcome of a command, as outputs and tables. */
interface CommandResult {
  readonly outputs: Record<string, string>;
  readonly tables: readonly SummaryTable[];
  /** Set when the command's result must fail the step (degraded with fail-on-degraded, …). */
  readonly failure: string | null;
}

/**
 * The whole run, top to bottom: inputs → masks → settings → command → outputs and
 * summary. The one place that fails the step.
 */
export async function run(options: RunOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  const host = options.host ?? createActionHost();
  const inputs = options.inputs ?? actionInputSource(env);
  const cancel = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (cancel.signal.aborted) return;
    host.warning(`Received ${sig}: stopping; nothing will be committed.`);
    cancel.abort(new Error(`cancelled by ${sig}`));
  };
  // `on`, not `once`: execa re-raises a signal when it finds itself the only listener.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    maskSecrets(inputs, host);
    const settings = parseSettings(inputs, env);
    const feed = alertFeedFromEnv({
      token: settings.githubToken,
      labels: settings.alertLabels,
      env,
      runUrl: await runUrlOf(env, settings.workspace),
      log: (w) => host.warning(w),
      secrets: secretValues(inputs),
    });
    const result = await execute(settings, { host, env, feed, cancel: cancel.signal });
    for (const [k, v] of Object.entries(result.outputs)) host.setOutput(k, v);
    const audit = await uploadAudit({
      command: settings.command,
      id: result.outputs['backup-id']?.split(',')[0] || null,
      now: new Date(),
      files: Object.fromEntries(
        (['manifest', 'report'] as const)
          .filter((k) => result.outputs[k])
          .map((k) => [
            `${k}.json`,
            `${JSON.stringify(JSON.parse(result.outputs[k] as string), null, 2)}\n`,
          ]),
      ),
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
                header: ['', ''],
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
  } catch (e) {
    const message = describeError(e);
    host.setOutput('status', 'failed');
    if (e instanceof BackupFailed && e.id) host.setOutput('backup-id', e.id);
    await host
      .summary([
        {
          title: `pg-dr ${safeCommand(inputs)}: failed`,
          header: ['', ''],
          rows: [
            ['Status', '❌ failed'],
            ['Error', message],
          ],
        },
      ])
      .catch(() => undefined);
    host.fail(message);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
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

function withAlerts(tables: SummaryTable[], alerts: readonly AlertOutcome[]): SummaryTable[] {
  const t = alertsSummary(alerts);
  return t ? [...tables, t] : tables;
}

/** Every secret input's value: no request to GitHub may carry one. */
function secretValues(inputs: InputSource): string[] {
  return SECRET_INPUTS.map((n) => inputs.get(n).trim()).filter((v) => v.length >= 6);
}

/** The last completed runs of a workflow, through the one GitHub client; null without a token. */
function runHistory(token: string, env: NodeJS.ProcessEnv, host: Host): RunHistory | null {
  const repository = parseRepository(env);
  if (token === '' || !repository) return null;
  const client = createGitHubClient({
    token,
    baseUrl: apiUrlFromEnv(env),
    log: (w) => host.warning(w),
  });
  return async (file) => {
    const { data } = await client.rest.actions.listWorkflowRuns({
      ...repository,
      workflow_id: file,
      status: 'completed',
      per_page: 10,
    });
    return data.workflow_runs.map((r) => ({ conclusion: r.conclusion ?? null, url: r.html_url }));
  };
}

async function runUrlOf(env: NodeJS.ProcessEnv, workspace: string): Promise<string | null> {
  return (await describeSource(env, workspace)).runUrl;
}

function safeCommand(inputs: InputSource): string {
  const c = inputs.get('command').trim();
  return /^[a-z]{1,20}$/.test(c) ? c : 'run';
}

function describeError(e: unknown): string {
  if (
    e instanceof InputError ||
    e instanceof BackupFailed ||
    e instanceof TunnelError ||
    e instanceof RebuildError
  )
    return e.message;
  if (e instanceof Error) return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  return `Unexpected failure: ${String(e)}`;
}

/** The database a command connects to, and the bastion in front of it, if any. */
function databaseRoute(settings: Settings): { ssh: SshSettings; target: DatabaseTarget } | null {
  if (settings.command === 'backup' || settings.command === 'restore')
    return settings.ssh ? { ssh: settings.ssh, target: settings.database } : null;
  if (settings.command === 'verify' && settings.ssh && settings.drill)
    return { ssh: settings.ssh, target: settings.drill };
  return null;
}

/**
 * Runs the command, through an SSH tunnel when `ssh-host` is set: the tunnel is up
 * (host key checked, the database reached from the bastion) before the first PostgreSQL
 * connection, a drop stops the command, and it is closed however the command ends.
 */
/** What every command runs with. */
interface Context {
  readonly host: Host;
  readonly env: NodeJS.ProcessEnv;
  readonly feed: AlertFeed;
  readonly cancel: AbortSignal;
}

async function execute(settings: Settings, ctx: Context): Promise<CommandResult> {
  const { host, cancel } = ctx;
  const route = databaseRoute(settings);
  if (!route) return executeCommand(settings, ctx, undefined);
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
    return await executeCommand(
      settings,
      { ...ctx, cancel: stop.signal },
      viaLocalPort(route.target, tunnel.localPort),
    );
  } finally {
    cancel.removeEventListener('abort', onCancel);
    await tunnel.close();
  }
}

async function executeCommand(
  settings: Settings,
  ctx: Context,
  target: DatabaseTarget | undefined,
): Promise<CommandResult> {
  const { host, env, feed, cancel: signal } = ctx;
  const destinations = settings.destinations.map((d) => createDestination(d));
  const via = target ? { target } : {};
  switch (settings.command) {
    case 'backup': {
      const r = await backup(settings, {
        host,
        destinations,
        source: () => describeSource(env, settings.workspace),
        now: () => new Date(),
        signal,
        env,
        ...via,
      }).catch(async (e: unknown) => {
        await feed.raise(backupFailed(describeError(e), settings.database.database));
        throw e;
      });
      const alerts = [
        await feed.clear('backup-failed', `backup ${r.id} completed (${r.status}).`),
        r.status === 'degraded'
          ? await feed.raise(backupDegraded(r.manifest))
          : await feed.clear('backup-degraded', `backup ${r.id} is complete at every destination.`),
      ];
      const db = r.manifest.objects.find((o) => o.kind === 'database');
      const failure =
        r.status === 'degraded' && settings.failOnDegraded
          ? `Backup ${r.id} is degraded: ${r.manifest.destinations
              .filter((d) => !d.ok)
              .map((d) => (d.error?.startsWith(`${d.name}:`) ? d.error : `${d.name}: ${d.error}`))
              .join('; ')} (set fail-on-degraded: false to accept one destination).`
          : null;
      const pruned =
        settings.pruneAfter && r.status !== 'failed'
          ? await prune(
              { ...settings, ...settings.pruneAfter, command: 'prune' },
              { host, destinations, now: () => new Date() },
            )
          : null;
      if (pruned?.report.untrusted.length)
        alerts.push(await feed.raise(untrustedObjects(pruned.report.untrusted)));
      return {
        outputs: {
          ...(pruned ? { report: JSON.stringify({ prune: pruned.report }) } : {}),
          'backup-id': r.id,
          status: r.status,
          manifest: JSON.stringify(r.manifest),
          'database-sha256': db?.encrypted.sha256 ?? '',
          'size-bytes': String(r.manifest.objects.reduce((s, o) => s + o.encrypted.bytes, 0)),
          destinations: JSON.stringify(
            r.manifest.destinations.map((d) => ({
              name: d.name,
              bucket: d.bucket,
              endpointHost: d.endpointHost,
              ok: d.ok,
              error: d.error,
            })),
          ),
        },
        tables: withAlerts(pruned ? [r.summary, pruned.summary] : [r.summary], alerts),
        failure:
          failure ??
          (pruned && !pruned.report.ok
            ? 'The backup succeeded, but pruning after it did not (see the prune table).'
            : null),
      };
    }
    case 'verify': {
      const r = await verify(settings, {
        host,
        destinations,
        now: () => new Date(),
        signal,
        env,
        runUrl: await runUrlOf(env, settings.workspace),
        ...(target ? { drillTarget: target } : {}),
      });
      const ids = [...new Set(r.report.verifications.map((v) => v.backupId))];
      const failedV = r.report.verifications.filter((v) => !v.ok);
      const alerts = [
        failedV.length > 0
          ? await feed.raise(verificationFailed(failedV))
          : await feed.clear(
              'verification-failed',
              `backup ${ids.join(', ')} verified (${settings.level}) at every destination.`,
            ),
        ...(failedV.length === 0
          ? [
              await feed.clear(
                'verification-stale',
                `a verification (${settings.level}) just passed.`,
              ),
            ]
          : []),
      ];
      return {
        outputs: {
          'backup-id': ids.join(','),
          status: r.report.ok ? 'ok' : 'failed',
          report: JSON.stringify(r.report),
        },
        tables: withAlerts([r.summary], alerts),
        failure: r.report.ok
          ? null
          : `Verification failed: ${r.report.verifications
              .filter((v) => !v.ok)
              .map((v) => `${v.backupId} at ${v.destination}: ${v.error}`)
              .join('; ')}`,
      };
    }
    case 'restore': {
      const r = await restore(settings, {
        host,
        destinations,
        now: () => new Date(),
        signal,
        env,
        ...via,
      });
      return {
        outputs: {
          'backup-id': r.report.backupId,
          status: r.report.ok ? 'ok' : 'failed',
          manifest: JSON.stringify(r.manifest),
          report: JSON.stringify(r.report),
        },
        tables: [r.summary],
        failure: r.report.ok
          ? null
          : r.report.restoredFrom
            ? `Restored ${r.report.backupId} from ${r.report.restoredFrom}, but ${r.report.mismatches.length} table(s) have other row counts than the manifest.`
            : `Restore of ${r.report.backupId} failed everywhere: ${r.report.attempts.map((a) => `${a.destination}: ${a.error}`).join('; ')}`,
      };
    }
    case 'list': {
      const r = await list(settings, { host, destinations });
      return { outputs: { report: JSON.stringify(r.report) }, tables: [r.summary], failure: null };
    }
    case 'prune': {
      const r = await prune(settings, { host, destinations, now: () => new Date() });
      const refused = r.report.destinations.filter((d) => d.refused);
      // Raised, never cleared here: monitor sees what prune cannot (destinations that disagree).
      const alerts = r.report.untrusted.length
        ? [await feed.raise(untrustedObjects(r.report.untrusted))]
        : [];
      return {
        outputs: { status: r.report.ok ? 'ok' : 'failed', report: JSON.stringify(r.report) },
        tables: withAlerts([r.summary], alerts),
        failure: r.report.ok
          ? null
          : refused.length > 0
            ? `Pruning refused: ${refused.map((d) => `${d.destination}: ${d.refused}`).join('; ')}`
            : 'Some deletes failed (see the report).',
      };
    }
    case 'monitor': {
      const r = await monitor(settings, {
        host,
        destinations,
        now: () => new Date(),
        feed,
        runs: runHistory(settings.githubToken, env, host),
      });
      return {
        outputs: { status: r.report.ok ? 'ok' : 'failed', report: JSON.stringify(r.report) },
        tables: withAlerts([r.summary, r.trends], r.report.alerts),
        // Monitoring reports through the feed; its own step fails only when it cannot check.
        failure: null,
      };
    }
    default: {
      const unknown: never = settings;
      throw new Error(`internal: no handler for ${JSON.stringify(unknown)}`);
    }
  }
}

/** The CLI: flags and PG_DR_* variables in, the result on stdout, logs on stderr. Returns the exit code. */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let inputs: ReturnType<typeof cliInputSource>;
  try {
    inputs = cliInputSource(argv, env);
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
  if (inputs.help) {
    process.stdout.write(`${cliHelp()}\n`);
    return 0;
  }
  if (argv.length === 0) {
    process.stderr.write(`${cliHelp()}\n`);
    return 2;
  }
  // The lock file pins an SDK that supports Node 20; its notice about future releases is noise here.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const host = createCliHost();
  // A secret given as a flag is in the process list and the shell history: say so.
  const flagged = SECRET_INPUTS.filter((name) =>
    argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`)),
  );
  for (const name of flagged)
    host.warning(
      `'--${name}' is a secret given on the command line, where the process list and the shell history show it: set PG_DR_${name.toUpperCase().replace(/-/g, '_')} instead.`,
    );
  await run({ inputs, host, env });
  const json = inputs.get('format').trim() === 'json';
  if (json) {
    const doc: Record<string, unknown> = { ok: host.failed === undefined };
    for (const [k, v] of host.outputs)
      doc[k] = k === 'manifest' || k === 'destinations' || k === 'report' ? JSON.parse(v) : v;
    if (host.failed) doc.error = host.failed;
    // stdout carries the same masks as stderr: a secret echoed by a store or a child in an
    // error or a report never reaches it.
    process.stdout.write(host.redact(`${JSON.stringify(doc, null, 2)}\n`));
  } else {
    for (const t of host.tables) process.stdout.write(host.redact(`${tableToText(t)}\n`));
  }
  return host.failed === undefined ? 0 : 1;
}

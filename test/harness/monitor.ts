// The monitor command in-process at a chosen time, with the real alert feed against the
// local GitHub API: what the monitor tests and the screenshot script share.
import { Writable } from 'node:stream';
import { createAlertFeed, createGitHubClient } from '../../src/alerts/index.js';
import { monitor } from '../../src/commands/monitor.js';
import { type MonitorSettings, parseSettings } from '../../src/inputs/parse.js';
import { cliInputSource } from '../../src/inputs/source.js';
import { createCliHost } from '../../src/report/host.js';
import { createDestination } from '../../src/storage/destination.js';

/** Monitor settings from flags, as the CLI reads them. */
export function monitorSettings(inputs: Record<string, string>): MonitorSettings {
  const argv = Object.entries({ command: 'monitor', ...inputs }).map(([k, v]) => `--${k}=${v}`);
  return parseSettings(cliInputSource(argv, {}), {}) as MonitorSettings;
}

/**
 * `monitor` at `at`, its feed on the GitHub API at `apiUrl` (acme/platform). One retry with a
 * 1 ms back-off: these runs are about the checks and the issues; the outage budget's defaults
 * are tested on their own (monitor.test.ts). Returns the result and everything it logged.
 */
export async function monitorAt(
  settings: MonitorSettings,
  o: { at: Date; apiUrl: string; token: string; runUrl?: string | null },
) {
  let log = '';
  const host = createCliHost(
    new Writable({
      write(c, _e, cb) {
        log += String(c);
        cb();
      },
    }),
  );
  const client = createGitHubClient({
    token: o.token,
    baseUrl: o.apiUrl,
    retries: 1,
    retryBaseMs: 1,
    paceWrites: false,
  });
  const feed = createAlertFeed({
    client,
    owner: 'acme',
    repo: 'platform',
    labels: ['disaster-recovery'],
    runUrl: o.runUrl ?? null,
    now: () => o.at,
    log: (w) => host.warning(w),
  });
  const r = await monitor(settings, {
    host,
    destinations: settings.destinations.map((d) => createDestination(d)),
    now: () => o.at,
    feed,
    runs: null,
  });
  return { ...r, log };
}

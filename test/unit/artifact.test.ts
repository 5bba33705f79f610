import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { artifactName, uploadAudit } from '../../src/report/artifact.js';
import { createCliHost } from '../../src/report/host.js';

function host(verbose = true) {
  let log = '';
  const h = createCliHost(
    new Writable({
      write(c, _e, cb) {
        log += String(c);
        cb();
      },
    }),
    { verbose },
  );
  return { h, log: () => log };
}

const files = { 'manifest.json': '{"id":"x"}\n', 'report.json': '{"ok":true}\n' };

describe('audit artifact', () => {
  it('is named after the command and the backup id, or the UTC time', () => {
    expect(artifactName('backup', '20261126T020000Z-7f3a9c', new Date())).toBe(
      'pg-dr-backup-20261126T020000Z-7f3a9c',
    );
    expect(artifactName('monitor', null, new Date('2026-11-26T03:17:05.123Z'))).toBe(
      'pg-dr-monitor-20261126T031705Z',
    );
  });

  it('uploads the manifest and the report with the retention asked for, then removes its temp files', async () => {
    const runnerTemp = await mkdtemp(join(tmpdir(), 'pg-dr-runner-temp-'));
    const seen: {
      name: string;
      files: Record<string, string>;
      root: string;
      retention?: number;
    }[] = [];
    const { h } = host();
    const r = await uploadAudit({
      command: 'backup',
      id: '20261126T020000Z-7f3a9c',
      now: new Date(),
      files,
      retentionDays: 30,
      env: {
        GITHUB_ACTIONS: 'true',
        ACTIONS_RUNTIME_TOKEN: 'runtime-token',
        RUNNER_TEMP: runnerTemp,
      },
      host: h,
      uploader: async (name, paths, root, options) => {
        seen.push({
          name,
          files: Object.fromEntries(paths.map((p) => [basename(p), readFileSync(p, 'utf8')])),
          root,
          ...(options.retentionDays ? { retention: options.retentionDays } : {}),
        });
        return { id: 42, size: 10 };
      },
    });
    expect(r).toEqual({ state: 'uploaded', name: 'pg-dr-backup-20261126T020000Z-7f3a9c', id: 42 });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.files).toEqual(files);
    expect(seen[0]?.retention).toBe(30);
    expect(seen[0]?.root.startsWith(runnerTemp)).toBe(true);
    expect(existsSync(seen[0]?.root as string)).toBe(false);
  });

  it('is skipped with one info line outside GitHub Actions (verbose)', async () => {
    const { h, log } = host();
    let called = false;
    const r = await uploadAudit({
      command: 'list',
      id: null,
      now: new Date(),
      files,
      retentionDays: null,
      env: {},
      host: h,
      uploader: async () => {
        called = true;
        return {};
      },
    });
    expect(r.state).toBe('skipped');
    expect(called).toBe(false);
    expect(log().trim().split('\n')).toEqual([
      'Audit artifact skipped: not running in GitHub Actions.',
    ]);
  });

  it('outside GitHub Actions, a quiet CLI (the default) says nothing of it', async () => {
    const { h, log } = host(false);
    const r = await uploadAudit({
      command: 'backup',
      id: null,
      now: new Date(),
      files,
      retentionDays: null,
      env: {},
      host: h,
    });
    expect(r.state).toBe('skipped');
    expect(log()).toBe('');
  });

  it('a failed upload is a warning, not an exception', async () => {
    const { h, log } = host();
    const r = await uploadAudit({
      command: 'verify',
      id: null,
      now: new Date('2026-11-26T03:00:00Z'),
      files,
      retentionDays: null,
      env: { GITHUB_ACTIONS: 'true', ACTIONS_RUNTIME_TOKEN: 't' },
      host: h,
      uploader: async () => {
        throw new Error('artifact service unavailable (503)');
      },
    });
    expect(r).toEqual({
      state: 'failed',
      name: 'pg-dr-verify-20261126T030000Z',
      error: 'artifact service unavailable (503)',
    });
    expect(log()).toMatch(
      /warning: Audit artifact .* could not be uploaded: artifact service unavailable/,
    );
  });
});

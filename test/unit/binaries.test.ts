import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClientInstall,
  candidateBinDirs,
  findClients,
  formatServerVersion,
  parseClientVersion,
  selectClient,
  toolPath,
} from '../../src/postgres/binaries.js';
import { pickClient } from '../../src/postgres/clients.js';

describe('parseClientVersion', () => {
  it('reads Debian, Homebrew, EDB and plain builds', () => {
    expect(parseClientVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n')).toEqual({
      version: '15.18',
      major: 15,
    });
    expect(parseClientVersion('pg_dump (PostgreSQL) 16.4 (Ubuntu 16.4-1.pgdg22.04+1)')).toEqual({
      version: '16.4',
      major: 16,
    });
    expect(parseClientVersion('pg_dump (PostgreSQL) 17.2 (Homebrew)')).toEqual({
      version: '17.2',
      major: 17,
    });
    expect(parseClientVersion('psql (PostgreSQL) 13.16')).toEqual({ version: '13.16', major: 13 });
    expect(parseClientVersion('pg_dump (PostgreSQL) 18beta1')).toEqual({
      version: '18',
      major: 18,
    });
  });

  it('reads a 9.6 client', () => {
    const v = parseClientVersion('pg_dump (PostgreSQL) 9.6.24');
    expect(v).not.toBeNull();
    expect(v?.version.startsWith('9.6')).toBe(true);
  });

  // A 9.x release is named by two numbers: 9.6.24 is minor 24 of major 9.6. The version
  // is cut to "9.6" (the manifest's pgDumpVersion loses the minor) and the major is 9,
  // while formatServerVersion calls the same release major 96.
  it('keeps the whole 9.6.24 version and agrees with formatServerVersion on the major', () => {
    const v = parseClientVersion('pg_dump (PostgreSQL) 9.6.24');
    expect(v).toEqual({ version: '9.6.24', major: formatServerVersion(90624).major });
  });

  it('returns null for text that is not a PostgreSQL version', () => {
    expect(parseClientVersion('')).toBeNull();
    expect(parseClientVersion('pg_dump: command not found')).toBeNull();
    expect(parseClientVersion('pg_dump (Greenplum) 6.1')).toBeNull();
  });
});

describe('formatServerVersion', () => {
  it('formats server_version_num', () => {
    expect(formatServerVersion(150018)).toEqual({ version: '15.18', major: 15 });
    expect(formatServerVersion(170002)).toEqual({ version: '17.2', major: 17 });
    expect(formatServerVersion(130000)).toEqual({ version: '13.0', major: 13 });
    expect(formatServerVersion(180001)).toEqual({ version: '18.1', major: 18 });
    expect(formatServerVersion(90624).version).toBe('9.6.24');
    expect(formatServerVersion(90105).version).toBe('9.1.5');
  });
});

function install(binDir: string, version: string): ClientInstall {
  return { binDir, version, major: Number(version.split('.')[0]) };
}

describe('selectClient', () => {
  const sets: Record<string, ClientInstall[]> = {
    '13 15 17': [install('/a', '13.16'), install('/b', '15.8'), install('/c', '17.2')],
    '16 14 18': [install('/a', '16.4'), install('/b', '14.13'), install('/c', '18.0')],
    'only 15': [install('/a', '15.8')],
    none: [],
  };

  const expected: Record<string, Record<number, string | null>> = {
    '13 15 17': { 13: '/a', 14: '/b', 15: '/b', 16: '/c', 17: '/c', 18: null },
    '16 14 18': { 13: '/b', 14: '/b', 15: '/a', 16: '/a', 17: '/c', 18: '/c' },
    'only 15': { 13: '/a', 14: '/a', 15: '/a', 16: null, 17: null, 18: null },
    none: { 13: null, 14: null, 15: null, 16: null, 17: null, 18: null },
  };

  for (const [name, found] of Object.entries(sets)) {
    it(`picks the server's major, else the oldest newer one, from clients ${name}`, () => {
      for (let server = 13; server <= 18; server++) {
        const pick = selectClient(found, server);
        expect(pick?.binDir ?? null, `server ${server}`).toBe(expected[name]?.[server]);
        if (pick) expect(pick.major).toBeGreaterThanOrEqual(server);
      }
    });
  }

  it('prefers the earlier directory among clients of the same major', () => {
    const found = [
      install('/opt/pg-bin', '16.2'),
      install('/usr/bin', '16.4'),
      install('/usr/lib/postgresql/17/bin', '17.2'),
      install('/usr/lib/postgresql/16/bin', '16.6'),
    ];
    expect(selectClient(found, 16)?.binDir).toBe('/opt/pg-bin');
    expect(selectClient(found, 15)?.binDir).toBe('/opt/pg-bin');
    expect(selectClient(found, 17)?.binDir).toBe('/usr/lib/postgresql/17/bin');
  });

  it('any client works for a server of major 0 (psql for the version query)', () => {
    const found = [install('/b', '17.2'), install('/a', '13.16')];
    expect(selectClient(found, 0)?.binDir).toBe('/a');
  });

  // pg_dump 13–18 all dump servers back to 9.2, but a 9.6 server's major is 96, which
  // no installed client reaches: the backup stops with "No pg_dump of version 96".
  it('serves a 9.6 server with the oldest installed client', () => {
    const found = [install('/a', '15.8'), install('/b', '13.16')];
    expect(selectClient(found, formatServerVersion(90624).major)?.binDir).toBe('/b');
  });
});

describe('findClients', () => {
  let root = '';

  /** A bin directory with fake tools that print `pg_dump (PostgreSQL) <version>`. */
  async function binDir(
    name: string,
    version: string,
    options: { psql?: boolean; executable?: boolean; output?: string } = {},
  ): Promise<string> {
    const dir = path.join(root, name);
    await mkdir(dir, { recursive: true });
    const tools =
      options.psql === false ? ['pg_dump', 'pg_restore'] : ['pg_dump', 'pg_restore', 'psql'];
    for (const tool of tools) {
      const file = path.join(dir, tool);
      const out = options.output ?? `${tool} (PostgreSQL) ${version} (Debian ${version}-1.pgdg)`;
      await writeFile(file, `#!/bin/sh\necho '${out}'\n`);
      await chmod(file, options.executable === false && tool === 'pg_dump' ? 0o644 : 0o755);
    }
    return dir;
  }

  let v15 = '';
  let v17 = '';
  let v15again = '';
  let noPsql = '';
  let notExecutable = '';
  let junk = '';
  let v16 = '';

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'pg-dr-binaries-'));
    // Versions no real installation has, so a real client elsewhere cannot shadow them.
    v15 = await binDir('v15', '15.97');
    v17 = await binDir('v17', '17.98');
    v15again = await binDir('v15-again', '15.97');
    noPsql = await binDir('no-psql', '14.96', { psql: false });
    notExecutable = await binDir('not-executable', '13.95', { executable: false });
    junk = await binDir('junk', '0', { output: 'not postgres at all' });
    v16 = await binDir('pg-bin-dir', '16.99');
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const ours = (found: ClientInstall[]) => found.filter((c) => c.binDir.startsWith(root));

  it('finds every distinct client on PATH, in PATH order (psql not needed), skipping what is none', async () => {
    const PATH = [junk, noPsql, v15, notExecutable, v17, v15again, '', '/nonexistent'].join(
      path.delimiter,
    );
    const found = ours(await findClients('pg_dump', '', { PATH }));
    expect(found).toEqual([
      { binDir: noPsql, version: '14.96', major: 14 },
      { binDir: v15, version: '15.97', major: 15 },
      { binDir: v17, version: '17.98', major: 17 },
    ]);
    expect(toolPath(found[1] as ClientInstall, 'pg_restore')).toBe(path.join(v15, 'pg_restore'));
  });

  it('looks in pg-bin-dir first', async () => {
    const PATH = [v17, v15].join(path.delimiter);
    const found = ours(await findClients('pg_dump', v16, { PATH }));
    expect(found.map((c) => c.version)).toEqual(['16.99', '17.98', '15.97']);
    expect(selectClient(found, 15)?.binDir).toBe(v15);
    expect(selectClient(found, 16)?.binDir).toBe(v16);
  });

  it('lists pg-bin-dir, then PATH, then the usual install locations, once each', async () => {
    const dirs = await candidateBinDirs(v16, { PATH: [v15, v16, v15].join(path.delimiter) });
    expect(dirs.slice(0, 2)).toEqual([v16, v15]);
    expect(new Set(dirs).size).toBe(dirs.length);
    expect(dirs).toContain('/usr/local/bin');
  });
});

describe('install-client: auto', () => {
  it('installs nothing off a GitHub-hosted runner; the error says why and how', async () => {
    for (const env of [
      { PATH: '/nonexistent' },
      { PATH: '/nonexistent', RUNNER_ENVIRONMENT: 'self-hosted' },
    ]) {
      const lines: string[] = [];
      const tried = pickClient(
        'pg_dump',
        99,
        'the server runs PostgreSQL 99',
        { binDir: '', install: 'auto' },
        env,
        (l) => lines.push(l),
      );
      await expect(tried).rejects.toThrow(
        "or set 'install-client: true' (with 'auto', pg-dr installs it on GitHub-hosted runners only).",
      );
      // Nothing was run: no apt-get line was logged.
      expect(lines).toEqual([]);
    }
  });
});

describe('realInstall: the folder a tool really lives in', () => {
  it('follows a link to the tool itself, but not to a program of another name (pg_wrapper)', async () => {
    const { mkdtemp, mkdir, symlink, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { realInstall } = await import('../../src/postgres/binaries.js');
    const dir = await mkdtemp(join(tmpdir(), 'pg-dr-real-'));
    try {
      await mkdir(join(dir, 'real'));
      await mkdir(join(dir, 'path'));
      await writeFile(join(dir, 'real', 'pg_verifybackup'), '', { mode: 0o755 });
      await writeFile(join(dir, 'real', 'pg_wrapper'), '', { mode: 0o755 });
      await symlink(join(dir, 'real', 'pg_verifybackup'), join(dir, 'path', 'pg_verifybackup'));
      await symlink(join(dir, 'real', 'pg_wrapper'), join(dir, 'path', 'pg_basebackup'));
      const at = { binDir: join(dir, 'path'), major: 99, version: '99.1' };
      expect((await realInstall(at, 'pg_verifybackup')).binDir).toBe(join(dir, 'real'));
      // No /usr/lib/postgresql/99/bin here: the folder found stays.
      expect((await realInstall(at, 'pg_basebackup')).binDir).toBe(join(dir, 'path'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { INPUT_SPECS } from '../../src/inputs/spec.generated.js';

/**
 * Every workflow file — the project's own, the reusable workflows users call, and the
 * examples they copy — read as data. actionlint (npm run lint:workflows) checks syntax and
 * expressions; this checks what actionlint cannot know: pins, least permissions, the
 * schedules the examples promise, and that every input handed to the action or to a reusable
 * workflow exists there (actionlint cannot read `./.pg-dr/action.yml` or a remote workflow).
 */

type Yaml = Record<string, unknown>;

interface WorkflowFile {
  readonly path: string;
  readonly text: string;
  readonly doc: Yaml;
}

const DIRS = ['.github/workflows', 'examples/workflows'];
const REUSABLE = ['dr-backup.yml', 'dr-verify.yml', 'dr-monitor.yml', 'dr-wal.yml'] as const;
/** How the examples name this project (a placeholder the user replaces). */
const SELF = 'your-org/pg-dr';

/** Third-party actions whose commit SHAs were verified for their tags; nothing else is allowed. */
const VERIFIED_PINS: Readonly<Record<string, { sha: string; version: string }>> = {
  'actions/checkout': { sha: '11bd71901bbe5b1630ceea73d27597364c9af683', version: 'v4.2.2' },
  'actions/setup-node': { sha: '49933ea5288caeca8642d1e84afbd3f7d6820020', version: 'v4.4.0' },
  'actions/upload-artifact': {
    sha: 'ea165f8d65b6e75b540449e92b4886f43607fa02',
    version: 'v4.6.2',
  },
};

const files: WorkflowFile[] = DIRS.flatMap((dir) =>
  readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => {
      const path = join(dir, f);
      const text = readFileSync(path, 'utf8');
      return { path, text, doc: parse(text) as Yaml };
    }),
);

const action = parse(readFileSync('action.yml', 'utf8')) as {
  inputs: Record<string, { default?: string }>;
};

function file(path: string): WorkflowFile {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`${path} is missing`);
  return f;
}

/** A GitHub expression as written in YAML: expr('inputs.x') is `${{ inputs.x }}`. */
const expr = (inner: string): string => `\${{ ${inner} }}`;
const obj = (v: unknown): Yaml => (v && typeof v === 'object' ? (v as Yaml) : {});
const jobsOf = (f: WorkflowFile): [string, Yaml][] =>
  Object.entries(obj(f.doc.jobs)).map(([k, v]) => [k, obj(v)]);
const stepsOf = (job: Yaml): Yaml[] => (Array.isArray(job.steps) ? job.steps.map(obj) : []);

/** Every `uses:` in a file: job-level (reusable workflow calls) and step-level. */
function usesOf(f: WorkflowFile): { uses: string; with: Yaml; secrets: unknown; job: string }[] {
  return jobsOf(f).flatMap(([name, job]) => [
    ...(typeof job.uses === 'string'
      ? [{ uses: job.uses, with: obj(job.with), secrets: job.secrets, job: name }]
      : []),
    ...stepsOf(job)
      .filter((s) => typeof s.uses === 'string')
      .map((s) => ({ uses: s.uses as string, with: obj(s.with), secrets: undefined, job: name })),
  ]);
}

/** The reusable workflow a `uses:` calls, when it is one of this project's. */
function calledWorkflow(uses: string): WorkflowFile | null {
  const m = /^(?:your-org\/pg-dr\/|\.\/)\.github\/workflows\/([\w.-]+\.ya?ml)(?:@.+)?$/.exec(uses);
  return m ? file(`.github/workflows/${m[1]}`) : null;
}

/** `uses:` values that run the pg-dr action itself. */
function isPgDrAction(uses: string): boolean {
  return uses === './' || uses === './.pg-dr' || uses.startsWith(`${SELF}@`);
}

function cronsOf(f: WorkflowFile): string[] {
  const on = obj(f.doc.on);
  return Array.isArray(on.schedule) ? on.schedule.map((s) => String(obj(s).cron)) : [];
}

const example = (name: string) => file(`examples/workflows/${name}`);

/** The values one cron field names, `lo`–`hi`: `*`, `a`, `a-b`, each with `/step`, comma-separated. */
function cronField(field: string, lo: number, hi: number): number[] {
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (!m) throw new Error(`cron field "${field}": cannot read "${part}"`);
    const from = m[1] === '*' ? lo : Number(m[1]);
    const to = m[1] === '*' ? hi : m[2] !== undefined ? Number(m[2]) : m[3] ? hi : from;
    const step = Number(m[3] ?? 1);
    if (from < lo || to > hi || from > to || step < 1)
      throw new Error(`cron field "${field}": "${part}" is outside ${lo}-${hi}`);
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return [...values].sort((a, b) => a - b);
}

/**
 * The shortest time, in minutes, between two runs of a cron schedule, over a day that runs
 * every hour it names (day-of-month and weekday fields only remove runs, never bring two closer).
 */
function shortestInterval(cron: string): number {
  const [minute = '', hour = ''] = cron.trim().split(/\s+/);
  const runs = cronField(hour, 0, 23).flatMap((h) =>
    cronField(minute, 0, 59).map((m) => h * 60 + m),
  );
  const gaps = runs.map(
    (t, i) => (i + 1 < runs.length ? (runs[i + 1] as number) : 1440 + (runs[0] as number)) - t,
  );
  return Math.min(...gaps);
}

describe('the workflow files', () => {
  it('are all found: the reusable workflows, CI and every example', () => {
    const paths = files.map((f) => f.path);
    for (const name of [...REUSABLE, 'ci.yml'])
      expect(paths).toContain(`.github/workflows/${name}`);
    for (const name of [
      'pg-dr-backup.yml',
      'pg-dr-verify.yml',
      'pg-dr-monitor.yml',
      'pg-dr-prune.yml',
      'pg-dr-backup-matrix.yml',
      'pg-dr-backup-self-hosted.yml',
      'pg-dr-check.yml',
      'pg-dr-wal.yml',
    ])
      expect(paths).toContain(`examples/workflows/${name}`);
  });

  it.each(files.map((f) => [f.path, f] as const))(
    '%s pins every third-party action by a verified commit SHA with its version comment',
    (_path, f) => {
      for (const { uses } of usesOf(f)) {
        if (uses.startsWith('./') || uses === SELF || uses.startsWith(`${SELF}/`)) continue;
        if (uses.startsWith(`${SELF}@`)) continue; // this project, as the user names it
        expect(uses, `${f.path}: ${uses}`).toMatch(/^[\w.-]+\/[\w.-]+(\/[^@]+)?@[0-9a-f]{40}$/);
        const [name, sha] = uses.split('@') as [string, string];
        const pin = VERIFIED_PINS[name];
        expect(pin, `${f.path}: ${name} is not among the verified pins`).toBeDefined();
        expect(sha, `${f.path}: ${name}`).toBe(pin?.sha);
        // The line itself carries `# vX.Y.Z`, the version the SHA is.
        const lines = f.text.split('\n').filter((l) => l.includes(`uses: ${uses}`));
        expect(lines.length).toBeGreaterThan(0);
        for (const line of lines) expect(line).toMatch(new RegExp(`# ${pin?.version}$`));
      }
    },
  );

  it.each(files.filter((f) => !f.path.endsWith('/release.yml')).map((f) => [f.path, f] as const))(
    '%s sets permissions and grants nothing beyond contents: read, issues: write, actions: read',
    (_path, f) => {
      const grants: Yaml[] = [obj(f.doc.permissions)];
      expect(f.doc.permissions, `${f.path}: workflow-level permissions`).toBeDefined();
      for (const [, job] of jobsOf(f)) if (job.permissions) grants.push(obj(job.permissions));
      for (const g of grants)
        for (const [scope, level] of Object.entries(g)) {
          const allowed = { contents: 'read', issues: 'write', actions: 'read' } as Yaml;
          expect(level, `${f.path}: ${scope}: ${String(level)}`).toBe(allowed[scope]);
        }
    },
  );

  it.each(files.map((f) => [f.path, f] as const))(
    '%s schedules nothing more often than every 5 minutes (the shortest interval GitHub runs)',
    (_path, f) => {
      for (const cron of cronsOf(f))
        expect(shortestInterval(cron), `${f.path}: ${cron}`).toBeGreaterThanOrEqual(5);
    },
  );

  it('the schedule reader finds the shortest interval, across the hour and the day too', () => {
    expect(shortestInterval('*/5 * * * *')).toBe(5);
    expect(shortestInterval('3-59/5 * * * *')).toBe(5);
    expect(shortestInterval('*/2 * * * *')).toBe(2);
    expect(shortestInterval('* * * * *')).toBe(1);
    expect(shortestInterval('0,30 * * * *')).toBe(30);
    expect(shortestInterval('2,58 * * * *')).toBe(4); // 58 → 2 of the next hour
    expect(shortestInterval('58 23 * * *')).toBe(1440);
    expect(shortestInterval('0 0,23 * * *')).toBe(60);
    expect(shortestInterval('10-12 */6 * * 1')).toBe(1);
    expect(() => shortestInterval('@hourly')).toThrow(/cannot read/);
    expect(() => shortestInterval('60 * * * *')).toThrow(/outside 0-59/);
  });

  it.each(files.map((f) => [f.path, f] as const))('%s gives every job a timeout', (_path, f) => {
    for (const [name, job] of jobsOf(f)) {
      if (typeof job.uses === 'string') continue; // the called workflow sets its own
      expect(job['timeout-minutes'], `${f.path}: job ${name}`).toBeDefined();
    }
  });

  it.each(files.map((f) => [f.path, f] as const))(
    '%s passes the pg-dr action only inputs that action.yml declares',
    (_path, f) => {
      for (const u of usesOf(f).filter((x) => isPgDrAction(x.uses)))
        for (const key of Object.keys(u.with))
          expect(Object.keys(action.inputs), `${f.path}: ${u.uses} with ${key}`).toContain(key);
    },
  );

  it.each(files.map((f) => [f.path, f] as const))(
    '%s calls the reusable workflows with declared inputs and secrets, required ones included',
    (_path, f) => {
      for (const u of usesOf(f)) {
        const called = calledWorkflow(u.uses);
        if (!called) continue;
        const call = obj(obj(called.doc.on).workflow_call);
        const inputs = obj(call.inputs);
        const secrets = obj(call.secrets);
        for (const key of Object.keys(u.with))
          expect(Object.keys(inputs), `${f.path} → ${called.path}: input ${key}`).toContain(key);
        for (const [key, spec] of Object.entries(inputs))
          if (obj(spec).required === true)
            expect(Object.keys(u.with), `${f.path} → ${called.path}: required ${key}`).toContain(
              key,
            );
        if (u.secrets === 'inherit') continue;
        for (const key of Object.keys(obj(u.secrets)))
          expect(Object.keys(secrets), `${f.path} → ${called.path}: secret ${key}`).toContain(key);
        for (const [key, spec] of Object.entries(secrets))
          if (obj(spec).required === true)
            expect(Object.keys(obj(u.secrets)), `${f.path}: required secret ${key}`).toContain(key);
      }
    },
  );
});

describe('the reusable workflows', () => {
  const expected = {
    'dr-backup.yml': {
      timeout: 30,
      permissions: { contents: 'read', issues: 'write' },
    },
    'dr-verify.yml': {
      timeout: 60,
      permissions: { contents: 'read', issues: 'write' },
    },
    'dr-monitor.yml': {
      timeout: 5,
      permissions: { contents: 'read', issues: 'write', actions: 'read' },
    },
    'dr-wal.yml': {
      timeout: 15,
      permissions: { contents: 'read', issues: 'write' },
    },
  } as const;

  it.each(REUSABLE)('%s is called with workflow_call and typed inputs and secrets', (name) => {
    const call = obj(obj(file(`.github/workflows/${name}`).doc.on).workflow_call);
    const inputs = Object.entries(obj(call.inputs));
    expect(inputs.length).toBeGreaterThan(10);
    for (const [key, spec] of inputs) {
      expect(['string', 'number', 'boolean'], `input ${key}`).toContain(obj(spec).type);
      expect(obj(spec).description, `input ${key}`).toBeTruthy();
    }
    expect(Object.keys(obj(call.secrets))).toEqual(
      expect.arrayContaining(['PRIMARY_ACCESS_KEY_ID', 'PRIMARY_SECRET_ACCESS_KEY']),
    );
    // One ref, the `uses:` line's: pg-dr's repository and ref are for GitHub Enterprise Server only.
    expect(obj(call.inputs)['pg-dr-repository']).toMatchObject({ default: '' });
    expect(obj(call.inputs)['pg-dr-ref']).toMatchObject({ default: '' });
    expect(obj(call.inputs)['database-name']).toMatchObject({ required: true });
  });

  it.each(REUSABLE)(
    '%s: least permissions, one concurrency group per database never cancelled, a timeout input',
    (name) => {
      const f = file(`.github/workflows/${name}`);
      const want = expected[name];
      expect(f.doc.permissions).toEqual({});
      const jobs = jobsOf(f);
      expect(jobs).toHaveLength(1);
      const [, job] = jobs[0] as [string, Yaml];
      expect(job.permissions).toEqual(want.permissions);
      const concurrency = obj(job.concurrency);
      expect(concurrency['cancel-in-progress']).toBe(false);
      expect(String(concurrency.group)).toContain(expr('inputs.database-name'));
      expect(job['timeout-minutes']).toBe(expr('inputs.timeout-minutes'));
      const input = obj(obj(obj(obj(f.doc.on).workflow_call).inputs)['timeout-minutes']);
      expect(input).toMatchObject({ type: 'number', default: want.timeout });
    },
  );

  it.each(REUSABLE)(
    '%s runs pg-dr from its own checkout at its own commit and always writes a summary line last',
    (name) => {
      const [, job] = jobsOf(file(`.github/workflows/${name}`))[0] as [string, Yaml];
      const steps = stepsOf(job);
      const checkout = steps.find((s) => obj(s.with).path === '.pg-dr');
      expect(obj(checkout?.with)).toMatchObject({
        repository: expr('steps.which.outputs.repository'),
        ref: expr('steps.which.outputs.ref'),
        'persist-credentials': false,
      });
      const which = steps.find((s) => s.id === 'which');
      expect(steps.indexOf(which as Yaml)).toBeLessThan(steps.indexOf(checkout as Yaml));
      expect(obj(which?.env)).toEqual({
        JOB_CONTEXT: expr('toJSON(job)'),
        WANT_REPOSITORY: expr('inputs.pg-dr-repository'),
        WANT_REF: expr('inputs.pg-dr-ref'),
      });
      const run = steps.findIndex((s) => s.uses === './.pg-dr');
      expect(run).toBeGreaterThan(steps.indexOf(checkout as Yaml));
      const last = steps.at(-1) as Yaml;
      expect(last.if).toBe('always()');
      expect(String(last.run)).toContain('>> "$GITHUB_STEP_SUMMARY"');
      // Expressions reach the shell through env, never inline (no script injection).
      for (const s of steps) expect(String(s.run ?? '')).not.toContain('${{');
    },
  );

  it.each(REUSABLE)(
    "%s decides which pg-dr to run with dr-backup's script (run in bash below)",
    (name) => {
      const which = (n: string) =>
        stepsOf((jobsOf(file(`.github/workflows/${n}`))[0] as [string, Yaml])[1]).find(
          (s) => s.id === 'which',
        );
      expect(which(name)?.run).toBeTruthy();
      expect(which(name)?.run).toBe(which('dr-backup.yml')?.run);
    },
  );

  it.each(REUSABLE)(
    "%s hands the action only inputs its command uses (action.yml's description prefixes)",
    (name) => {
      const [, job] = jobsOf(file(`.github/workflows/${name}`))[0] as [string, Yaml];
      const w = obj(stepsOf(job).find((s) => s.uses === './.pg-dr')?.with);
      const command = String(w.command);
      expect(command).toBeTruthy();
      for (const key of Object.keys(w)) {
        const usage = (INPUT_SPECS as Record<string, { usage: Record<string, string> }>)[key]
          ?.usage;
        expect(Object.keys(usage ?? {}), `${name}: ${key} for ${command}`).toEqual(
          expect.arrayContaining([expect.stringMatching(new RegExp(`^(\\*|${command})$`))]),
        );
      }
    },
  );

  it('dr-wal ships with the wal command: its slot, no client install, only pg-dr checked out', () => {
    const f = file('.github/workflows/dr-wal.yml');
    const inputs = obj(obj(obj(f.doc.on).workflow_call).inputs);
    expect(inputs['wal-slot']).toMatchObject({ type: 'string', default: '' });
    expect(inputs['create-slot']).toMatchObject({ type: 'boolean', default: false });
    const secrets = obj(obj(obj(f.doc.on).workflow_call).secrets);
    expect(secrets.DATABASE_URL).toMatchObject({ required: true });
    const [, job] = jobsOf(f)[0] as [string, Yaml];
    const steps = stepsOf(job);
    const w = obj(steps.find((s) => s.uses === './.pg-dr')?.with);
    expect(w).toMatchObject({
      command: 'wal',
      'wal-slot': expr('inputs.wal-slot'),
      'create-slot': expr('inputs.create-slot'),
      'database-url': expr('secrets.DATABASE_URL'),
      'alert-labels': `${expr('inputs.alert-labels')},db:${expr('inputs.database-name')}`,
    });
    // Nothing of the platform goes into WAL: pg-dr's checkout is the only one.
    const checkouts = steps.filter((s) => String(s.uses ?? '').startsWith('actions/checkout@'));
    expect(checkouts.map((s) => obj(s.with).path)).toEqual(['.pg-dr']);
    // The wal command speaks the replication protocol itself: no service, no apt, no docker.
    expect(job.services).toBeUndefined();
    for (const s of steps) expect(String(s.run ?? '')).not.toMatch(/apt-get|docker|pg_receivewal/);
    // A group of its own: in a group shared with dr-backup, a queued shipment would cancel a
    // pending backup (GitHub keeps one pending run per group).
    expect(obj(job.concurrency).group).toBe(`pg-dr-wal-${expr('inputs.database-name')}`);
    const groups = REUSABLE.map((n) =>
      String(
        obj((jobsOf(file(`.github/workflows/${n}`))[0] as [string, Yaml])[1].concurrency).group,
      ),
    );
    expect(new Set(groups).size).toBe(REUSABLE.length);
  });

  it("dr-backup hands mode, wal-slot and create-slot through (the base of dr-wal's WAL)", () => {
    const f = file('.github/workflows/dr-backup.yml');
    const inputs = obj(obj(obj(f.doc.on).workflow_call).inputs);
    expect(inputs.mode).toMatchObject({ type: 'string', default: 'logical' });
    expect(inputs['wal-slot']).toMatchObject({ type: 'string', default: '' });
    expect(inputs['create-slot']).toMatchObject({ type: 'boolean', default: false });
    const [, job] = jobsOf(f)[0] as [string, Yaml];
    const w = obj(stepsOf(job).find((s) => s.uses === './.pg-dr')?.with);
    for (const key of ['mode', 'wal-slot', 'create-slot'])
      expect(w[key], key).toBe(expr(`inputs.${key}`));
    expect(action.inputs.mode?.default).toBe('logical');
  });

  it("dr-backup's config-paths default is the action's, and never bundles pg-dr's checkout", () => {
    const f = file('.github/workflows/dr-backup.yml');
    const inputs = obj(obj(obj(f.doc.on).workflow_call).inputs);
    const lines = (s: unknown) =>
      String(s)
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    expect(lines(obj(inputs['config-paths']).default)).toEqual(
      lines(action.inputs['config-paths']?.default),
    );
    const [, job] = jobsOf(f)[0] as [string, Yaml];
    const step = stepsOf(job).find((s) => s.uses === './.pg-dr');
    expect(lines(obj(step?.with)['config-paths'])).toEqual([
      expr('inputs.config-paths'),
      '!.pg-dr/**',
    ]);
  });

  it('dr-verify drills into a postgres:<major> service (default 17) with extra packages', () => {
    const f = file('.github/workflows/dr-verify.yml');
    const inputs = obj(obj(obj(f.doc.on).workflow_call).inputs);
    expect(inputs['postgres-major']).toMatchObject({ type: 'string', default: '17' });
    expect(inputs['drill-packages']).toMatchObject({ type: 'string', default: '' });
    expect(inputs['verify-level']).toMatchObject({ default: 'restore' });
    const [, job] = jobsOf(f)[0] as [string, Yaml];
    const drill = obj(obj(job.services).drill);
    expect(String(drill.image)).toContain("format('postgres:{0}', inputs.postgres-major)");
    const step = stepsOf(job).find((s) => s.uses === './.pg-dr');
    expect(String(obj(step?.with)['drill-database-url'])).toContain(
      "job.services.drill.ports['5432']",
    );
    const install = stepsOf(job).find((s) => String(s.run ?? '').includes('docker exec'));
    expect(install?.if).toBe("inputs.drill-packages != ''");
  });
});

describe('release.yml', () => {
  const f = file('.github/workflows/release.yml');
  const [, job] = jobsOf(f)[0] as [string, Yaml];
  const steps = stepsOf(job);
  const run = (s: Yaml) => String(s.run ?? '');

  it('runs on a vX.Y.Z tag only, with write access in its one job and nowhere else', () => {
    expect(obj(obj(f.doc.on).push)).toEqual({ tags: ['v[0-9]+.[0-9]+.[0-9]+'] });
    expect(f.doc.permissions).toEqual({});
    expect(jobsOf(f)).toHaveLength(1);
    expect(job.permissions).toEqual({ contents: 'write', 'id-token': 'write' });
  });

  it('checks tag, package.json, CHANGELOG and dist/ before it releases, then moves the major tag', () => {
    const at = (pattern: RegExp) => steps.findIndex((s) => pattern.test(run(s)));
    const checks = [
      at(/node scripts\/release-check\.mjs "\$TAG"/),
      at(/git merge-base --is-ancestor "\$TAG" origin\/main/),
      at(/npm run package\n\s*git diff --exit-code/),
    ];
    const release = at(/gh release create "\$TAG" --verify-tag .*--notes-file/);
    const major = at(/git tag --force "\$major" "\$TAG\^\{commit\}"/);
    const publish = at(/npm publish --provenance/);
    for (const c of checks) expect(c).toBeGreaterThanOrEqual(0);
    expect(Math.max(...checks)).toBeLessThan(release);
    expect(release).toBeLessThan(major);
    expect(major).toBeLessThan(publish);
    // Expressions reach the shell through env, never inline (no script injection).
    for (const s of steps) expect(run(s)).not.toContain('${{');
  });
});

describe("the reusable workflows' ref step, run in bash", () => {
  /** Runs dr-backup's `which` step as the runner would: its env, a GITHUB_OUTPUT file. */
  function which(env: Record<string, string>) {
    const [, job] = jobsOf(file('.github/workflows/dr-backup.yml'))[0] as [string, Yaml];
    const step = stepsOf(job).find((s) => s.id === 'which') as Yaml;
    const dir = mkdtempSync(join(tmpdir(), 'which-'));
    const out = join(dir, 'output');
    writeFileSync(out, '');
    const r = spawnSync('bash', ['-e', '-c', String(step.run)], {
      env: {
        PATH: process.env.PATH,
        GITHUB_OUTPUT: out,
        WANT_REPOSITORY: '',
        WANT_REF: '',
        ...env,
      },
      encoding: 'utf8',
    });
    const outputs = Object.fromEntries(
      readFileSync(out, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('=') as [string, string]),
    );
    rmSync(dir, { recursive: true, force: true });
    return { status: r.status, stdout: r.stdout, outputs };
  }
  const sha = 'a'.repeat(40);
  const own = JSON.stringify({
    status: 'success',
    workflow_repository: 'acme/pg-dr',
    workflow_sha: sha,
  });

  it("takes the workflow file's own repository and commit from the job context", () => {
    expect(which({ JOB_CONTEXT: own })).toMatchObject({
      status: 0,
      outputs: { repository: 'acme/pg-dr', ref: sha },
    });
  });

  it('stops with a clear error where the job context has no workflow identity (GHES)', () => {
    const r = which({ JOB_CONTEXT: '{"status":"success"}' });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /^::error title=pg-dr: which pg-dr to run::.*set the inputs pg-dr-repository and pg-dr-ref/im,
    );
    expect(
      which({ JOB_CONTEXT: '{}', WANT_REPOSITORY: 'acme/pg-dr', WANT_REF: 'v0' }).outputs,
    ).toEqual({
      repository: 'acme/pg-dr',
      ref: 'v0',
    });
  });

  it('warns when a pg-dr-ref commit differs from the workflow file', () => {
    const r = which({ JOB_CONTEXT: own, WANT_REF: 'b'.repeat(40) });
    expect(r.status).toBe(0);
    expect(r.outputs.ref).toBe('b'.repeat(40));
    expect(r.stdout).toMatch(/^::warning title=pg-dr: two refs::/m);
    expect(which({ JOB_CONTEXT: own, WANT_REF: 'v0' }).stdout).not.toMatch(/::warning/);
  });
});

describe('the examples', () => {
  it('back up nightly at 02:00 UTC, and by hand with optional inputs', () => {
    const f = example('pg-dr-backup.yml');
    expect(cronsOf(f)).toEqual(['0 2 * * *']);
    const dispatch = obj(obj(f.doc.on).workflow_dispatch);
    const inputs = Object.values(obj(dispatch.inputs)).map(obj);
    expect(inputs.length).toBeGreaterThan(0);
    for (const i of inputs) expect(i.required ?? false).toBe(false);
  });

  it('verify weekly, Sunday 03:00 UTC, with a restore drill', () => {
    const f = example('pg-dr-verify.yml');
    expect(cronsOf(f)).toEqual(['0 3 * * 0']);
    expect(usesOf(f)[0]?.with['verify-level']).toBe('restore');
  });

  it('monitor hourly at an off-peak minute (not :00), against the backup example', () => {
    const f = example('pg-dr-monitor.yml');
    const [cron] = cronsOf(f);
    const [minute, ...rest] = String(cron).split(' ');
    expect(rest).toEqual(['*', '*', '*', '*']);
    expect(Number(minute)).toBeGreaterThanOrEqual(1);
    expect(Number(minute)).toBeLessThanOrEqual(59);
    expect(usesOf(f)[0]?.with['backup-workflow']).toBe('pg-dr-backup.yml');
  });

  it('ship WAL every 5 minutes off the top of the hour, and by hand, at the least permissions', () => {
    const f = example('pg-dr-wal.yml');
    const crons = cronsOf(f);
    expect(crons).toHaveLength(1);
    const [cron = ''] = crons;
    expect(shortestInterval(cron)).toBe(5);
    expect(cronField(cron.split(' ')[0] ?? '', 0, 59)).not.toContain(0);
    expect(cron.split(' ').slice(1)).toEqual(['*', '*', '*', '*']);
    expect(Object.keys(obj(f.doc.on))).toEqual(['schedule', 'workflow_dispatch']);
    expect(f.doc.permissions).toEqual({ contents: 'read', issues: 'write' });
    const [u] = usesOf(f);
    expect(u?.uses).toBe(`${SELF}/.github/workflows/dr-wal.yml@v0`);
    expect(u?.with['wal-slot']).toBe('pg_dr');
    // The slot is made by the physical backup; by hand only on request, never on the schedule.
    expect(u?.with['create-slot']).toBe(expr('inputs.create-slot == true'));
    expect(Object.keys(obj(u?.secrets))).toContain('DATABASE_URL');
    // The header says what the schedule means for the RPO.
    expect(f.text).toMatch(/5 minutes is the shortest interval GitHub runs/);
    expect(f.text).toMatch(/RPO\) is this interval plus that delay/);
  });

  it('prune with the action itself', () => {
    const f = example('pg-dr-prune.yml');
    expect(cronsOf(f)).toHaveLength(1);
    const u = usesOf(f).find((x) => isPgDrAction(x.uses));
    expect(u?.with.command).toBe('prune');
  });

  it("check the set-up by hand only, with the action itself and the backup's concurrency group", () => {
    const f = example('pg-dr-check.yml');
    expect(cronsOf(f)).toEqual([]);
    expect(Object.keys(obj(f.doc.on))).toEqual(['workflow_dispatch']);
    const u = usesOf(f).find((x) => isPgDrAction(x.uses));
    expect(u?.with.command).toBe('check');
    expect(u?.with['backup-workflow']).toBe('pg-dr-backup.yml');
    const [, job] = jobsOf(f)[0] as [string, Yaml];
    expect(obj(job.concurrency).group).toBe('pg-dr-backup-app');
  });

  it('back up several databases with a matrix: own prefix, group and feed each, no fail-fast', () => {
    const f = example('pg-dr-backup-matrix.yml');
    expect(cronsOf(f)).toEqual(['0 2 * * *']);
    const [, job] = jobsOf(f)[0] as [string, Yaml];
    const strategy = obj(job.strategy);
    expect(strategy['fail-fast']).toBe(false);
    const include = obj(strategy.matrix).include as Yaml[];
    expect(new Set(include.map((i) => i.database)).size).toBeGreaterThan(1);
    expect(obj(job.with)['database-name']).toBe(expr('matrix.database'));
    expect(String(obj(job.with).prefix)).toContain(expr('matrix.database'));
  });

  it('back up from a self-hosted runner without a tunnel', () => {
    const f = example('pg-dr-backup-self-hosted.yml');
    const u = usesOf(f)[0];
    expect(String(u?.with['runs-on'])).toContain('self-hosted');
    expect(Object.keys(u?.with ?? {}).some((k) => k.startsWith('ssh-'))).toBe(false);
  });

  it('call the reusable workflows at one ref and check pg-dr out at the same project', () => {
    for (const f of files.filter((x) => x.path.startsWith('examples/'))) {
      for (const u of usesOf(f).filter((x) => calledWorkflow(x.uses))) {
        expect(u.uses).toMatch(new RegExp(`^${SELF}/\\.github/workflows/dr-[a-z]+\\.yml@v0$`));
        // The `uses:` line is the only ref (the workflow checks itself out at it).
        expect(u.with['pg-dr-repository']).toBeUndefined();
        expect(u.with['pg-dr-ref']).toBeUndefined();
      }
    }
  });
});

describe('ci.yml', () => {
  it('keeps lint, dist and test, and runs the action itself against PostgreSQL and S3', () => {
    const f = file('.github/workflows/ci.yml');
    const jobs = Object.fromEntries(jobsOf(f));
    expect(Object.keys(jobs)).toEqual(expect.arrayContaining(['lint', 'dist', 'test', 'action']));
    const lint = stepsOf(jobs.lint as Yaml).map((s) => String(s.run ?? ''));
    expect(lint).toContain('npm run lint:workflows');
    const job = jobs.action as Yaml;
    const images = Object.values(obj(job.services)).map((s) => String(obj(s).image));
    expect(images.some((i) => i.startsWith('postgres:'))).toBe(true);
    expect(images.some((i) => i.startsWith('adobe/s3mock:'))).toBe(true);
    const commands = stepsOf(job)
      .filter((s) => s.uses === './')
      .map((s) => obj(s.with).command);
    expect(commands).toEqual(['backup', 'verify', 'restore']);
    expect(stepsOf(job).some((s) => /SELECT count\(\*\)/.test(String(s.run ?? '')))).toBe(true);
  });
});

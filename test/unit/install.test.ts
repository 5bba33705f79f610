import { describe, expect, it } from 'vitest';
import {
  installClientPlan,
  PGDG_KEY_FINGERPRINT,
  PGDG_KEY_URL,
  PGDG_REPO_URL,
} from '../../src/postgres/install.js';

describe('installClientPlan', () => {
  it('adds the PostgreSQL apt repository with a signed-by keyring and installs the client, via sudo', () => {
    const plan = installClientPlan(17, { codename: 'noble', root: false });
    const lines = plan.map(([f, a]) => [f, ...a].join(' '));
    expect(lines).toEqual([
      'sudo -n install -d -m 0755 /usr/share/postgresql-common/pgdg',
      `sudo -n curl -fsSL --retry 3 -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc ${PGDG_KEY_URL}`,
      `sudo -n sh -c gpg --show-keys --with-colons /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc | grep -q '^fpr:::::::::${PGDG_KEY_FINGERPRINT}:' || { rm -f /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc; echo 'the downloaded PostgreSQL apt signing key is not ${PGDG_KEY_FINGERPRINT}' >&2; exit 1; }`,
      `sudo -n sh -c echo 'deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] ${PGDG_REPO_URL} noble-pgdg main' > /etc/apt/sources.list.d/pgdg.list`,
      'sudo -n apt-get update -qq',
      'sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client-17',
    ]);
  });

  it('runs the same commands without sudo as root, for the release it runs on', () => {
    const plan = installClientPlan(16, { codename: 'bookworm', root: true });
    expect(plan.every(([f]) => f !== 'sudo')).toBe(true);
    expect(plan[3]?.[1][1]).toContain('bookworm-pgdg main');
    expect(plan.at(-1)?.[1].at(-1)).toBe('postgresql-client-16');
  });

  it('refuses majors apt does not carry and codenames that could inject shell', () => {
    expect(() => installClientPlan(9.6, { codename: 'noble', root: true })).toThrow(/major 9.6/);
    expect(() => installClientPlan(17, { codename: "noble'; rm -rf /", root: true })).toThrow(
      /codename/,
    );
  });
});

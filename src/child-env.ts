/**
 * The environment of every program pg-dr starts (pg_dump, psql, pg_restore, zstd, git, apt):
 * an allow-list, not pg-dr's own environment. pg-dr's environment holds the S3 keys, the
 * GitHub token, the age identity and every `PG_DR_*`/`INPUT_*` value; none of them is any
 * child's business, and a child that misbehaves (or is made to) must find none.
 */
const ALLOWED =
  /^(PATH|HOME|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TMPDIR|LD_LIBRARY_PATH|DYLD_LIBRARY_PATH|SSL_CERT_(FILE|DIR)|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy)$/;

export function childEnv(
  base: NodeJS.ProcessEnv = process.env,
  extra: Readonly<Record<string, string>> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && ALLOWED.test(k)) env[k] = v;
  return { ...env, ...extra };
}

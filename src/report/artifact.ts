import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from './host.js';

/** Uploads files as a workflow artifact; the real one is @actions/artifact's client. */
export type ArtifactUploader = (
  name: string,
  files: string[],
  root: string,
  options: { retentionDays?: number },
) => Promise<{ id?: number | undefined; size?: number | undefined }>;

export type AuditOutcome =
  | { readonly state: 'uploaded'; readonly name: string; readonly id: number | null }
  | { readonly state: 'skipped'; readonly reason: string }
  | { readonly state: 'failed'; readonly name: string; readonly error: string };

/** `pg-dr-backup-20261126T020000Z-7f3a9c`, or the UTC time when there is no backup id. */
export function artifactName(command: string, id: string | null, now: Date): string {
  const tail =
    id ??
    now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z');
  return `pg-dr-${command}-${tail}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

async function defaultUploader(): Promise<ArtifactUploader> {
  const { DefaultArtifactClient } = await import('@actions/artifact');
  const client = new DefaultArtifactClient();
  return (name, files, root, options) => client.uploadArtifact(name, files, root, options);
}

/**
 * The audit trail: the manifest and the command's report kept as a workflow artifact of the
 * run. Outside GitHub Actions (CLI, local runs) it is skipped with one info line; a failed
 * upload is a warning, never the command's failure. The files hold no secrets: the
 * manifest and reports are built without them.
 */
export async function uploadAudit(opts: {
  command: string;
  id: string | null;
  now: Date;
  files: Readonly<Record<string, string>>;
  retentionDays: number | null;
  env: NodeJS.ProcessEnv;
  host: Host;
  uploader?: ArtifactUploader;
}): Promise<AuditOutcome> {
  const { env, host } = opts;
  if (env.GITHUB_ACTIONS !== 'true' || !env.ACTIONS_RUNTIME_TOKEN) {
    const reason = 'not running in GitHub Actions';
    host.detail(`Audit artifact skipped: ${reason}.`);
    return { state: 'skipped', reason };
  }
  const entries = Object.entries(opts.files);
  if (entries.length === 0) return { state: 'skipped', reason: 'nothing to keep' };
  const name = artifactName(opts.command, opts.id, opts.now);
  const dir = await mkdtemp(join(env.RUNNER_TEMP || tmpdir(), 'pg-dr-audit-'));
  try {
    const paths: string[] = [];
    for (const [file, text] of entries) {
      const p = join(dir, file);
      await writeFile(p, text, { mode: 0o600 });
      paths.push(p);
    }
    const upload = opts.uploader ?? (await defaultUploader());
    const r = await upload(
      name,
      paths,
      dir,
      opts.retentionDays ? { retentionDays: opts.retentionDays } : {},
    );
    host.info(`Audit artifact ${name} uploaded (${entries.map(([f]) => f).join(', ')}).`);
    return { state: 'uploaded', name, id: r.id ?? null };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    host.warning(`Audit artifact ${name} could not be uploaded: ${error}`);
    return { state: 'failed', name, error };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

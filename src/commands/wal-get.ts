import type { WalGetSettings } from '../inputs/parse.js';
import { fetchWalFile } from '../wal/fetch.js';
import type { CommandResult, Context } from './command.js';

/**
 * `pg-dr wal-get %f %p`: one WAL file for PostgreSQL's restore_command. Quiet: a file
 * beyond the end is one line on stderr (exit 1); success says one line only with --verbose.
 */
export async function runWalGet(settings: WalGetSettings, ctx: Context): Promise<CommandResult> {
  const r = await fetchWalFile({
    destinations: ctx.destinations,
    prefix: settings.prefix,
    file: settings.file,
    path: settings.path,
    decryption: settings.decryption,
    trusted: settings.trusted,
    now: new Date(),
    env: ctx.env,
  });
  ctx.host.detail(
    `${settings.file.name}: ${r.object.name} from ${r.destination}, ${r.bytes} bytes → ${settings.path}`,
  );
  return { outputs: { status: 'ok' }, tables: [], failure: null };
}

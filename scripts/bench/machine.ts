// The machine and tool versions a benchmark ran on, and its load.
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { execa } from 'execa';

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly ramGiB: number;
  readonly kernel: string;
  readonly versions: Readonly<Record<string, string>>;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { reject: false, all: true });
  return (r.all ?? '').trim().split('\n')[0] ?? '?';
}

function pkgVersion(name: string): string {
  try {
    const text = readFileSync(`node_modules/${name}/package.json`, 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return '?';
  }
}

export async function describeMachine(tools: {
  node: string;
  pgBinDir: string;
  aws: string;
  serverVersion: string;
}): Promise<Machine> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpus: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? '?',
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: (await firstLine('uname', ['-sr'])).trim(),
    versions: {
      'node (pg-dr)': await firstLine(tools.node, ['--version']),
      'node (bench, s3rver)': process.version,
      'PostgreSQL server': tools.serverVersion,
      pg_dump: await firstLine(`${tools.pgBinDir}/pg_dump`, ['--version']),
      zstd: await firstLine('zstd', ['--version']),
      age: await firstLine('age', ['--version']),
      aws: await firstLine(tools.aws, ['--version']),
      gpg: await firstLine('gpg', ['--version']),
      s3rver: pkgVersion('s3rver'),
      'age-encryption': pkgVersion('age-encryption'),
      '@aws-sdk/lib-storage': pkgVersion('@aws-sdk/lib-storage'),
    },
  };
}

/** `/proc/loadavg`'s three load averages. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

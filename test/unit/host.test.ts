import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createCliHost,
  type SummaryTable,
  tableToMarkdown,
  tableToText,
} from '../../src/report/host.js';
import { formatBytes, formatRate } from '../../src/report/progress.js';

/** A CLI host writing to memory. */
function cliHost() {
  const chunks: string[] = [];
  const stderr = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const host = createCliHost(stderr);
  return { host, text: () => chunks.join('') };
}

describe('CLI host', () => {
  it('writes logs to its stream with their prefixes', async () => {
    const { host, text } = cliHost();
    host.info('dumping');
    host.warning('no secondary');
    host.error('upload failed');
    const value = await host.group('Upload', async () => 42);
    expect(value).toBe(42);
    expect(text()).toBe('dumping\nwarning: no secondary\nerror: upload failed\n▶ Upload\n');
  });

  it('redacts masked secrets in every log line and in the failure', () => {
    const { host, text } = cliHost();
    host.mask('hunter2hunter2');
    host.mask('');
    host.info('connecting with hunter2hunter2, again hunter2hunter2');
    host.warning('x hunter2hunter2');
    host.fail('auth failed for hunter2hunter2');
    expect(text()).toBe(
      'connecting with ***, again ***\nwarning: x ***\nerror: auth failed for ***\n',
    );
    expect(host.failed).toBe('auth failed for ***');
  });

  it('redacts the longest secret first, whatever the order they were masked in', () => {
    const url = 'postgresql://app:s3cret-pw@db/app';
    for (const order of [
      ['s3cret-pw', url],
      [url, 's3cret-pw'],
    ]) {
      const { host, text } = cliHost();
      for (const s of order) host.mask(s);
      host.info(`url=${url} pw=s3cret-pw`);
      expect(text()).toBe('url=*** pw=***\n');
    }
  });

  it('redacts a secret that contains another one whole', () => {
    const { host, text } = cliHost();
    host.mask('abc');
    host.mask('xxabcxx');
    host.info('xxabcxx abc');
    expect(text()).toBe('*** ***\n');
  });

  // Two secrets that overlap without one containing the other: once the longer is
  // replaced, the shorter no longer matches and half of it is printed ("key-***").
  // The runner's masker merges overlapping matches and prints "***".
  it('redacts overlapping secrets without leaving a fragment of either', () => {
    const { host, text } = cliHost();
    host.mask('key-abcd');
    host.mask('abcdef-token');
    host.info('value=key-abcdef-token;');
    expect(text()).toBe('value=***;\n');
  });

  it('keeps outputs and summary tables', async () => {
    const { host } = cliHost();
    host.setOutput('status', 'ok');
    const table: SummaryTable = { title: 'Backup', header: ['a'], rows: [['1']] };
    await host.summary([table]);
    expect(host.outputs.get('status')).toBe('ok');
    expect(host.tables).toEqual([table]);
    expect(host.kind).toBe('cli');
  });
});

const TABLE: SummaryTable = {
  title: 'Backup 20261126T020000Z-7f3a9c',
  header: ['Destination', 'Status', 'Size'],
  rows: [
    ['b2', 'ok', '1.2 GiB'],
    ['r2|eu', 'failed: a|b\nsecond line', '—'],
  ],
  notes: ['Status: degraded'],
};

describe('tableToMarkdown', () => {
  it('writes a GitHub table whose cells are plain text: | and markup as entities, newlines folded', () => {
    expect(tableToMarkdown(TABLE)).toBe(
      [
        '### Backup 20261126T020000Z-7f3a9c',
        '',
        '| Destination | Status | Size |',
        '|---|---|---|',
        '| b2 | ok | 1.2 GiB |',
        '| r2&#124;eu | failed: a&#124;b second line | — |',
        '',
        'Status: degraded',
        '',
      ].join('\n'),
    );
  });

  it('keeps every row to the header’s column count', () => {
    const lines = tableToMarkdown(TABLE)
      .split('\n')
      .filter((l) => l.startsWith('|'));
    for (const l of lines) expect(l.split(/(?<!\\)\|/).length).toBe(TABLE.header.length + 2);
  });
});

describe('tableToText', () => {
  it('aligns columns under their headers', () => {
    const t: SummaryTable = {
      title: 'Backups',
      header: ['Id', 'Size', 'Status'],
      rows: [
        ['20261126T020000Z-7f3a9c', '1.2 GiB', 'ok'],
        ['x', '10 B', 'degraded'],
      ],
      notes: ['2 backups'],
    };
    expect(tableToText(t)).toBe(
      [
        'Backups',
        'Id                       Size     Status',
        '-----------------------  -------  --------',
        '20261126T020000Z-7f3a9c  1.2 GiB  ok',
        'x                        10 B     degraded',
        '2 backups',
        '',
      ].join('\n'),
    );
  });

  it('handles a short row and no rows', () => {
    const text = tableToText({ title: 'T', header: ['Name', 'Value'], rows: [['only']] });
    expect(text).toBe('T\nName  Value\n----  -----\nonly\n');
    expect(tableToText({ title: 'E', header: ['A'], rows: [] })).toBe('E\nA\n-\n');
  });
});

describe('formatBytes', () => {
  it('uses binary units with one decimal', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
    expect(formatBytes(1.25 * 1024 ** 3)).toBe('1.3 GiB');
    expect(formatBytes(1024 ** 4)).toBe('1.0 TiB');
    expect(formatBytes(2048 * 1024 ** 4)).toBe('2048.0 TiB');
  });
});

describe('formatRate', () => {
  it('gives decimal megabytes per second', () => {
    expect(formatRate(1_000_000, 1)).toBe('1.0 MB/s');
    expect(formatRate(280_000_000, 2)).toBe('140.0 MB/s');
    expect(formatRate(123_456_789, 10)).toBe('12.3 MB/s');
    expect(formatRate(0, 5)).toBe('0.0 MB/s');
  });

  it('shows a dash before any time has passed', () => {
    expect(formatRate(1000, 0)).toBe('—');
    expect(formatRate(1000, -1)).toBe('—');
  });
});

import { describe, expect, it } from 'vitest';
import {
  formatLsn,
  parseLsn,
  parseSegmentName,
  parseSegmentSize,
  parseWalFileName,
  segmentName,
  segmentStart,
} from '../../src/postgres/lsn.js';
import { parseReplicationMessage, statusUpdate } from '../../src/postgres/replication.js';
import { judgeSlot, type SlotInfo } from '../../src/wal/catalog.js';
import { SegmentCutter } from '../../src/wal/cutter.js';
import { parseRunRecordKey, type WalRunRecord, walObjectName } from '../../src/wal/record.js';

const MB16 = 16 * 1024 * 1024;

describe('WAL positions and names', () => {
  it('parses and prints LSNs as PostgreSQL does', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(() => parseLsn('16-B374')).toThrow('not a WAL position');
  });

  it('names segments as pg_wal does, for 16 MB and 1 GB segments', () => {
    expect(segmentName(1, 0x3000028n, MB16)).toBe('000000010000000000000003');
    expect(segmentName(2, 0x16b374d848n, MB16)).toBe('0000000200000016000000B3');
    expect(segmentName(1, 0x1_4000_0000n, 1024 ** 3)).toBe('000000010000000100000001');
    expect(parseSegmentName('0000000200000016000000B3', MB16)).toEqual({
      timeline: 2,
      start: 0x16b3000000n,
    });
    // 16 MB segments: 256 per "log"; 0x100 is no segment number.
    expect(parseSegmentName('000000010000000000000100', MB16)).toBeNull();
    expect(segmentStart(0x3000028n, MB16)).toBe(0x3000000n);
  });

  it('reads SHOW wal_segment_size and the file names restore_command asks for', () => {
    expect(parseSegmentSize('16MB')).toBe(MB16);
    expect(parseSegmentSize('1GB')).toBe(1024 ** 3);
    expect(() => parseSegmentSize('3MB')).toThrow();
    expect(parseWalFileName('000000010000000000000003')).toEqual({
      kind: 'segment',
      name: '000000010000000000000003',
      timeline: 1,
    });
    expect(parseWalFileName('00000002.history')?.kind).toBe('history');
    expect(parseWalFileName('000000010000000000000003.00000028.backup')).toBeNull();
    expect(parseWalFileName('../etc/passwd')).toBeNull();
  });

  it('names objects and records: a partial carries its end position', () => {
    expect(walObjectName('000000010000000000000003', null)).toBe(
      '000000010000000000000003.zst.age',
    );
    expect(walObjectName('000000010000000000000003', 0x3a1b2c8n)).toBe(
      '000000010000000000000003.0000000003A1B2C8.partial.zst.age',
    );
    expect(parseRunRecordKey('dr/', 'dr/wal/00000002/runs/20261130T210000Z-0a1b2c.json')).toEqual({
      timeline: 2,
      runId: '20261130T210000Z-0a1b2c',
    });
    expect(parseRunRecordKey('dr/', 'dr/wal/00000002/runs/other.json')).toBeNull();
  });
});

describe('replication messages', () => {
  it('parses XLogData and keepalives, and writes standby status updates', () => {
    const w = Buffer.alloc(25 + 3);
    w[0] = 0x77;
    w.writeBigUInt64BE(0x3000000n, 1);
    w.writeBigUInt64BE(0x3000100n, 9);
    w.writeBigInt64BE(0n, 17);
    w.set([1, 2, 3], 25);
    const m = parseReplicationMessage(w);
    expect(m.kind).toBe('wal');
    if (m.kind !== 'wal') throw new Error('not wal');
    expect(m.start).toBe(0x3000000n);
    expect(m.serverEnd).toBe(0x3000100n);
    expect(m.sentAt.toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect([...m.data]).toEqual([1, 2, 3]);

    const k = Buffer.alloc(18);
    k[0] = 0x6b;
    k.writeBigUInt64BE(0x5000000n, 1);
    k[17] = 1;
    expect(parseReplicationMessage(k)).toMatchObject({ kind: 'keepalive', replyRequested: true });
    expect(() => parseReplicationMessage(Buffer.from([0x71, 0]))).toThrow(
      'unexpected replication message',
    );

    const r = statusUpdate(
      { write: 0x7000000n, flush: 0n, apply: 0n },
      new Date('2000-01-01T00:00:01Z'),
    );
    expect(r.length).toBe(34);
    expect(r[0]).toBe(0x72);
    expect(r.readBigUInt64BE(1)).toBe(0x7000000n);
    // No flush position: the server leaves the slot where it is.
    expect(r.readBigUInt64BE(9)).toBe(0n);
    expect(r.readBigInt64BE(25)).toBe(1_000_000n);
  });
});

describe('segment cutting', () => {
  const SIZE = 1024 * 1024;

  it('cuts at segment boundaries and stops at the end position, every byte once', () => {
    const start = 0x3000000n - 2n * BigInt(SIZE);
    const end = start + 2n * BigInt(SIZE) + 1000n;
    const c = new SegmentCutter(start, end, SIZE);
    expect(c.isPartial(start)).toBe(false);
    expect(c.isPartial(start + 2n * BigInt(SIZE))).toBe(true);
    const pieces = [
      ...c.push(start, Buffer.alloc(SIZE - 10, 1)),
      // One message across the boundary.
      ...c.push(start + BigInt(SIZE) - 10n, Buffer.alloc(20, 2)),
      ...c.push(start + BigInt(SIZE) + 10n, Buffer.alloc(SIZE + 5000, 3)),
    ];
    expect(c.done).toBe(true);
    expect(c.position).toBe(end);
    expect(pieces.map((p) => [p.segment - start, p.data.length, p.endsSegment])).toEqual([
      [0n, SIZE - 10, false],
      [0n, 10, true],
      [BigInt(SIZE), 10, false],
      [BigInt(SIZE), SIZE - 10, true],
      [2n * BigInt(SIZE), 1000, false],
    ]);
    expect(c.push(end, Buffer.alloc(10))).toEqual([]);
  });

  it('skips bytes already had and refuses a gap', () => {
    const c = new SegmentCutter(0n, 100n, SIZE);
    expect(c.push(0n, Buffer.alloc(40)).map((p) => p.data.length)).toEqual([40]);
    expect(c.push(30n, Buffer.alloc(20)).map((p) => p.data.length)).toEqual([10]);
    expect(() => c.push(60n, Buffer.alloc(5))).toThrow('a gap in the stream');
    expect(() => new SegmentCutter(5n, 100n, SIZE)).toThrow('segment boundary');
  });

  it('has nothing to cut when the end is the start', () => {
    const c = new SegmentCutter(0x3000000n, 0x3000000n, SIZE);
    expect(c.done).toBe(true);
  });
});

describe('the slot against the last run', () => {
  const last = {
    runId: '20261130T200000Z-000aaa',
    endLsn: '0/5123456',
    confirmLsn: '0/5000000',
  } as WalRunRecord;
  const slot = (restartLsn: string | null, extra: Partial<SlotInfo> = {}): SlotInfo => ({
    name: 'pg_dr',
    type: 'physical',
    restartLsn,
    walStatus: 'reserved',
    active: false,
    ...extra,
  });
  const judge = (o: Partial<Parameters<typeof judgeSlot>[0]>) =>
    judgeSlot({
      slotName: 'pg_dr',
      slot: slot('0/5000000'),
      last,
      newestBase: null,
      segmentBytes: MB16,
      createSlot: false,
      ...o,
    });

  it('ok from the segment holding restart_lsn', () => {
    expect(judge({ slot: slot('0/5000100') })).toEqual({
      state: 'ok',
      from: 0x5000000n,
      note: null,
    });
  });

  it('a slot gone while records exist, a lost slot, a gap: a fresh base backup is needed', () => {
    const gone = judge({ slot: null, createSlot: true });
    expect(gone.state).toBe('missing');
    expect('message' in gone && gone.message).toContain('fresh physical base backup');
    const lost = judge({ slot: slot('0/5000000', { walStatus: 'lost' }) });
    expect(lost.state).toBe('lost');
    expect('message' in lost && lost.message).toContain('max_slot_wal_keep_size');
    const gap = judge({ slot: slot('0/9000000') });
    expect(gap.state).toBe('gap');
    expect('message' in gap && gap.message).toContain('0/5123456');
  });

  it('a gap covered by a newer base backup starts the chain again', () => {
    const v = judge({
      slot: slot('0/9000000'),
      newestBase: { id: '20261130T203000Z-000bbb', startLsn: '0/9000028' },
    });
    expect(v.state).toBe('ok');
    expect('note' in v && v.note).toContain('20261130T203000Z-000bbb');
  });

  it('no slot and no record: created with create-slot, else refused naming the fix', () => {
    expect(judge({ slot: null, last: null, createSlot: true }).state).toBe('create');
    const absent = judge({ slot: null, last: null });
    expect(absent.state).toBe('absent');
    expect('message' in absent && absent.message).toContain('create-slot: true');
    expect(judge({ slot: slot('0/5000000', { type: 'logical' }) }).state).toBe('not-physical');
  });
});

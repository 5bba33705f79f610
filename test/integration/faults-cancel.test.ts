/**
 * Cancelled runs, end to end (the fault suite's stack, see test/harness/fault-suite.ts):
 * the built CLI (`node dist/cli/index.js`) runs as a real process and gets SIGTERM, as
 * GitHub's cancel signals it, mid-dump, mid-upload or while a destination hangs; each test
 * checks the exit within the grace period, the `status` output, that no manifest appeared
 * at either destination, and the alert.
 */
import { describe, expect, it } from 'vitest';
import {
  backupInputs,
  childPids,
  expectCancelled,
  faultsTested,
  manifests,
  pgProxy,
  primaryProxy,
  sigterm,
  sshInputs,
  useFaultSuite,
} from '../harness/fault-suite.js';
import { startSshd } from '../harness/sshd.js';

useFaultSuite('faults-cancel');

describe('cancelled (SIGTERM to the CLI, as GitHub cancels a run)', () => {
  // BUG (src/main.ts, process.once('SIGTERM'/'SIGINT')): while pg_dump/zstd run, execa's
  // signal-exit handler is installed too; `once` removes pg-dr's listener before
  // signal-exit's runs, which then finds itself alone and re-raises the signal: the
  // process dies by SIGTERM at once — no status output, no summary, no alert. With one more
  // listener in place (the fix: process.on … process.off in finally) both tests pass.
  it('SIGTERM mid-dump: the dump stopped, exit 1, status failed, no manifest anywhere', async () => {
    faultsTested.push('SIGTERM to the CLI mid-dump');
    pgProxy.set({ kind: 'stall', afterBytes: 1_000_000, direction: 'down' });
    const before = await manifests();
    const run = await sigterm(backupInputs(), () => pgProxy.whenTripped());
    await expectCancelled(run, before);
  });

  // BUG: as above (src/main.ts process.once).
  it('SIGTERM mid-dump through an SSH tunnel: the bastion connection is closed', async () => {
    faultsTested.push('SIGTERM to the CLI mid-dump, through an SSH tunnel');
    const bastion = await startSshd();
    try {
      pgProxy.set({ kind: 'stall', afterBytes: 1_000_000, direction: 'down' });
      const before = await manifests();
      let sessionsWhileRunning = 0;
      const run = await sigterm({ ...backupInputs(), ...sshInputs(bastion) }, async () => {
        await pgProxy.whenTripped();
        sessionsWhileRunning = (await childPids(bastion.pid, 'sshd')).length;
      });
      // Can fail: the tunnel was up while the dump ran.
      expect(sessionsWhileRunning).toBeGreaterThan(0);
      await expectCancelled(run, before);
      // The bastion's per-connection sshd is gone: pg-dr closed the SSH connection.
      const deadline = Date.now() + 5_000;
      while ((await childPids(bastion.pid, 'sshd')).length > 0 && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 100));
      expect(await childPids(bastion.pid, 'sshd')).toEqual([]);
    } finally {
      await bastion.stop();
    }
  });

  // BUG (src/storage/replicate.ts abort(), src/commands/backup.ts storeObject/cleanup): a
  // cancel destroys the input streams but never aborts the uploads already sending, so a
  // slow upload runs to its end after SIGTERM; see docs/reliability.md.
  it('SIGTERM mid-upload (slow destination): the in-flight upload is aborted at once', async () => {
    faultsTested.push('SIGTERM to the CLI mid-upload to a slow destination');
    primaryProxy.set({ kind: 'throttle', bytesPerSecond: 256 * 1024, direction: 'up' });
    const before = await manifests();
    const base = primaryProxy.stats().up;
    let atSigterm = 0;
    const run = await sigterm(backupInputs(), async () => {
      const deadline = Date.now() + 60_000;
      while (primaryProxy.stats().up - base < 600_000 && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 50));
      atSigterm = primaryProxy.stats().up;
    });
    const afterSigterm = primaryProxy.stats().up - atSigterm;
    await expectCancelled(run, before);
    // Aborted: the primary receives little more than what was on the wire when the signal
    // came (~256 KiB/s for a moment), not the rest of the 8 MiB part, which at this rate
    // would still be flowing (≈1.9 MB) when GitHub's 7.5 s grace period ends.
    expect(afterSigterm).toBeLessThan(1_000_000);
  });

  // BUG (same cause, and cleanup() has no deadline): with one destination hanging, a
  // SIGTERM never ends the run; GitHub's SIGKILL does, 7.5 s later.
  it('SIGTERM while a destination hangs mid-upload: the run still ends within the grace period', async () => {
    faultsTested.push('SIGTERM to the CLI while a destination hangs mid-upload');
    // Let bytes held from the previous test's connections drain first, so they cannot trip
    // the new stall before this run has started.
    primaryProxy.set({ kind: 'pass' });
    await new Promise((r) => setTimeout(r, 1000));
    primaryProxy.set({ kind: 'stall', afterBytes: 1_000_000, direction: 'up' });
    const before = await manifests();
    const run = await sigterm(backupInputs(), () => primaryProxy.whenTripped(), 12_000);
    await expectCancelled(run, before);
  });
});

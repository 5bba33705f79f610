import { PassThrough, Writable } from 'node:stream';

/** One copy of the stream, read by one destination's upload. */
export interface Branch {
  readonly name: string;
  readonly stream: PassThrough;
  /** Why it was dropped, once it has been. */
  failure: Error | undefined;
}

/**
 * Writes every chunk to each live branch — the same bytes, one pass — at the pace of the
 * slowest. A branch whose upload fails is dropped and the others go on; when none is left
 * the stream errors. The end of the stream reaches the branches only once `gate` resolves
 * (every producer process exited 0): if it rejects, the branches are destroyed instead, so
 * a dump that died half-way can never complete an upload.
 */
export class FanOut extends Writable {
  readonly branches: Branch[];
  private gate: Promise<unknown> = Promise.resolve();

  constructor(names: readonly string[], highWaterMark = 1024 * 1024) {
    super({ highWaterMark });
    this.branches = names.map((name) => ({
      name,
      stream: new PassThrough({ highWaterMark }),
      failure: undefined,
    }));
  }

  /** The end of the input is passed on only after `gate` resolves. */
  endAfter(gate: Promise<unknown>): void {
    this.gate = gate;
  }

  live(): Branch[] {
    return this.branches.filter((b) => b.failure === undefined);
  }

  /** Drops a branch (its upload failed); it receives nothing more. */
  drop(name: string, error: Error): void {
    const b = this.branches.find((x) => x.name === name);
    if (!b || b.failure) return;
    b.failure = error;
    b.stream.destroy(error);
    b.stream.emit('dropped');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const live = this.live();
    if (live.length === 0) {
      cb(this.allFailed());
      return;
    }
    const waits: Promise<void>[] = [];
    for (const b of live) {
      if (!b.stream.write(chunk)) {
        waits.push(
          new Promise((resolve) => {
            const done = () => {
              b.stream.off('drain', done);
              b.stream.off('dropped', done);
              b.stream.off('close', done);
              resolve();
            };
            b.stream.on('drain', done);
            b.stream.on('dropped', done);
            b.stream.on('close', done);
          }),
        );
      }
    }
    if (waits.length === 0) {
      cb();
      return;
    }
    Promise.all(waits).then(() => cb(this.live().length === 0 ? this.allFailed() : null));
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.gate.then(
      () => {
        for (const b of this.live()) b.stream.end();
        cb(this.live().length === 0 ? this.allFailed() : null);
      },
      (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        for (const b of this.live()) this.drop(b.name, err);
        cb(err);
      },
    );
  }

  override _destroy(error: Error | null, cb: (e?: Error | null) => void): void {
    // Destroyed after a normal finish (autoDestroy), the branches have their end already.
    if (error || !this.writableFinished) {
      const err = error ?? new Error('backup stream closed before its end');
      for (const b of this.live()) this.drop(b.name, err);
    }
    cb(error);
  }

  private allFailed(): Error {
    return new Error(
      `every destination failed: ${this.branches.map((b) => `${b.name}: ${b.failure?.message ?? 'unknown'}`).join('; ')}`,
    );
  }
}

/**
 * A vitest reporter that prints when each test file ran and where its time went, to find
 * what the suite waits on:
 *
 *   npx vitest run --reporter=default --reporter=./test/harness/timeline-reporter.ts
 *
 * Per file: start and end (seconds since the run began, import included), import time,
 * time in tests and hooks; and the sum of the files' wall times against the run's.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class TimelineReporter implements Reporter {
  private readonly t0 = Date.now();
  private readonly started = new Map<string, number>();
  private readonly rows: { file: string; start: number; end: number; module: TestModule }[] = [];

  onTestModuleStart(module: TestModule): void {
    this.started.set(module.moduleId, Date.now());
  }

  onTestModuleEnd(module: TestModule): void {
    const end = Date.now();
    const start = this.started.get(module.moduleId) ?? end;
    const file = module.moduleId.replace(/^.*?\/test\//, 'test/');
    this.rows.push({ file, start: (start - this.t0) / 1000, end: (end - this.t0) / 1000, module });
  }

  onTestRunEnd(): void {
    const s = (n: number): string => n.toFixed(1).padStart(6);
    const rows = [...this.rows].sort((a, b) => a.start - b.start);
    const lines = ['', `${'file'.padEnd(44)} start    end   wall import  tests+hooks`];
    let sum = 0;
    for (const r of rows) {
      const d = r.module.diagnostic();
      sum += r.end - r.start;
      lines.push(
        `${r.file.padEnd(44)}${s(r.start)} ${s(r.end)} ${s(r.end - r.start)} ${s(d.collectDuration / 1000)} ${s(d.duration / 1000)}`,
      );
    }
    const last = Math.max(0, ...rows.map((r) => r.end));
    lines.push(`files' wall time summed: ${sum.toFixed(1)} s over ${last.toFixed(1)} s`);
    console.log(lines.join('\n'));
  }
}

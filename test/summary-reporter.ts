/**
 * Prints one closing line `tests: N passed, N failed, N skipped` after a run (a format CI reads
 * for any language), counting every test case vitest collected.
 */
import type { Reporter } from 'vitest/reporters';

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

export default class SummaryReporter implements Reporter {
  onFinished(files: TaskLike[] = [], errors: unknown[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: TaskLike) => {
      if (t.type === 'test') {
        if (t.mode === 'skip' || t.mode === 'todo' || t.result?.state === 'skip') skipped++;
        else if (t.result?.state === 'pass') passed++;
        else failed++;
      }
      for (const c of t.tasks ?? []) walk(c);
    };
    for (const f of files) {
      walk(f);
      // A file that failed to load or whose hooks failed has no passing tests to show for it.
      if (f.result?.state === 'fail' && !(f.tasks ?? []).length) failed++;
    }
    failed += errors.length;
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

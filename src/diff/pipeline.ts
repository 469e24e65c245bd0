import type { DiffOptions, DiffResult } from './types.js';

export async function diffObjects(_o: DiffOptions): Promise<DiffResult> {
  const errors = [{ code: 'DIFF_NOT_YET', object: '', message: 'xsplice diff is not implemented yet', suggestion: '' }];
  return {
    ok: false, functions: [], data: [], errors, warnings: [], objects: [], patches: [], hooks: [],
    explain: { objects: [], identical: [], equivalent: [], warnings: [] }, inputDigest: '',
  };
}

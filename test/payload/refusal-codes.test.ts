/**
 * One vocabulary: a build refusal that predicts a hypervisor check carries verify's code for it,
 * with the former BUILD_* code as alias (src/payload/refusal-codes.ts; exercised end to end by the
 * refusal table in build.test.ts and the shared checks in newer-releases.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { RefusedError } from '../../src/errors.js';
import { DIAGNOSTICS } from '../../src/payload/diagnostics.js';
import { BUILD_ALIASES, hypervisorRefusal, isHypervisorRefusal } from '../../src/payload/refusal-codes.js';

describe('BUILD_ALIASES', () => {
  it('maps verify diagnostic codes to former build codes', () => {
    for (const [code, alias] of Object.entries(BUILD_ALIASES)) {
      expect(Object.hasOwn(DIAGNOSTICS, code), code).toBe(true);
      expect(alias).toMatch(/^BUILD_[A-Z_]+$/);
      expect(isHypervisorRefusal(code)).toBe(true);
    }
    expect(isHypervisorRefusal('BUILD_WX_SECTION')).toBe(false);
  });

  it('a hypervisor refusal is a RefusedError (exit 1) with the code, the alias and the context', () => {
    const e = hypervisorRefusal('SEC_WRITE_EXEC', 'section is both writable and executable', { file: 'a.o', section: '.wx' });
    expect(e).toBeInstanceOf(RefusedError);
    expect(e).toMatchObject({
      code: 'SEC_WRITE_EXEC',
      alias: 'BUILD_WX_SECTION',
      exitCode: 1,
      message: 'a.o: section .wx: section is both writable and executable',
    });
  });
});

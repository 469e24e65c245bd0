/**
 * One vocabulary: a build refusal that predicts a hypervisor check carries verify's code for it,
 * with the former BUILD_* code as alias (src/payload/refusal-codes.ts; exercised end to end by the
 * refusal table in build.test.ts and the shared checks in newer-releases.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { RefusedError } from '../../src/errors.js';
import { DIAGNOSTICS } from '../../src/payload/diagnostics.js';
import { BUILD_ALIASES, hypervisorRefusal, isHypervisorRefusal } from '../../src/payload/refusal-codes.js';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { EM, SHF, SHT, STB, STT } from '../../src/elf/constants.js';
import { abiForVersion } from '../../src/payload/abi.js';
import type { Arch } from '../../src/payload/abi-types.js';
import { buildPayload } from '../../src/payload/build.js';
import type { Target } from '../../src/payload/target.js';

/** One relocatable object: xen_extra_version in .text (st_size `size`), and optionally one more section. */
function object(arch: Arch, size: bigint, extra?: { name: string; data: Uint8Array }): Uint8Array {
  const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: arch === 'arm64' ? EM.AARCH64 : EM.X86_64 });
  const text = b.addSection({
    name: '.text',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.EXECINSTR,
    addralign: 4n,
    data: new Uint8Array(16),
  });
  b.addSymbol({ name: 'xen_extra_version', bind: STB.GLOBAL, type: STT.FUNC, section: text, value: 0n, size });
  if (extra) b.addSection({ name: extra.name, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: extra.data });
  return b.write();
}

/** Builds for a target known by build-id only (old address and size given), as `--xen HEX --xen-version V`. */
async function refusal(arch: Arch, version: string, bytes: Uint8Array): Promise<unknown> {
  const id = new Uint8Array(20).fill(0xab);
  const target: Target = { buildId: id, buildIdHex: 'ab'.repeat(20), source: 'hex', version, arch };
  const patches = [{ old: 'xen_extra_version', oldAddr: 0xffff82d040213a40n, oldSize: 16 }];
  return buildPayload({ objects: [{ name: 'a.o', bytes }], target, abi: abiForVersion(version, arch), patches }).then(
    () => 'built',
    (e: unknown) => e,
  );
}

describe('the last build codes, named as verify names them', () => {
  it('new_size 0 before NOP entries (4.7): FUNC_ZERO_FIELDS, alias BUILD_NEW_SIZE', async () => {
    expect(await refusal('x86_64', '4.7.0', object('x86_64', 0n))).toMatchObject({
      code: 'FUNC_ZERO_FIELDS',
      alias: 'BUILD_NEW_SIZE',
      exitCode: 1,
    });
    expect(await refusal('x86_64', '4.7.0', object('x86_64', 8n))).toBe('built');
  });

  it('.ex_table on arm64: EX_TABLE_UNSUPPORTED, alias BUILD_SPECIAL_UNSUPPORTED', async () => {
    const e = await refusal('arm64', '4.17.0', object('arm64', 8n, { name: '.ex_table', data: new Uint8Array(8) }));
    expect(e).toMatchObject({ code: 'EX_TABLE_UNSUPPORTED', alias: 'BUILD_SPECIAL_UNSUPPORTED', exitCode: 1 });
    expect(await refusal('arm64', '4.17.0', object('arm64', 8n))).toBe('built');
  });
});

describe('BUILD_ALIASES', () => {
  it('maps verify diagnostic codes to former build codes', () => {
    for (const [code, alias] of Object.entries(BUILD_ALIASES)) {
      expect(Object.hasOwn(DIAGNOSTICS, code), code).toBe(true);
      for (const a of typeof alias === 'string' ? [alias] : alias) expect(a).toMatch(/^BUILD_[A-Z_]+$/);
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

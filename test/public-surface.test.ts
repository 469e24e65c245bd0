/**
 * The library's public surface: what the package entry (src/index.ts, package.json "exports")
 * exports at run time, pinned. Adding a name here is a decision about the API; internals (record
 * layouts, hashing plans, byte ranges, the writer's plan) must not leak through the entry.
 */
import { describe, expect, it } from 'vitest';
import * as entry from '../src/index.js';

const PUBLIC = [
  // errors
  'XspliceError',
  'FormatError',
  'RefusedError',
  'UsageError',
  'isXspliceError',
  // ELF
  'readElf',
  'readElfFile',
  'isElf',
  'ObjectBuilder',
  'elfView',
  'ET',
  'EM',
  'SHN',
  'SHT',
  'SHF',
  'STB',
  'STT',
  'STV',
  'GRP_COMDAT',
  'R_X86_64',
  'R_AARCH64',
  'R_ARM',
  // build-ids
  'readBuildId',
  'readBuildIdSync',
  'identifyBuildId',
  'compareBuildIds',
  'verifyElfBuildId',
  'setBuildId',
  'setBuildIdWithId',
  'parseHexId',
  'toHex',
  // payloads: ABI table, target, build, inspect, verify
  'listAbis',
  'abiById',
  'abiByName',
  'abiForVersion',
  'loadAbiFile',
  'parseXenVersion',
  'HOOK_KINDS',
  'loadTarget',
  'buildPayload',
  'buildFiles',
  'inspectPayload',
  'formatInspect',
  'verifyPayloads',
  'formatVerify',
  // try
  'runSession',
  'tryPayloads',
  // diff
  'diffObjects',
  'diffPayload',
  'diffError',
  'formatDiff',
  // patch
  'patchXen',
  'ensureDebianBase',
];

describe('public surface (src/index.ts)', () => {
  it('exports exactly the pinned list', () => {
    expect(Object.keys(entry).sort()).toEqual([...PUBLIC].sort());
  });

  it('leaks no internals and no whole-directory namespaces', () => {
    const names = new Set(Object.keys(entry));
    for (const internal of [
      'rangeMinus',
      'LAYOUT32',
      'LAYOUT64',
      'decodeRecord',
      'encodeRecord',
      'gnuLdPlan',
      'runPlan',
      'planObject',
      'objectView',
      'elf',
      'buildid',
      'payload',
      'tryXen',
    ]) {
      expect(names.has(internal), internal).toBe(false);
    }
  });

  it("every export is defined (a re-export of a renamed function fails here, not in a user's program)", () => {
    for (const [name, value] of Object.entries(entry)) expect(value, name).toBeDefined();
    expect(entry.listAbis().map((a) => a.id)).toContain('L2c-x86_64');
    expect(new entry.UsageError('USAGE', 'x')).toBeInstanceOf(entry.XspliceError);
  });
});

/**
 * `xsplice build` against the real hypervisor: Debian's Xen 4.17.5+72 booted under QEMU by src/try,
 * with payloads built from a C replacement of `xen_extra_version()` (examples/xen-extra-version,
 * compiled with examples/xen-cflags). One boot runs, in order:
 *   - old_addr given as an address literal (--patch 0xADDR=xen_extra_version)
 *   - old_addr left 0, resolved by the hypervisor by name (--old-addr name)
 *   - --expect (expectation block filled from xen-syms' bytes at old_addr)
 *   - a load hook (--hook load=…) that printk()s a marker the console must show at apply
 *   - a stack of two payloads, the second built with --depends <first payload>
 * each uploaded, applied (/sys/hypervisor/version/extra must show the payload's string), reverted
 * (the stock extra version again) and unloaded. With CI=true the boot must happen; elsewhere a missing part skips.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  debianXen,
  dom0Kernel,
  haveDebianXen,
  missing,
  REPO,
  XEN_EXTRA,
  XEN_EXTRA_VERSION_ADDR,
  XEN_EXTRA_VERSION_BYTES,
} from '../helpers/debian.js';
import { buildFiles, type BuildFilesResult } from '../../src/payload/build-files.js';
import { runSession, describeStep, type SessionResult, type Step, type StepResult } from '../../src/try/index.js';
import { have } from '../helpers/tools.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const CFLAGS = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
const EXAMPLE_C = join(REPO, 'examples/xen-extra-version/xen_extra_version.c');

async function compile(src: string, out: string, defines: string[] = []): Promise<string> {
  await exec('gcc', [...CFLAGS, ...defines, '-c', src, '-o', out]);
  return out;
}

const haveStack =
  haveDebianXen() &&
  !!dom0Kernel() &&
  existsSync(debianXen.xenLivepatch) &&
  have('qemu-system-x86_64') &&
  have('gcc') &&
  existsSync('/bin/busybox');

describe.skipIf(missing('Debian Xen 4.17 + dom0 kernel + QEMU + gcc (scripts/setup-deps.sh)', haveStack))(
  'xsplice build → real Xen 4.17 (xsplice try)',
  () => {
    let session: SessionResult;
    const labels = new Map<string, number>();
    const built = new Map<string, BuildFilesResult>();
    const step = (label: string): StepResult => {
      const i = labels.get(label);
      if (i === undefined) throw new Error(`no step ${label}`);
      return session.steps[i]!;
    };

    beforeAll(async () => {
      const dir = await tempDir('build-e2e');
      const xen = debianXen.xenSyms;
      const obj = async (tag: string, extra: string): Promise<string> =>
        compile(EXAMPLE_C, join(dir, `${tag}-extra.o`), [`-DEXTRA="${extra}"`]);
      const hookC = join(dir, 'hook.c');
      await (
        await import('node:fs/promises')
      ).writeFile(
        hookC,
        [
          'extern void printk(const char *fmt, ...);',
          'void xsplice_e2e_load_hook(void);',
          'void xsplice_e2e_load_hook(void) { printk("xsplice-e2e: load hook ran\\n"); }',
          '',
        ].join('\n'),
      );
      const hookO = await compile(hookC, join(dir, 'hook.o'));
      const addr = XEN_EXTRA_VERSION_ADDR; // xen_extra_version in this build (checked below against nm)
      const nm = (await exec('nm', [xen])).stdout;
      expect(nm).toMatch(new RegExp(`^${addr.slice(2)} T xen_extra_version$`, 'm'));

      const mk = async (name: string, opts: Partial<Parameters<typeof buildFiles>[0]> & { objects: string[] }): Promise<void> => {
        const r = await buildFiles({ out: join(dir, `${name}.livepatch`), xen, toolVersion: 'e2e', ...opts });
        built.set(name, r);
      };
      await mk('byaddr', { objects: [await obj('byaddr', '+xs-byaddr')], patch: [`${addr}=xen_extra_version`] });
      await mk('byname', { objects: [await obj('byname', '+xs-byname')], patch: ['xen_extra_version'], oldAddr: 'name' });
      await mk('expect', { objects: [await obj('expect', '+xs-expect')], patch: ['xen_extra_version'], expect: true });
      await mk('hook', {
        objects: [await obj('hook', '+xs-hook'), hookO],
        patch: ['xen_extra_version'],
        hook: ['load=xsplice_e2e_load_hook'],
      });
      await mk('stack1', { objects: [await obj('stack1', '+xs-stack1')], patch: ['xen_extra_version'] });
      await mk('stack2', {
        objects: [await obj('stack2', '+xs-stack2')],
        patch: ['xen_extra_version'],
        depends: join(dir, 'stack1.livepatch'),
      });

      const steps: Step[] = [];
      const add = (label: string, s: Step): void => {
        labels.set(label, steps.length);
        steps.push(s);
      };
      add('extra0', { kind: 'readExtra', expect: XEN_EXTRA });
      for (const [name, extra] of [
        ['byaddr', '+xs-byaddr'],
        ['byname', '+xs-byname'],
        ['expect', '+xs-expect'],
        ['hook', '+xs-hook'],
      ] as const) {
        add(`${name}:upload`, { kind: 'upload', name, file: built.get(name)!.file });
        add(`${name}:apply`, { kind: 'apply', name });
        add(`${name}:extra`, { kind: 'readExtra', expect: extra });
        add(`${name}:revert`, { kind: 'revert', name });
        add(`${name}:extra-after`, { kind: 'readExtra', expect: XEN_EXTRA });
        add(`${name}:unload`, { kind: 'unload', name });
      }
      add('stack1:upload', { kind: 'upload', name: 'stack1', file: built.get('stack1')!.file });
      add('stack1:apply', { kind: 'apply', name: 'stack1' });
      add('stack2:upload', { kind: 'upload', name: 'stack2', file: built.get('stack2')!.file });
      add('stack2:apply', { kind: 'apply', name: 'stack2' });
      add('stack:extra2', { kind: 'readExtra', expect: '+xs-stack2' });
      add('stack2:revert', { kind: 'revert', name: 'stack2' });
      add('stack:extra1', { kind: 'readExtra', expect: '+xs-stack1' });
      add('stack2:unload', { kind: 'unload', name: 'stack2' });
      add('stack1:revert', { kind: 'revert', name: 'stack1' });
      add('stack1:unload', { kind: 'unload', name: 'stack1' });
      add('stack:extra0', { kind: 'readExtra', expect: XEN_EXTRA });
      session = await runSession({ steps, stopOnFailure: false, timeoutSec: 420 });
      if (!session.ok) process.stderr.write(session.steps.map(describeStep).join('\n') + `\nconsole log: ${session.consoleLog}\n`);
    }, 600_000);

    it('builds each variant with the fields it was asked for', () => {
      expect(built.get('byaddr')!.funcs[0]!.oldAddr).toBe(BigInt(XEN_EXTRA_VERSION_ADDR));
      expect(built.get('byname')!.funcs[0]!.oldAddr).toBe(0n);
      expect(built.get('expect')!.funcs[0]!.expect).toEqual({ len: 12, data: XEN_EXTRA_VERSION_BYTES });
      expect(built.get('hook')!.hooks).toEqual({ load: ['xsplice_e2e_load_hook'] });
      expect(built.get('stack2')!.depends).toBe(built.get('stack1')!.buildId);
      expect(built.get('stack1')!.depends).toBe(built.get('stack1')!.xenDepends);
    });

    for (const name of ['byaddr', 'byname', 'expect', 'hook']) {
      it(`${name}: uploaded, applied (extra changes), reverted (extra back to the stock one), unloaded`, () => {
        for (const s of ['upload', 'apply', 'extra', 'revert', 'extra-after', 'unload']) {
          const r = step(`${name}:${s}`);
          expect(r.ok, `${name}:${s}: ${describeStep(r)}`).toBe(true);
        }
        expect(step(`${name}:apply`).consoleLines.join('\n')).toMatch(new RegExp(`${name} finished APPLY with rc=0`));
        expect(step(`${name}:revert`).consoleLines.join('\n')).toMatch(new RegExp(`${name} finished REVERT with rc=0`));
      });
    }

    it('expect: the hypervisor checked the expectation block', () => {
      expect(step('expect:apply').consoleLines.join('\n')).toMatch(/expect: Verifying enabled expectations/);
    });

    it('hook: the load hook ran at apply', () => {
      const lines = [...step('hook:apply').consoleLines, ...(step('hook:apply').earlierConsoleLines ?? []).flat()];
      expect(lines.join('\n')).toContain('xsplice-e2e: load hook ran');
    });

    it('stack: the second payload applies on the first and reverts back to it', () => {
      for (const s of [
        'stack1:upload',
        'stack1:apply',
        'stack2:upload',
        'stack2:apply',
        'stack:extra2',
        'stack2:revert',
        'stack:extra1',
        'stack2:unload',
        'stack1:revert',
        'stack1:unload',
        'stack:extra0',
      ]) {
        expect(step(s).ok, `${s}: ${describeStep(step(s))}`).toBe(true);
      }
    });
  },
);

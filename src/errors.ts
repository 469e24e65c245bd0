/**
 * One error family for the whole library. Every failure a user can cause carries a stable `code`,
 * the exit status the CLI maps it to, and structured context (file, byte offset, section, symbol,
 * expected against found). The message is built from those fields, so it always names them.
 *
 * exitCode 1: the input was understood and is refused (the hypervisor would reject it, a build-id
 * does not verify, a change cannot be live-patched). exitCode 2: usage errors, unreadable or
 * malformed input, I/O errors.
 */
export interface ErrorContext {
  /** File the error is about; the CLI fills it in when the library did not know it. */
  file?: string;
  /** Byte offset in the file. */
  offset?: number | bigint;
  /** Section index and/or name. */
  sectionIndex?: number;
  section?: string;
  symbol?: string;
  expected?: string | number | bigint;
  found?: string | number | bigint;
}

export class XspliceError extends Error {
  override name = 'XspliceError';
  readonly code: string;
  readonly exitCode: 1 | 2;
  readonly detail: string;
  ctx: ErrorContext;

  constructor(code: string, detail: string, ctx: ErrorContext = {}, exitCode: 1 | 2 = 2) {
    super(formatMessage(detail, ctx));
    this.code = code;
    this.detail = detail;
    this.ctx = { ...ctx };
    this.exitCode = exitCode;
  }

  /** Returns the same error with the file name filled in (used by the CLI and by file readers). */
  withFile(file: string): this {
    if (this.ctx.file === undefined) {
      this.ctx.file = file;
      this.message = formatMessage(this.detail, this.ctx);
    }
    return this;
  }
}

/** Malformed ELF (or PE, gzip, note) input. Always exit status 2. */
export class FormatError extends XspliceError {
  override name = 'FormatError';
  constructor(code: string, detail: string, ctx: ErrorContext = {}) {
    super(code, detail, ctx, 2);
  }
}

/** The input was understood and is refused (exit status 1). */
export class RefusedError extends XspliceError {
  override name = 'RefusedError';
  /** The code this refusal had before it took verify's name for the same check (src/payload/refusal-codes.ts). */
  readonly alias?: string;
  constructor(code: string, detail: string, ctx: ErrorContext = {}, alias?: string) {
    super(code, detail, ctx, 1);
    if (alias !== undefined) this.alias = alias;
  }
}

/** Bad command-line usage or options (exit status 2). */
export class UsageError extends XspliceError {
  override name = 'UsageError';
  constructor(code: string, detail: string, ctx: ErrorContext = {}) {
    super(code, detail, ctx, 2);
  }
}

function hexOff(v: number | bigint): string {
  return '0x' + v.toString(16);
}

function formatMessage(detail: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.sectionIndex !== undefined || ctx.section !== undefined) {
    const idx = ctx.sectionIndex !== undefined ? `[${ctx.sectionIndex}]` : '';
    const nm = ctx.section !== undefined && ctx.section !== '' ? ` ${ctx.section}` : '';
    where.push(`section ${idx}${nm}`.replace('section  ', 'section '));
  }
  if (ctx.symbol !== undefined) where.push(`symbol ${ctx.symbol}`);
  if (ctx.offset !== undefined) where.push(`offset ${hexOff(ctx.offset)}`);
  let msg = where.length ? `${where.join(', ')}: ${detail}` : detail;
  if (ctx.expected !== undefined || ctx.found !== undefined) {
    const parts: string[] = [];
    if (ctx.expected !== undefined) parts.push(`expected ${String(ctx.expected)}`);
    if (ctx.found !== undefined) parts.push(`found ${String(ctx.found)}`);
    msg += ` (${parts.join(', ')})`;
  }
  return ctx.file !== undefined ? `${ctx.file}: ${msg}` : msg;
}

export function isXspliceError(e: unknown): e is XspliceError {
  return e instanceof XspliceError;
}

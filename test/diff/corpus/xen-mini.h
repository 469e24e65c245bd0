/*
 * A few of Xen 4.17's x86 constructs, reduced to what shapes the objects `xsplice diff` reads:
 * section attributes (init, read-mostly, per-cpu), printk/domain_crash (line in %edx), bug frames
 * (line bits in the relocation addends), exception-table entries with .fixup code, alternatives
 * (14-byte entries, replacement section) and live-patch hooks. Written for these tests from the
 * layouts of xsplice's diff specification §3.2 and §5.1; not Xen's code.
 */
#ifndef XEN_MINI_H
#define XEN_MINI_H

#define __init __attribute__((__section__(".init.text")))
#define __initdata __attribute__((__section__(".init.data")))
#define __read_mostly __attribute__((__section__(".data.read_mostly")))
#define DEFINE_PER_CPU(type, name) __attribute__((__section__(".bss.percpu"))) type per_cpu__##name
#define this_cpu(name) per_cpu__##name
#define unlikely(x) __builtin_expect(!!(x), 0)
#define noinline __attribute__((__noinline__))

struct domain;
extern int printk(const char *fmt, ...);
extern void __domain_crash(struct domain *d);
#define domain_crash(d) do { \
    printk("domain_crash called from %s:%d\n", __FILE__, __LINE__); \
    __domain_crash(d); \
} while (0)

#define printk_once(fmt...) do { \
    static _Bool __read_mostly once_; \
    if (unlikely(!once_)) { once_ = 1; printk(fmt); } \
} while (0)

/* Bug frame: two PC-relative words, line split 7+7 bits into bits 24..30 of each. */
#define BF_WIDTH 24
#define BF_LO 7
#define BUG_FRAME(type, line, ptr) \
    asm volatile ( "1: ud2\n" \
                   ".pushsection .bug_frames." #type ", \"a\", @progbits\n" \
                   ".p2align 2\n" \
                   "2: .long (1b - 2b) + %c0\n" \
                   ".long (%c1 - 2b) + %c2\n" \
                   ".popsection" \
                   :: "i" (((line) >> BF_LO) << BF_WIDTH), "i" (ptr), \
                      "i" (((line) & ((1 << BF_LO) - 1)) << BF_WIDTH) )
/* Assert frames (.bug_frames.3) carry a second 8-byte frame: 0 and the message, frame-relative. */
#define ASSERT_FRAME(line, ptr, msg) \
    asm volatile ( "1: ud2\n" \
                   ".pushsection .bug_frames.3, \"a\", @progbits\n" \
                   ".p2align 2\n" \
                   "2: .long (1b - 2b) + %c0\n" \
                   ".long (%c1 - 2b) + %c2\n" \
                   ".long 0, (%c3 - 2b)\n" \
                   ".popsection" \
                   :: "i" (((line) >> BF_LO) << BF_WIDTH), "i" (ptr), \
                      "i" (((line) & ((1 << BF_LO) - 1)) << BF_WIDTH), "i" (msg) )
#define ASSERT(p) do { if (unlikely(!(p))) ASSERT_FRAME(__LINE__, __FILE__, #p); } while (0)
#define WARN() BUG_FRAME(1, __LINE__, __FILE__)
#define BUG() do { BUG_FRAME(2, __LINE__, __FILE__); __builtin_unreachable(); } while (0)
#define BUG_ON(c) do { if (unlikely(c)) BUG(); } while (0)
#define run_in_exception_handler(fn) BUG_FRAME(0, 0, fn)

/* Load with an exception-table entry whose continuation is a .fixup chunk. */
static inline int read_guarded(const int *p, int *val)
{
    int rc = 0, v;
    asm volatile ( "1: movl %2, %1\n"
                   "2:\n"
                   ".pushsection .fixup, \"ax\"\n"
                   "3: movl $-14, %0\n"
                   "   xorl %1, %1\n"
                   "   jmp 2b\n"
                   ".popsection\n"
                   ".pushsection .ex_table, \"a\"\n"
                   ".balign 4\n"
                   ".long 1b - ., 3b - .\n"
                   ".popsection"
                   : "+r" (rc), "=r" (v) : "m" (*p) );
    *val = v;
    return rc;
}

/* One alternative: 14-byte entry (orig, repl, cpuid u16, orig_len, repl_len, pad_len, priv). */
#define ALTERNATIVE(oldinstr, newinstr, feature) \
    "661:\n\t" oldinstr "\n662:\n\t" \
    ".pushsection .altinstructions, \"a\", @progbits\n" \
    " .long 661b - .\n .long 663f - .\n .word " #feature "\n" \
    " .byte 662b-661b\n .byte 664f-663f\n .byte 0\n .byte 0\n" \
    ".section .discard, \"a\", @progbits\n .byte 0\n" \
    ".section .altinstr_replacement, \"ax\", @progbits\n" \
    "663:\n\t" newinstr "\n664:\n" \
    ".popsection\n"
#define alternative(oldinstr, newinstr, feature) asm volatile ( ALTERNATIVE(oldinstr, newinstr, feature) ::: "memory" )

/* Live-patch hooks, as a patch writes them. */
typedef void livepatch_loadcall_t(void);
#define LIVEPATCH_LOAD_HOOK(fn) \
    livepatch_loadcall_t *__attribute__((weak, used)) const livepatch_load_data_##fn \
        __attribute__((__section__(".livepatch.hooks.load"))) = fn;
#define LIVEPATCH_UNLOAD_HOOK(fn) \
    livepatch_loadcall_t *__attribute__((weak, used)) const livepatch_unload_data_##fn \
        __attribute__((__section__(".livepatch.hooks.unload"))) = fn;

#endif

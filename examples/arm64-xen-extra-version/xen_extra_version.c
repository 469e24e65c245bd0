/*
 * arm64 replacement of Xen's `const char *xen_extra_version(void)` (xen/common/version.c): while
 * the payload is applied, /sys/hypervisor/version/extra shows this string.
 *
 * Flags (../arm64-xen-cflags): the ones Xen 4.17 compiles itself with on arm64, as recorded in the
 * `.o.cmd` files of its build (-mgeneral-regs-only, -mno-outline-atomics, -fno-pie, ...), plus one
 * section per function. The string is reached with adrp + add (R_AARCH64_ADR_PREL_PG_HI21 and
 * R_AARCH64_ADD_ABS_LO12_NC), both handled by the arm64 loader.
 *
 * Build and try (the aarch64 cross gcc is unpacked by scripts/setup-deps.sh arm64):
 *   CC=.cache/debian-arm64/cross/root/usr/bin/aarch64-linux-gnu-gcc
 *   $CC $(cat examples/arm64-xen-cflags) -c examples/arm64-xen-extra-version/xen_extra_version.c -o out/a.o
 *   bin/xsplice build out/a.o -o out/arm64-xen-extra-version.livepatch \
 *       --xen .cache/debian-arm64/livepatch/xen-syms --patch xen_extra_version
 *   bin/xsplice verify out/arm64-xen-extra-version.livepatch --xen .cache/debian-arm64/livepatch/xen-syms
 *   bin/xsplice try out/arm64-xen-extra-version.livepatch --expect-extra +xsplice-arm64
 *
 * Debian 12's own arm64 hypervisor is built without CONFIG_LIVEPATCH; `.cache/debian-arm64/livepatch`
 * is the same Debian source built with it (scripts/setup-deps.sh arm64-livepatch).
 * Keep the string within 15 characters (XENVER_extraversion is 16 bytes).
 */
#ifndef EXTRA
#define EXTRA "+xsplice-arm64"
#endif

const char *xen_extra_version(void);

const char *xen_extra_version(void)
{
    return EXTRA;
}

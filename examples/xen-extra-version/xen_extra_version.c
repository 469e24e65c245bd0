/*
 * Replacement of Xen's `const char *xen_extra_version(void)` (xen/common/version.c): while the
 * payload is applied, /sys/hypervisor/version/extra (and `xl info`'s xen_extra) show this string.
 *
 * Build (flags: ../xen-cflags, modelled on how Xen 4.17 compiles itself):
 *   gcc $(cat ../xen-cflags) -c xen_extra_version.c -o xen_extra_version.o
 *   xsplice build xen_extra_version.o -o xen-extra-version.livepatch \
 *       --xen /usr/lib/debug/boot/xen-syms-4.17-amd64 --patch xen_extra_version
 * The function keeps the hypervisor's name, so the payload symbol "overrides" it (Xen does not
 * export it as a new symbol).
 *
 * Keep the string within 15 characters: XENVER_extraversion copies it into a 16-byte
 * xen_extraversion_t, so sysfs and `xl info` show a longer one cut short.
 */
#ifndef EXTRA
#define EXTRA "+xsplice-demo"
#endif

const char *xen_extra_version(void);

const char *xen_extra_version(void)
{
    return EXTRA;
}

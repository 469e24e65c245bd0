/**
 * Source fixes written for the `patch` tests against Debian's 4.17.5+72 tree, each shaped like a
 * real security fix of that branch (diff.md §6.3), with the function set a payload must carry.
 */
export interface Fix {
  name: string;
  /** The unified diff (`patch -p1` at the tree's root). */
  text: string;
  /** Xen names of the functions the payload replaces, sorted. */
  functions: string[];
  /** Objects that must differ from the base after recompiling. */
  objects: string[];
}

/** 1. A few lines inside one exported function; rangeset.o also holds a `.part` clone that stays the same. */
export const globalFix: Fix = {
  name: 'rangeset_report',
  text: `--- a/xen/common/rangeset.c
+++ b/xen/common/rangeset.c
@@ -296,7 +296,7 @@ int rangeset_report_ranges(
     read_lock(&r->lock);
 
     for ( x = first_range(r); x && (x->s <= e) && !rc; x = next_range(r, x) )
-        if ( x->e >= s )
+        if ( x->e >= s && s <= e )
             rc = cb(max(x->s, s), min(x->e, e), ctxt);
 
     read_unlock(&r->lock);
`,
  functions: ['rangeset_report_ranges'],
  objects: ['common/rangeset.o'],
};

/** 2. A static helper and its callers, new strings (messages, and __FILE__ of a new domain_crash). */
export const staticFix: Fix = {
  name: 'evtchn_fifo_map',
  text: `--- a/xen/common/event_fifo.c
+++ b/xen/common/event_fifo.c
@@ -426,11 +426,16 @@ static int map_guest_page(struct domain *d, uint64_t gfn, void **virt)
 
     p = get_page_from_gfn(d, gfn, NULL, P2M_ALLOC);
     if ( !p )
+    {
+        gprintk(XENLOG_WARNING, "event FIFO: gfn %#"PRIx64" is not RAM\\n", gfn);
         return -EINVAL;
+    }
 
     if ( !get_page_type(p, PGT_writable_page) )
     {
+        gprintk(XENLOG_WARNING, "event FIFO: gfn %#"PRIx64" is not writable\\n", gfn);
         put_page(p);
+        domain_crash(d);
         return -EINVAL;
     }
 
`,
  functions: ['common/event_fifo.c#map_guest_page'],
  objects: ['common/event_fifo.o'],
};

/** 3. Lines added early in a big file: every later __LINE__ (bug frames, domain_crash) shifts. */
export const lineFix: Fix = {
  name: 'gnttab_init_options',
  text: `--- a/xen/common/grant_table.c
+++ b/xen/common/grant_table.c
@@ -1942,6 +1942,10 @@ int grant_table_init(struct domain *d, int max_grant_frames,
     unsigned int max_grant_version = options & XEN_DOMCTL_GRANT_version_mask;
     int ret = -ENOMEM;
 
+    /* Refuse option bits this hypervisor does not know. */
+    if ( options & ~XEN_DOMCTL_GRANT_version_mask )
+        return -EINVAL;
+
     if ( !max_grant_version )
     {
         dprintk(XENLOG_INFO, "%pd: invalid grant table version 0 requested\\n",
`,
  functions: ['grant_table_init'],
  objects: ['common/grant_table.o'],
};

/** 4. One change, two objects: the hypercall handler and its compat twin (compat/kernel.c includes ../kernel.c). */
export const twoObjectFix: Fix = {
  name: 'xen_version_extra',
  text: `--- a/xen/common/kernel.c
+++ b/xen/common/kernel.c
@@ -490,7 +490,7 @@ DO(xen_version)(int cmd, XEN_GUEST_HANDLE_PARAM(void) arg)
         xen_extraversion_t extraversion;
 
         memset(extraversion, 0, sizeof(extraversion));
-        safe_strcpy(extraversion, deny ? xen_deny() : xen_extra_version());
+        safe_strcpy(extraversion, deny ? xen_deny() : xen_extra_version() ?: "");
         if ( copy_to_guest(arg, extraversion, ARRAY_SIZE(extraversion)) )
             return -EFAULT;
         return 0;
`,
  functions: ['compat_xen_version', 'do_xen_version'],
  objects: ['common/compat/kernel.o', 'common/kernel.o'],
};

/** 5. Visible from dom0: xen_extra_version() returns a new string. */
export const VISIBLE_EXTRA = '.5-xsplice'; // XENVER_extraversion shows at most 15 characters
export const visibleFix: Fix = {
  name: 'visible_extra',
  text: `--- a/xen/common/version.c
+++ b/xen/common/version.c
@@ -57,7 +57,7 @@ const char *xen_compile_system_version(void)
 
 const char *xen_extra_version(void)
 {
-    return XEN_EXTRAVERSION;
+    return XEN_EXTRAVERSION "-xsplice";
 }
 
 const char *xen_changeset(void)
`,
  functions: ['xen_extra_version'],
  objects: ['common/version.o'],
};

export const ALL_FIXES = [globalFix, staticFix, lineFix, twoObjectFix, visibleFix];

/**
 * 6. A constant changed in its #define, outside any function: the functions that use it (through an
 * inlined helper) change although none of their own lines does: codegen-drift (diff.md §3.2 rule 4).
 */
export const macroFix: Fix = {
  name: 'csched_ticks',
  text: `--- a/xen/common/sched/credit.c
+++ b/xen/common/sched/credit.c
@@ -47,7 +47,7 @@
  * Basic constants
  */
 #define CSCHED_DEFAULT_WEIGHT       256
-#define CSCHED_TICKS_PER_TSLICE     3
+#define CSCHED_TICKS_PER_TSLICE     4
 /* Default timeslice: 30ms */
 #define CSCHED_DEFAULT_TSLICE_MS    30
 #define CSCHED_CREDITS_PER_MSEC     10
`,
  functions: ['common/sched/credit.c#csched_init', 'common/sched/credit.c#csched_sys_cntl'],
  objects: ['common/sched/credit.o'],
};

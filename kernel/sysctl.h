#pragma once
/* spec.linux.sysctl: which keys a container may set, and setting them in
 * its init. Only namespaced sysctls are accepted, and only when the
 * container has the matching namespace of its own (created, or joined by
 * path), as runc does; anything else would change the host. */
#include "core/err.h"
#include "core/spec.h"

/* Checks every key of spec.linux.sysctl without writing anything:
 * "spec.linux.sysctl: \"kernel.printk_ratelimit\" is not namespaced:
 * refusing to change the host". Pure; callable in the parent. */
int sysctl_check(const struct oci_spec *spec, struct cv_error *err);

/* In the init child, in the container's namespaces, after pivot_root and
 * before readonlyPaths (runc's order): checks all keys first, then writes
 * each value under sys/ of a private, unattached procfs mount, or of the
 * container's /proc (still writable) on kernels without fsopen; only
 * procfs files, reached without symlinks. */
int sysctl_apply(const struct oci_spec *spec, struct cv_error *err);

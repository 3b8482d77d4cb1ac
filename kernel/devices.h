#pragma once
/* The container's device nodes (spec.linux.devices and runc's default set),
 * made by the init in its mount namespace before pivot_root.
 *
 * Everything is created relative to an fd of the container's /dev with
 * *at() calls: every component below /dev is opened O_NOFOLLOW (a symlink
 * the rootfs planted there is an error, never followed), the last one is
 * created with mknodat/symlinkat/O_EXCL (which never follow either), and
 * mode and owner are set through an O_PATH fd of the very node made. */
#include <stdbool.h>

#include "core/err.h"
#include "core/spec.h"

/* Where the container's /dev comes from, decided by the spec's mounts (the
 * last mount on /dev decides). */
enum devices_dev_kind {
	DEVICES_DEV_ROOTFS, /* no mount on /dev: the rootfs's own directory */
	DEVICES_DEV_OWN,    /* a filesystem of its own (a tmpfs): gets the default set */
	DEVICES_DEV_BOUND,  /* a bind mount (the host's /dev, as --privileged engines do) */
};
enum devices_dev_kind devices_dev_kind(const struct oci_spec *spec);

/* rootfd: O_PATH of the container's root (before pivot_root), the spec's
 * mounts already made. For DEVICES_DEV_OWN: runc's default nodes (null,
 * zero, full, random, urandom, tty), the links (fd, stdin, stdout, stderr,
 * ptmx -> pts/ptmx, core when the host has /proc/kcore) and the /dev/pts
 * (newinstance, ptmxmode=0666), /dev/shm and /dev/mqueue mounts the spec
 * did not make itself. Then each of spec.linux.devices: mknod with its type,
 * numbers, fileMode (0666 by default), uid and gid; where mknod is not
 * permitted (no_mknod: a user namespace; or EPERM) the host's node of the
 * same type and numbers is bind-mounted instead (its mode and owner are the
 * host's: changing them would change the host's node). An existing entry
 * that is not that very node (a symlink, a file) is replaced; a directory
 * is an error. A /dev bound from elsewhere is never written to: each listed
 * device must already be there. Errors name spec.linux.devices[i]. */
int devices_setup(int rootfd, const struct oci_spec *spec, bool no_mknod, struct cv_error *err);

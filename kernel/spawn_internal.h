#pragma once
/* Private to kernel/spawn*.c and kernel/child_*.c: the code that runs in a
 * freshly cloned child before execve. Everything here reports failure
 * through struct cv_error (fixed buffer, no allocation needed) and the
 * callers turn it into a SPAWN_ERROR report followed by _exit(127). */
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"
#include "kernel/caps.h"
#include "kernel/cgroup.h"
#include "kernel/spawn.h"

#define SPAWN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* --- kernel/spawn.c: raw clone3 and the report channel --- */

/* clone3 with a NULL stack (fork-like). flags may include CLONE_PIDFD (then
 * *pidfd receives it) and CLONE_INTO_CGROUP (then cgroup_fd is used).
 * Returns the pid in the parent, 0 in the child, -1 with errno. */
pid_t spawn_clone3(uint64_t flags, int *pidfd, int cgroup_fd, int exit_signal);

/* Maps the binary's code and read-only data into this (freshly forked)
 * process's page tables in one call. fork copies no page-table entries of
 * file-backed mappings, so a child otherwise takes one minor fault per code
 * page it runs: some 200 for an exec, at 5-15 us each on a VM. Best effort
 * (MADV_POPULATE_READ is Linux 5.14+): a failure only costs those faults. */
void spawn_prefault_text(void);

/* Sends SPAWN_READY (err NULL) or SPAWN_ERROR (err's text and code). */
int spawn_send_report(int ctl_fd, int type, const struct cv_error *err);

/* Reports err on ctl_fd and leaves with status 127. */
__attribute__((noreturn)) void spawn_child_fail(int ctl_fd, const struct cv_error *err);

/* --- kernel/child_mounts.c --- */

/* In the init child, inside its new mount namespace: makes / private, binds
 * the rootfs, performs the spec's mounts, creates /dev nodes when /dev is
 * the container's own, pivot_root into it, applies root.readonly,
 * rootfsPropagation, maskedPaths and readonlyPaths. cg may be NULL (the
 * "cgroup" mount type then binds the whole unified hierarchy). */
/* before_pivot (may be NULL) runs after the mounts, before pivot_root:
 * the OCI hook point (kernel/hooks.h). */
typedef int (*child_before_pivot_fn)(void *ctx, struct cv_error *err);
/* The root: root.path (relative to bundle) bound onto itself, or with
 * a->has_root_tree a detached mount (open_tree clone, donated for a
 * subcontainer) attached over the cwd and used as the root, under an
 * overlay with a tmpfs upper when a->root_overlay_memory. A bind mount of
 * the spec whose a->mount_fds entry is >= 0 is that detached mount
 * (resolved by the gofer), moved into place instead of looked up. */
int child_setup_rootfs(const struct spawn_init_args *a, child_before_pivot_fn before_pivot,
		       void *ctx, struct cv_error *err);
/* kernel/child_root_tree.c: attaches root_tree (see above) in the child's
 * mount namespace; returns an fd of the attached root. */
int child_attach_root_tree(int root_tree, bool overlay, int upper_tree, struct cv_error *err);

/* After pivot_root: bind-mounts the pty replica (an open fd) onto the
 * container's /dev/console, creating the mount point file if needed. */
int child_bind_console(int replica, struct cv_error *err);

/* Refuses absolute-path components that step out: "..", and returns 0 for
 * a destination that is an absolute path made of normal components. */
int child_check_destination(const char *dst, struct cv_error *err);

/* --- kernel/child_proc.c: process attributes shared by init and exec --- */

int child_set_rlimits(const struct oci_rlimit *r, size_t n, struct cv_error *err);
/* setgroups, setresgid, PR_SET_KEEPCAPS around setresuid, then raises the
 * effective set to the permitted one so that caps_apply may still drop
 * the bounding set (setresuid away from 0 clears the effective set). */
int child_switch_user(uint32_t uid, uint32_t gid, const uint32_t *gids, size_t n_gids,
		      struct cv_error *err);
/* Builds the spec's seccomp filter into *out (NULL when the spec has none).
 * With nnp false the filter is told not to set NO_NEW_PRIVS itself. */
int child_seccomp_build(const struct oci_spec *spec, bool nnp, scmp_filter_ctx *out,
			struct cv_error *err);
int child_seccomp_load(scmp_filter_ctx *ctx, struct cv_error *err);
/* Finds the executable as ExecuteAsync does: absolute as is; containing '/'
 * joined to cwd; else searched in the PATH= of envv (default
 * SPAWN_DEFAULT_PATH). */
int child_resolve_exe(const char *name, char *const *envv, const char *cwd, char *out,
		      size_t out_len, struct cv_error *err);
/* Closes every fd >= 3 except those in keep (any order, -1 ignored). */
void child_close_fds_except(const int *keep, size_t n);
/* Default dispositions and an empty signal mask (boot blocks several). */
void child_reset_signals(void);
/* Moves fd to a number >= min (close-on-exec), closing the old one. */
int child_move_fd_above(int fd, int min, struct cv_error *err);
/* The home directory of uid in /etc/passwd (as seen from the current
 * root); "/" when there is none or the file is not a regular file of at
 * most CHILD_PASSWD_MAX bytes (as runc falls back). The file is the
 * container's: call only with the target's credentials. */
#define CHILD_PASSWD_MAX (1 << 20)
void child_home_for_uid(uint32_t uid, char *out, size_t out_len);

/* --- kernel/child_trace.c --- */

/* With syscalls armed for tracing: loads the trace filter and sends its
 * listener to boot on ctl_fd (SPAWN_LISTENER). Needs CAP_SYS_ADMIN. */
int child_trace_install(int ctl_fd, struct cv_error *err);

/* --- kernel/child_init.c and kernel/child_exec.c --- */

/* The body of the container init child. Never returns. */
__attribute__((noreturn)) void child_init_main(const struct spawn_init_args *a, int ns_flags,
					       pid_t parent, int ctl_fd);
/* The intermediate's work once it has its exec: joins the container's v1
 * cgroups and namespaces, clones the target as a direct child of its own
 * parent (boot), writes the target's pid to pid_wfd and exits. */
__attribute__((noreturn)) void spawn_intermediate_main(const struct spawn_exec_args *a, int ctl_fd,
						       int pid_wfd);
/* The body of an exec target (a direct child of boot, in the container's
 * namespaces). Never returns. */
__attribute__((noreturn)) void child_exec_main(const struct spawn_exec_args *a, int ctl_fd);

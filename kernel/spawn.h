#pragma once
/* Creating native processes for containers.
 *
 * Protocol with a child (over a SOCK_SEQPACKET socketpair; the child's end
 * is close-on-exec, so EOF after release means execve succeeded):
 *   boot → child: one byte "placed"                   (init with a new user or
 *                 cgroup namespace: placed in every v1 cgroup and mapped)
 *   child → boot: struct spawn_report {SPAWN_READY}  (init only: set up, waiting)
 *   boot → child: one byte                            (init only: release → execve)
 *   child → boot: struct spawn_report {SPAWN_ERROR, errno, text}, then _exit(127)
 *   (init with hooks: SPAWN_HOOKS and boot's go-ahead between its mounts and
 *    pivot_root, before SPAWN_READY; see kernel/hooks.h)
 * Nothing here blocks except where said; the caller watches ctl_fd with an
 * ev_io and calls spawn_read_report() when it is readable. */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"
#include "kernel/caps.h"
#include "kernel/cgroup.h"

/* SPAWN_HOOKS: the init is at its hook point (kernel/hooks.h).
 * SPAWN_LISTENER carries (SCM_RIGHTS) the seccomp listener of the trace
 * filter the process just installed (kernel/child_trace.c); it may come
 * before any other report and boot must answer its notifications from
 * then on, or the process blocks on its next armed syscall. */
enum spawn_report_type { SPAWN_READY = 1, SPAWN_ERROR = 2, SPAWN_HOOKS = 3, SPAWN_LISTENER = 4 };

struct spawn_report {
	int type;
	int err_no;
	char text[CV_ERROR_MAX];
};

struct spawned {
	pid_t pid;  /* host PID; the process is a direct child of the caller */
	int pidfd;  /* caller owns */
	int ctl_fd; /* caller owns: parent end of the socketpair (non-blocking, CLOEXEC) */
};

struct spawn_init_args {
	const struct oci_spec *spec;
	const char *bundle;        /* absolute; root.path is relative to it */
	int stdio[3];              /* borrowed; become fds 0,1,2 */
	const struct cgroup *cg;   /* v2 node for CLONE_INTO_CGROUP, v1 fds to join */
	int console_fd;            /* -1, or a connected unix socket (borrowed): with
	                            * process.terminal the child opens a pty in the
	                            * container's devpts, makes its replica fds 0-2,
	                            * the controlling tty and /dev/console, and sends
	                            * the master there (runc's console socket) */
	/* Subcontainers (spawn_sub_begin): pidns_parent is the root init's
	 * pidfd (borrowed), whose pid namespace the init gets a new child of
	 * when the spec asks for a new one, else joins; has_pidns_parent is
	 * unused by spawn_container_init. has_root_tree: the root is root_tree, a
	 * detached mount (open_tree OPEN_TREE_CLONE, borrowed) that the child
	 * attaches in its own mount namespace instead of binding root.path;
	 * root_overlay_memory puts an overlay with a tmpfs upper over it. */
	bool has_pidns_parent;
	int pidns_parent;
	bool has_root_tree;
	int root_tree;
	bool root_overlay_memory;
	/* -1, or (with root_overlay_memory) a detached mount of a directory
	 * donated for the overlay's upper layer (the "self" medium, borrowed):
	 * upper/ and work/ are made in it and writes persist there. */
	int root_upper_tree;
	/* NULL, or called in boot right after the clone, before the init is
	 * placed in cg's v1 nodes and released: --systemd-cgroup makes the
	 * scope here (systemd wants the pid) and opens cg at its path, so cg
	 * has no v2 node at clone time. A failure kills the init. */
	int (*placed)(void *data, pid_t pid, struct cv_error *err);
	void *placed_data;
	bool stdio_is_tty;         /* process.terminal with a pty given (a subcontainer's
				    * CreateSubcontainer TTY): stdio is its replica, made
				    * the controlling terminal and /dev/console */
	const int *mount_fds;      /* NULL, or one per spec.mounts entry: -1, or a
				    * detached mount for that bind mount (borrowed) */
};

/* clone3(CLONE_PIDFD | the spec's CLONE_NEW* | CLONE_INTO_CGROUP) a
 * container init; with a new user namespace boot writes its uid_map and
 * gid_map before the "placed" byte. The child: (with a new user namespace)
 * waits for that byte and becomes root of it, joins namespaces given by
 * path (user first), setsid, mounts (rootfs, spec mounts, /dev nodes, devpts), pivot_root,
 * sysctl, masked and read-only paths, the console (process.terminal), hostname, rlimits,
 * user/groups,
 * capabilities, no_new_privs, seccomp, cwd; reports SPAWN_READY and waits for
 * the release byte, then execve (PATH lookup from the spec env). */
int spawn_container_init(const struct spawn_init_args *a, struct spawned *out,
			 struct cv_error *err);

struct spawn_exec_args {
	int init_pidfd;           /* the container's init: setns(pidfd, ns_flags) */
	int ns_flags;             /* CLONE_NEW* of every namespace the init has, created
				   * or joined by path (spawn_ns_join_flags) */
	const struct cgroup *cg;  /* container cgroup */
	const struct oci_spec *spec; /* container spec: seccomp, rlimits, nnp default */
	const char *filename;     /* may be NULL/"" → argv[0] */
	char *const *argv;        /* NULL-terminated, non-empty */
	char *const *envv;        /* NULL-terminated, already de-duplicated; HOME is added here if absent */
	const char *cwd;          /* absolute; NULL → "/" */
	uint32_t uid, gid;
	const uint32_t *extra_gids;
	size_t n_extra_gids;
	bool has_caps;            /* false: no capabilities at all, bounding set included */
	struct cap_sets caps;
	bool no_new_privs;
	const int *fds;           /* fds[i] becomes guest fd guest_fds[i]; borrowed */
	const int *guest_fds;
	size_t nfds;
	int exec_fd;              /* -1, or run this file (execveat AT_EMPTY_PATH) */
	bool stdio_is_pty;        /* lowest of guest 0-2 is the controlling tty for all three */
};

/* Running a new process inside a running container takes two steps, so
 * that the caller's loop never waits: an intermediate process (forked
 * ahead of time by the exec spawner, kernel/spawner.h) joins the v1
 * cgroups and setns(init_pidfd, ns_flags), then
 * clone3(CLONE_PARENT|CLONE_INTO_CGROUP) so the target is a direct child
 * of the caller; guest fds 0-2 not covered are /dev/null; umask 022; the
 * target resolves the binary (PATH from envv, relative to cwd) and HOME
 * from the container's /etc/passwd, and execs. Errors before execve come
 * back through ctl_fd as SPAWN_ERROR.
 *
 * struct spawn_pending is that spawn in flight: when mid_pidfd turns
 * readable (the intermediate exited, having sent the target's pid),
 * spawn_exec_finish reaps it and fills *out. It closes every fd of *p on
 * failure; spawn_pending_close releases the fds of *p,
 * spawn_pending_abort is for a spawn that will not be finished: it kills
 * and reaps the intermediate (our child, about to exit anyway) and closes
 * the fds. */
struct spawn_pending {
	pid_t mid;      /* the intermediate, a child of the caller */
	int mid_pidfd;  /* its pidfd: readable once it exited */
	int pid_rfd;    /* non-blocking: the target's pid arrives here before the exit */
	int ctl_fd;     /* the target's report channel (spawned.ctl_fd) */
};
int spawn_exec_finish(struct spawn_pending *p, struct spawned *out, struct cv_error *err);
void spawn_pending_close(struct spawn_pending *p);
void spawn_pending_abort(struct spawn_pending *p);

/* What spawn_read_report found on ctl_fd. */
enum spawn_report_result {
	/* err holds the child's message and errno (SPAWN_ERROR), or the read
	 * failure; -1 like every cv_errf failure. */
	SPAWN_REPORT_ERROR = -1,
	/* EOF: execve happened, or the child died without a word (check the
	 * pidfd). */
	SPAWN_REPORT_EXECED = 0,
	SPAWN_REPORT_READY, /* SPAWN_READY: set up, waiting for spawn_release */
	SPAWN_REPORT_AGAIN, /* nothing there yet (EAGAIN) */
	SPAWN_REPORT_HOOKS, /* SPAWN_HOOKS: waiting for hooks_send_go */
	SPAWN_REPORT_LISTENER, /* SPAWN_LISTENER: *listener is the caller's now */
};

/* Reads one report without blocking. With listener NULL a SPAWN_LISTENER
 * is closed and the next report read (the process is past caring). */
enum spawn_report_result spawn_read_report(int ctl_fd, int *listener, struct cv_error *err);
/* Lets a SPAWN_READY init proceed to execve. */
int spawn_release(int ctl_fd, struct cv_error *err);

/* Namespace flags (CLONE_NEW*) the spec asks the runtime to create. */
int spawn_ns_flags(const struct oci_spec *spec);
/* Every namespace type the spec lists, created or joined by path: what an
 * exec must join to be where the init is (CLONE_NEWUSER included; boot
 * drops it when the init shares boot's own user namespace, see
 * userns_exec_join_flags). */
int spawn_ns_join_flags(const struct oci_spec *spec);

/* Maps donated bind mounts (fds[i] = the i-th bind mount of spec, in its
 * order; borrowed) onto a per-spec.mounts array for spawn_init_args'
 * mount_fds (*out malloc'd, -1 for other mounts; NULL when there is no
 * bind). Fails when the count does not match the spec. */
int spawn_bind_fds(const struct oci_spec *spec, const int *fds, size_t nfds, int **out,
		   struct cv_error *err);

/* A subcontainer's init, started without blocking the caller's loop for
 * the namespaces' creation: clone3(CLONE_NEWPID) needs a caller whose
 * *active* pid namespace is the parent (setns changes only the children's,
 * and the kernel refuses CLONE_NEWPID when they differ), so boot enters
 * the target namespace (a->pidns_parent's, or the one the spec names by
 * path) for one clone3(CLONE_PARENT) of a helper and returns to its own.
 * The helper clones the init (CLONE_PARENT: a child of boot's parent, the
 * engine's subreaper, like the root init), places it in the v1 cgroups by
 * its pid there, sends its pidfd on reply_fd and exits (reaped by the
 * subreaper). The caller watches reply_fd (readable once the helper
 * answered or died) and then calls spawn_sub_finish, which maps a new
 * user namespace and sends the "placed" byte as spawn_container_init
 * does. a must stay valid until then (spec and cg are read again). */
struct spawn_sub {
	int ctl_fd;   /* the init's report channel (as spawned.ctl_fd) */
	int reply_fd; /* non-blocking: the helper's answer */
	int flags;    /* CLONE_NEW* of the spec */
};
int spawn_sub_begin(const struct spawn_init_args *a, struct spawn_sub *p, struct cv_error *err);
/* 0 with *out filled; -1 (p released) on failure; EAGAIN in err->code when
 * nothing arrived yet (p kept). */
int spawn_sub_finish(const struct spawn_init_args *a, struct spawn_sub *p, struct spawned *out,
		     struct cv_error *err);
/* Releases p's fds (the init, if any, dies: its report channel closed). */
void spawn_sub_abort(struct spawn_sub *p);

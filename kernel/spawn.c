/* Creating container processes: raw clone3, the report/release protocol
 * over a SOCK_SEQPACKET socketpair, and exec into a running container via
 * an intermediate (kernel/spawn.h; the spawner that forks it is
 * kernel/spawner.c). The code that runs in the
 * children lives in kernel/child_*.c. */
#include "kernel/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fdsend.h"
#include "core/log.h"
#include "core/util.h"
#include "kernel/procfs.h"
#include "kernel/sysctl.h"
#include "kernel/spawn_internal.h"
#include "kernel/userns.h"

int spawn_ns_flags(const struct oci_spec *spec)
{
	int flags = 0;
	if (!spec->has_linux)
		return 0;
	for (size_t i = 0; i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];
		if (ns->type && (!ns->path || !*ns->path))
			flags |= oci_namespace_flag(ns->type);
	}
	return flags;
}

pid_t spawn_clone3(uint64_t flags, int *pidfd, int cgroup_fd, int exit_signal)
{
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = flags;
	if (flags & CLONE_PIDFD)
		ca.pidfd = (uint64_t)(uintptr_t)pidfd;
	if (flags & CLONE_INTO_CGROUP)
		ca.cgroup = (uint64_t)cgroup_fd;
	ca.exit_signal = (uint64_t)exit_signal;
	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

/* Set by the linker: the first byte of the image, and the end of its
 * initialised data (code and read-only data lie between). */
extern char __executable_start[], edata[];

void spawn_prefault_text(void)
{
	uintptr_t lo = (uintptr_t)__executable_start & ~(uintptr_t)(getpagesize() - 1);
	madvise((void *)lo, (size_t)((uintptr_t)edata - lo), MADV_POPULATE_READ);
}

int spawn_send_report(int ctl_fd, int type, const struct cv_error *err)
{
	struct spawn_report rep;
	memset(&rep, 0, offsetof(struct spawn_report, text) + 1);
	rep.type = type;
	size_t len = offsetof(struct spawn_report, text) + 1;
	if (err) {
		rep.err_no = err->code;
		size_t tl = strnlen(err->msg, sizeof(rep.text) - 1);
		memcpy(rep.text, err->msg, tl);
		rep.text[tl] = '\0';
		len = offsetof(struct spawn_report, text) + tl + 1;
	}
	ssize_t n;
	do
		n = send(ctl_fd, &rep, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

void spawn_child_fail(int ctl_fd, const struct cv_error *err)
{
	struct cv_error fallback;
	if (!err || !cv_error_is_set(err)) {
		cv_errf(&fallback, 0, "setting up the container process failed for an unknown reason");
		err = &fallback;
	}
	spawn_send_report(ctl_fd, SPAWN_ERROR, err);
	_exit(127);
}

enum spawn_report_result spawn_read_report(int ctl_fd, int *listener, struct cv_error *err)
{
	struct spawn_report rep;
	ssize_t n;
	int fd = -1, nfds = 0;
again:
	n = fd_recvmsg(ctl_fd, &rep, sizeof(rep), &fd, 1, &nfds, MSG_DONTWAIT);
	/* Only SPAWN_LISTENER carries an fd; any other is dropped. */
	if (n >= (ssize_t)offsetof(struct spawn_report, text) && rep.type == SPAWN_LISTENER &&
	    nfds == 1) {
		if (!listener) {
			close(fd);
			goto again;
		}
		*listener = fd;
		return SPAWN_REPORT_LISTENER;
	}
	if (nfds == 1)
		close(fd);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SPAWN_REPORT_AGAIN;
		/* The child died with our release byte unread: no word from it. */
		if (errno == ECONNRESET)
			return SPAWN_REPORT_EXECED;
		cv_errf(err, errno, "reading the container process's set-up report");
		return SPAWN_REPORT_ERROR;
	}
	if (n == 0)
		return SPAWN_REPORT_EXECED;
	if ((size_t)n < offsetof(struct spawn_report, text)) {
		cv_errf(err, 0, "the container process sent a truncated report (%zd bytes)", n);
		return SPAWN_REPORT_ERROR;
	}
	if (rep.type == SPAWN_READY)
		return SPAWN_REPORT_READY;
	if (rep.type == SPAWN_HOOKS)
		return SPAWN_REPORT_HOOKS;
	if (rep.type != SPAWN_ERROR) {
		cv_errf(err, 0, "the container process sent an unknown report type %d", rep.type);
		return SPAWN_REPORT_ERROR;
	}
	size_t tl = (size_t)n - offsetof(struct spawn_report, text);
	if (tl >= sizeof(rep.text))
		tl = sizeof(rep.text) - 1;
	rep.text[tl] = '\0';
	cv_errf(err, 0, "%s", rep.text[0] ? rep.text : "the container process failed before execve");
	if (err)
		err->code = rep.err_no;
	return SPAWN_REPORT_ERROR;
}

int spawn_release(int ctl_fd, struct cv_error *err)
{
	char b = 1;
	ssize_t n;
	do
		n = send(ctl_fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return 0;
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN))
		return cv_errf(err, errno, "releasing the container's init: it has already exited");
	return cv_errf(err, n < 0 ? errno : EIO, "releasing the container's init");
}

/* What the init child cannot do, said before cloning anything. */
static int check_init_spec(const struct oci_spec *spec, bool has_root_tree, struct cv_error *err)
{
	if (!spec->has_process || spec->process.n_args == 0 || !spec->process.args)
		return cv_errf(err, 0, "spec.process.args: the container needs a command to run");
	bool uts = false, mnt = false;
	if (spec->has_linux) {
		for (size_t i = 0; i < spec->linux_.n_namespaces; i++) {
			const struct oci_namespace *ns = &spec->linux_.namespaces[i];
			const char *t = ns->type ? ns->type : "";
			if (!oci_namespace_flag(t))
				return cv_errf(err, 0, "spec.linux.namespaces: unknown namespace type \"%s\"",
					       t);
			if (strcmp(t, "uts") == 0)
				uts = true;
			if (strcmp(t, "mount") == 0)
				mnt = true;
		}
	}
	if (!mnt)
		return cv_errf(err, 0, "spec.linux.namespaces: a mount namespace is required (the "
				       "container's mounts and pivot_root would otherwise change the host)");
	if (((spec->hostname && *spec->hostname) || (spec->domainname && *spec->domainname)) && !uts)
		return cv_errf(err, 0, "spec.hostname requires a new UTS namespace");
	if (!has_root_tree && (!spec->has_root || !spec->root.path || !*spec->root.path))
		return cv_errf(err, 0, "spec.root.path: the container needs a root filesystem");
	if (userns_check_spec(spec, err) < 0)
		return -1;
	/* Refused here, before anything exists; the child applies them. */
	return sysctl_check(spec, err);
}

int spawn_ns_join_flags(const struct oci_spec *spec)
{
	int flags = 0;
	if (!spec->has_linux)
		return 0;
	for (size_t i = 0; i < spec->linux_.n_namespaces; i++)
		if (spec->linux_.namespaces[i].type)
			flags |= oci_namespace_flag(spec->linux_.namespaces[i].type);
	return flags;
}

/* The pid namespace a spec names by path, opened; -1 when it names none. */
static int open_pid_ns_path(const struct oci_spec *spec, struct cv_error *err)
{
	for (size_t i = 0; spec->has_linux && i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];
		if (!ns->type || strcmp(ns->type, "pid") != 0 || !ns->path || !*ns->path)
			continue;
		int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return cv_errf(err, errno, "opening the pid namespace %s", ns->path);
		return fd;
	}
	return -2;
}

/* The host pid of a pidfd (its fdinfo "Pid:" line). */
static pid_t pidfd_host_pid(int pidfd, struct cv_error *err)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (procfs_read_text(path, buf, sizeof(buf), NULL, err) < 0)
		return -1;
	char *p = strstr(buf, "\nPid:");
	long pid = p ? strtol(p + 5, NULL, 10) : -1;
	if (pid <= 0)
		return cv_errf(err, ESRCH, "the new subcontainer init is gone (%s)", path);
	return (pid_t)pid;
}

/* clone3 of the init, inside the pid namespace the spec names by path if
 * any: a pid namespace applies to children only, so boot (single-threaded)
 * enters it for the clone and returns to its own right after. */
static pid_t clone_init(const struct spawn_init_args *a, uint64_t cflags, int *pidfd, int cgfd,
			struct cv_error *err)
{
	const struct oci_spec *spec = a->spec;
	int target = open_pid_ns_path(spec, err);
	if (target == -1)
		return -1;
	if (target < 0) {
		pid_t pid = spawn_clone3(cflags, pidfd, cgfd, 0);
		if (pid < 0)
			cv_errf(err, errno, "creating the container's init process (clone3)");
		return pid;
	}
	int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (own < 0) {
		int e = errno;
		close(target);
		return cv_errf(err, e, "opening the sandbox's own pid namespace");
	}
	pid_t pid = -1;
	if (setns(target, CLONE_NEWPID) < 0) {
		cv_errf(err, errno, "joining the pid namespace given in spec.linux.namespaces");
	} else {
		pid = spawn_clone3(cflags, pidfd, cgfd, 0);
		if (pid < 0)
			cv_errf(err, errno, "creating the container's init process (clone3)");
		if (pid != 0 && setns(own, CLONE_NEWPID) < 0)
			LOG(LL_ERROR, "returning to the sandbox's pid namespace: %s", strerror(errno));
	}
	if (pid != 0) {
		close(own);
		close(target);
	}
	return pid;
}

/* What only a process privileged on the host may do for an init in a new
 * user namespace, done by boot before the go-ahead (as runc's parent
 * does): raise rlimits (CAP_SYS_RESOURCE of the host) and lower
 * oom_score_adj; the child's own calls with the same values then pass. */
static int set_privileged_limits(pid_t pid, const struct oci_spec *spec, struct cv_error *err)
{
	const struct oci_process *p = &spec->process;
	for (size_t i = 0; i < p->n_rlimits; i++) {
		int res = oci_rlimit_resource(p->rlimits[i].type);
		if (res < 0)
			return cv_errf(err, 0, "spec.process.rlimits[%zu].type: unknown rlimit \"%s\"",
				       i, p->rlimits[i].type);
		struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
		if (prlimit(pid, (__rlimit_resource_t)res, &rl, NULL) < 0)
			return cv_errf(err, errno, "setting %s of the container's init",
				       p->rlimits[i].type);
	}
	if (p->has_oom_score_adj) {
		char path[48], v[16];
		snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
		int n = snprintf(v, sizeof(v), "%d", p->oom_score_adj);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return cv_errf(err, errno, "opening %s (spec.process.oomScoreAdj)", path);
		ssize_t w = write(fd, v, (size_t)n);
		int e = errno;
		close(fd);
		if (w != n)
			return cv_errf(err, w < 0 ? e : EIO, "writing %s (spec.process.oomScoreAdj)",
				       path);
	}
	return 0;
}

int spawn_container_init(const struct spawn_init_args *a, struct spawned *out,
			 struct cv_error *err)
{
	int flags = spawn_ns_flags(a->spec);
	if (check_init_spec(a->spec, a->has_root_tree, err) < 0)
		return -1;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return cv_errf(err, errno, "creating the container's set-up socket");
	/* The parent's end only: the child's end is a separate file and stays
	 * blocking, so the child can wait for the release byte. */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return cv_errf(err, e, "making the container's set-up socket non-blocking");
	}

	/* CLONE_PARENT: the init is a child of boot's parent (the create/run
	 * CLI, then the engine's subreaper), which reaps it as it reaps runc's
	 * init; boot learns its status through the pidfd (kernel/exit_source.h).
	 * clone3 wants exit_signal 0 with CLONE_PARENT and uses boot's own. */
	/* The cgroup namespace is made by the child once boot has placed it in
	 * every v1 hierarchy (after the release): made at clone time, its root
	 * would be boot's v1 cgroups and the container would see /../<path>. */
	/* With a user namespace joined by path, the child unshares its other
	 * new namespaces once inside it, so that they belong to it. */
	int later = userns_unshare_later(a->spec, flags);
	uint64_t cflags = CLONE_PIDFD | CLONE_PARENT |
			  (uint64_t)(unsigned)(flags & ~(CLONE_NEWCGROUP | later));
	int cgfd = -1;
	if (a->cg && a->cg->v2_dirfd >= 0) {
		cflags |= CLONE_INTO_CGROUP;
		cgfd = a->cg->v2_dirfd;
	}
	pid_t parent = getpid();
	int pidfd = -1;
	pid_t pid = clone_init(a, cflags, &pidfd, cgfd, err);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		spawn_prefault_text();
		child_init_main(a, flags, parent, sv[1]);
	}
	close(sv[1]);
	/* Overlaps the v1 migration's grace period with the child's set-up;
	 * the caller reads SPAWN_READY only after this returned, so the init
	 * is in every v1 node before it is released to execve. */
	/* ESRCH: the child already failed; its report says why. */
	if ((a->placed && a->placed(a->placed_data, pid, err) < 0) ||
	    (a->cg && cgroup_place_v1(a->cg, pid, err) < 0 && err->code != ESRCH)) {
		/* Not our child: its parent reaps it. */
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		close(sv[0]);
		return -1;
	}
	/* A new user namespace: mapped by boot, which the child waits for at
	 * its very start (it can do nothing as an unmapped user). */
	if ((flags & CLONE_NEWUSER) && (userns_write_maps(pid, pidfd, a->spec, err) < 0 ||
					set_privileged_limits(pid, a->spec, err) < 0)) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		close(sv[0]);
		return -1;
	}
	/* Placed (and mapped): the go-ahead the child waits for, at its start
	 * with a new user namespace, else before making its cgroup namespace
	 * (see above). Sent once and only when the child waits for it, or it
	 * would be taken for the release. */
	if ((flags & (CLONE_NEWCGROUP | CLONE_NEWUSER)) && spawn_release(sv[0], err) < 0 &&
	    err->code != EPIPE && err->code != ECONNRESET) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		close(sv[0]);
		return -1;
	}
	cv_error_reset(err);
	/* Ownership of pidfd and sv[0] passes to the caller. */
	out->pid = pid;
	out->pidfd = pidfd;
	out->ctl_fd = sv[0];
	return 0;
}

void spawn_intermediate_main(const struct spawn_exec_args *a, int ctl_fd, int pid_wfd)
{
	struct cv_error e;
	cv_error_reset(&e);
	if (a->cg) {
		int r = cgroup_join_self_v1(a->cg);
		if (r < 0) {
			cv_errf(&e, -r, "joining the container's v1 cgroups (%s)",
				a->cg->path ? a->cg->path : "?");
			spawn_child_fail(ctl_fd, &e);
		}
	}
	/* Raising a hard rlimit needs CAP_SYS_RESOURCE of the host, which a
	 * process in the container's user namespace no longer has: set here,
	 * the target's own setrlimit with the same values passes. */
	if ((a->ns_flags & CLONE_NEWUSER) && a->spec && a->spec->has_process) {
		for (size_t i = 0; i < a->spec->process.n_rlimits; i++) {
			const struct oci_rlimit *r = &a->spec->process.rlimits[i];
			int res = oci_rlimit_resource(r->type);
			struct rlimit rl = { .rlim_cur = r->soft, .rlim_max = r->hard };
			if (res >= 0 && setrlimit((__rlimit_resource_t)res, &rl) < 0) {
				cv_errf(&e, errno, "setting %s before joining the user namespace",
					r->type);
				spawn_child_fail(ctl_fd, &e);
			}
		}
	}
	/* setns(pidfd, 0) is EINVAL: with no namespaces of its own the
	 * container shares the host's and there is nothing to join. With
	 * CLONE_NEWUSER the kernel enters the user namespace first, and the
	 * others with the capabilities it gives (single-threaded: required). */
	if (a->ns_flags && setns(a->init_pidfd, a->ns_flags) < 0) {
		cv_errf(&e, errno, "joining the container's namespaces (flags %#x)", a->ns_flags);
		spawn_child_fail(ctl_fd, &e);
	}
	uint64_t cflags = CLONE_PARENT;
	int cgfd = -1;
	if (a->cg && a->cg->v2_dirfd >= 0) {
		cflags |= CLONE_INTO_CGROUP;
		cgfd = a->cg->v2_dirfd;
	}
	/* With CLONE_PARENT clone3 wants exit_signal 0 and takes ours
	 * (SIGCHLD): the target's exit is reported to boot, which reaps it. */
	pid_t pid = spawn_clone3(cflags, NULL, cgfd, 0);
	if (pid < 0) {
		cv_errf(&e, errno, "creating the process in the container (clone3)");
		spawn_child_fail(ctl_fd, &e);
	}
	if (pid == 0) {
		close(pid_wfd);
		spawn_prefault_text();
		child_exec_main(a, ctl_fd);
	}
	/* The intermediate is still in boot's pid namespace (setns of a pid
	 * namespace only applies to children), so this pid is the host's. */
	ssize_t n;
	do
		n = write(pid_wfd, &pid, sizeof(pid));
	while (n < 0 && errno == EINTR);
	_exit(n == (ssize_t)sizeof(pid) ? 0 : 1);
}

void spawn_pending_close(struct spawn_pending *p)
{
	const int fds[] = { p->mid_pidfd, p->pid_rfd, p->ctl_fd };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	p->mid_pidfd = p->pid_rfd = p->ctl_fd = -1;
}

void spawn_pending_abort(struct spawn_pending *p)
{
	if (p->mid_pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, p->mid_pidfd, SIGKILL, NULL, 0);
		siginfo_t si;
		while (waitid((idtype_t)P_PIDFD, (id_t)p->mid_pidfd, &si, WEXITED | __WALL) < 0 &&
		       errno == EINTR)
			;
	}
	spawn_pending_close(p);
}

int spawn_exec_finish(struct spawn_pending *p, struct spawned *out, struct cv_error *err)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)p->mid_pidfd, &si, WEXITED | WNOHANG | __WALL) < 0) {
		int e = errno;
		spawn_pending_close(p);
		return cv_errf(err, e, "reaping the exec intermediate process");
	}
	if (si.si_pid == 0)
		return cv_errf(err, EAGAIN, "the exec intermediate process has not exited yet");
	/* It wrote the pid (one write, below PIPE_BUF) before exiting. */
	pid_t pid = -1;
	ssize_t n;
	do
		n = read(p->pid_rfd, &pid, sizeof(pid));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(pid)) {
		/* The intermediate failed; its report (if any) is queued. */
		enum spawn_report_result r = spawn_read_report(p->ctl_fd, NULL, err);
		spawn_pending_close(p);
		if (r == SPAWN_REPORT_ERROR)
			return -1;
		if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
			return cv_errf(err, 0, "the exec intermediate process was killed by signal %d",
				       si.si_status);
		return cv_errf(err, 0, "the exec intermediate process exited with status %d "
				       "without creating the process", si.si_status);
	}
	/* The target is our child, so it stays (at worst as a zombie) until we
	 * reap it: pidfd_open cannot race with pid reuse. */
	int pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
			;
		spawn_pending_close(p);
		return cv_errf(err, e, "opening a pidfd for the new process %d", pid);
	}
	out->pid = pid;
	out->pidfd = pidfd;
	out->ctl_fd = p->ctl_fd; /* the caller owns pidfd and ctl_fd */
	p->ctl_fd = -1;
	spawn_pending_close(p);
	return 0;
}

/* ---- subcontainer inits (kernel/spawn.h, spawn_sub_begin) ------------- */

/* What the helper reports before exiting: which step failed (0: none)
 * and its errno; the init's pidfd rides along on success. */
enum { SUB_OK = 0, SUB_CLONE = 1, SUB_PLACE = 2 };
struct sub_reply {
	int step;
	int err_no;
};

int spawn_sub_begin(const struct spawn_init_args *a, struct spawn_sub *p, struct cv_error *err)
{
	p->ctl_fd = p->reply_fd = -1;
	int flags = spawn_ns_flags(a->spec);
	if (check_init_spec(a->spec, a->has_root_tree, err) < 0)
		return -1;
	/* The pid namespace the helper is cloned into: the one the spec names
	 * by path, else the root container's (the init then gets a child of
	 * it when the spec asks for a new one). */
	int target = open_pid_ns_path(a->spec, err);
	if (target == -1)
		return -1;
	if (target < 0 && (target = fcntl(a->pidns_parent, F_DUPFD_CLOEXEC, 0)) < 0)
		return cv_errf(err, errno, "duplicating the root init's pidfd");
	int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	int sv[2] = { -1, -1 }, sp[2] = { -1, -1 };
	if (own < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0 ||
	    fcntl(sp[0], F_SETFL, O_NONBLOCK) < 0) {
		cv_errf(err, errno, "creating the subcontainer's spawn sockets");
		goto fail;
	}
	/* As for the root init (spawn_container_init), plus the pid namespace. */
	int later = userns_unshare_later(a->spec, flags);
	uint64_t cflags = CLONE_PIDFD | CLONE_PARENT |
			  (uint64_t)(unsigned)(flags & ~(CLONE_NEWCGROUP | later));
	int cgfd = -1;
	if (a->cg && a->cg->v2_dirfd >= 0) {
		cflags |= CLONE_INTO_CGROUP;
		cgfd = a->cg->v2_dirfd;
	}
	pid_t parent = getpid();
	if (setns(target, CLONE_NEWPID) < 0) {
		cv_errf(err, errno, "entering the pid namespace of the subcontainer's init");
		goto fail;
	}
	pid_t h = spawn_clone3(CLONE_PARENT, NULL, -1, 0);
	int clone_errno = errno;
	if (h == 0) {
		/* The helper: its active pid namespace is the target, so it may
		 * make a child of it (CLONE_NEWPID) or clone into it. */
		close(sv[0]);
		close(sp[0]);
		close(own);
		close(target);
		int pidfd = -1;
		pid_t c = spawn_clone3(cflags, &pidfd, cgfd, 0);
		if (c == 0) {
			close(sp[1]);
			spawn_prefault_text();
			child_init_main(a, flags, parent, sv[1]);
		}
		struct sub_reply r = { c < 0 ? SUB_CLONE : SUB_OK, c < 0 ? errno : 0 };
		/* The v1 placement waits for an RCU grace period: done here, by
		 * the init's pid in this namespace, not by boot's loop. */
		struct cv_error pe;
		cv_error_reset(&pe);
		if (c > 0 && a->cg && cgroup_place_v1(a->cg, c, &pe) < 0 && pe.code != ESRCH) {
			syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
			r = (struct sub_reply){ SUB_PLACE, pe.code };
		}
		if (fd_sendmsg(sp[1], &r, sizeof(r), &pidfd, r.step == SUB_OK ? 1 : 0, 0) < 0)
			_exit(2);
		_exit(r.step == SUB_OK ? 0 : 1);
	}
	if (setns(own, CLONE_NEWPID) < 0)
		LOG(LL_ERROR, "returning to the sandbox's pid namespace: %s", strerror(errno));
	if (h < 0) {
		cv_errf(err, clone_errno, "creating the subcontainer's spawn helper (clone3)");
		goto fail;
	}
	close(own);
	close(target);
	close(sv[1]);
	close(sp[1]);
	p->ctl_fd = sv[0];
	p->reply_fd = sp[0];
	p->flags = flags;
	return 0;
fail:;
	const int fds[] = { own, target, sv[0], sv[1], sp[0], sp[1] };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return -1;
}

int spawn_sub_finish(const struct spawn_init_args *a, struct spawn_sub *p, struct spawned *out,
		     struct cv_error *err)
{
	struct sub_reply r = { SUB_CLONE, EIO };
	int pidfd = -1, nfds = 0;
	ssize_t n = fd_recvmsg(p->reply_fd, &r, sizeof(r), &pidfd, 1, &nfds, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return cv_errf(err, EAGAIN, "the subcontainer's spawn helper has not answered yet");
	if (n != (ssize_t)sizeof(r) || r.step != SUB_OK || nfds != 1) {
		if (nfds == 1)
			close(pidfd);
		spawn_sub_abort(p);
		if (n != (ssize_t)sizeof(r))
			return cv_errf(err, 0, "the subcontainer's spawn helper died without an answer");
		return cv_errf(err, r.err_no, r.step == SUB_PLACE
					      ? "placing the subcontainer's init in its v1 cgroups"
					      : "creating the subcontainer's init (clone3)");
	}
	pid_t pid = pidfd_host_pid(pidfd, err);
	if (pid < 0 && err->code == ESRCH) {
		/* Already ended and reaped: an init that failed its set-up
		 * (a rootfs fd that is no detached mount, say) reports why
		 * before it exits, and that is the error to give. */
		struct cv_error why;
		cv_error_reset(&why);
		if (spawn_read_report(p->ctl_fd, NULL, &why) == SPAWN_REPORT_ERROR)
			*err = why;
	}
	if (pid < 0 ||
	    ((p->flags & CLONE_NEWUSER) && (userns_write_maps(pid, pidfd, a->spec, err) < 0 ||
					    set_privileged_limits(pid, a->spec, err) < 0)) ||
	    ((p->flags & (CLONE_NEWCGROUP | CLONE_NEWUSER)) && spawn_release(p->ctl_fd, err) < 0 &&
	     err->code != EPIPE && err->code != ECONNRESET)) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		spawn_sub_abort(p);
		return -1;
	}
	cv_error_reset(err);
	close(p->reply_fd);
	out->pid = pid;
	out->pidfd = pidfd;
	out->ctl_fd = p->ctl_fd; /* the caller's now */
	p->reply_fd = p->ctl_fd = -1;
	return 0;
}

void spawn_sub_abort(struct spawn_sub *p)
{
	if (p->reply_fd >= 0)
		close(p->reply_fd);
	if (p->ctl_fd >= 0)
		close(p->ctl_fd);
	p->reply_fd = p->ctl_fd = -1;
}

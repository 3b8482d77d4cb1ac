/* The container init child, from clone3 to execve (kernel/spawn.h): the
 * order of the steps follows runc's, and every failure travels back to the
 * controller as SPAWN_ERROR before _exit(127). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/fdsend.h"
#include "kernel/hooks.h"
#include "kernel/procattr.h"
#include "kernel/spawn_internal.h"
#include "kernel/userns.h"

/* Fds of the child are moved at or above this before stdio is dup'ed onto
 * 0-2, so no source is overwritten by an earlier dup2. */
#define CHILD_HIGH_FD 10

static int join_ns_paths(const struct oci_spec *spec, struct cv_error *err)
{
	if (!spec->has_linux)
		return 0;
	for (size_t i = 0; i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];
		if (!ns->path || !*ns->path || !ns->type)
			continue;
		/* Applies to children only: boot entered it for our clone3. The
		 * user namespace was joined first (join_user_ns). */
		if (strcmp(ns->type, "pid") == 0 || strcmp(ns->type, "user") == 0)
			continue;
		int flag = oci_namespace_flag(ns->type);
		if (!flag)
			return cv_errf(err, 0, "joining the %s namespace %s is not supported", ns->type,
				       ns->path);
		int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return cv_errf(err, errno, "opening the %s namespace %s", ns->type, ns->path);
		int r = setns(fd, flag);
		int e = errno;
		close(fd);
		if (r < 0)
			return cv_errf(err, e, "joining the %s namespace %s", ns->type, ns->path);
	}
	return 0;
}

/* stdio[i] → fd i; -1 means /dev/null (the host's: we have not pivoted). */
static int setup_stdio(const int stdio[3], int *ctl_fd, struct cv_error *err)
{
	int *c = ctl_fd;
	if ((*c = child_move_fd_above(*c, CHILD_HIGH_FD, err)) < 0)
		return -1;
	int hi[3];
	for (int i = 0; i < 3; i++) {
		int src = stdio[i];
		hi[i] = src >= 0 ? fcntl(src, F_DUPFD_CLOEXEC, CHILD_HIGH_FD)
				 : open("/dev/null", O_RDWR | O_CLOEXEC);
		if (hi[i] < 0)
			return cv_errf(err, errno, "preparing the container's stdio fd %d (from %d)", i,
				       src);
	}
	for (int i = 0; i < 3; i++) {
		if (dup2(hi[i], i) < 0)
			return cv_errf(err, errno, "installing the container's stdio fd %d", i);
		close(hi[i]);
	}
	return 0;
}

static int write_file(const char *path, const char *val, struct cv_error *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "opening %s", path);
	size_t l = strlen(val);
	ssize_t n = write(fd, val, l);
	int e = errno;
	close(fd);
	if (n < 0)
		return cv_errf(err, e, "writing \"%s\" to %s", val, path);
	if ((size_t)n != l)
		return cv_errf(err, EIO, "writing \"%s\" to %s: short write", val, path);
	return 0;
}

static int set_names(const struct oci_spec *spec, struct cv_error *err)
{
	if (spec->hostname && *spec->hostname &&
	    sethostname(spec->hostname, strlen(spec->hostname)) < 0)
		return cv_errf(err, errno, "setting the hostname to \"%s\"", spec->hostname);
	if (spec->domainname && *spec->domainname &&
	    setdomainname(spec->domainname, strlen(spec->domainname)) < 0)
		return cv_errf(err, errno, "setting the domain name to \"%s\"", spec->domainname);
	return 0;
}

/* The pty master goes to the console socket with the name "/dev/ptmx" as
 * data: what runc sends (its master's file name), and what conmon, the
 * containerd shim and runc's recvtty read with a single recvmsg. */
static int send_console_master(int sock, int master, struct cv_error *err)
{
	static const char name[] = "/dev/ptmx";
	return fd_send(sock, master, name, sizeof(name) - 1,
		       "sending the pty master to the console socket", err);
}

/* process.terminal, as runc does it: after pivot_root the pty is opened in
 * the container's own devpts (/dev/ptmx -> pts/ptmx), so inside `tty` names
 * /dev/pts/N of that devpts. The replica becomes fds 0-2, the controlling
 * terminal (setsid was done) and /dev/console; the master goes to the
 * console socket and neither it nor the socket stays in the container. */
static int setup_terminal(const struct spawn_init_args *a, struct cv_error *err)
{
	const struct oci_process *proc = &a->spec->process;
	if (a->stdio_is_tty && a->console_fd < 0) {
		/* The pty was made by the caller (runsc's CreateSubcontainer):
		 * its replica is already fds 0-2. */
		/* No /dev/console bind: the pty is of the caller's devpts, a
		 * mount of another namespace that cannot be cloned here. */
		if (!isatty(0))
			return cv_errf(err, ENOTTY, "the TTY given at CreateSubcontainer is not a terminal");
		if (fchown(0, proc->user.uid, (gid_t)-1) < 0 && errno != EPERM && errno != EINVAL)
			return cv_errf(err, errno, "giving the pty to uid %u", (unsigned)proc->user.uid);
		if (ioctl(0, TIOCSCTTY, 0) < 0)
			return cv_errf(err, errno, "making the pty the controlling terminal");
		return 0;
	}
	if (a->console_fd < 0)
		return cv_errf(err, 0, "process.terminal is true but no console socket was given");
	if (proc->has_console_size &&
	    (proc->console_size.height > 0xffff || proc->console_size.width > 0xffff))
		return cv_errf(err, ERANGE,
			       "spec.process.consoleSize: %ux%u is too large (at most 65535x65535)",
			       (unsigned)proc->console_size.height, (unsigned)proc->console_size.width);
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return cv_errf(err, errno, "opening /dev/ptmx in the container (needs devpts on /dev/pts)");
	struct stat st;
	int s = -1, unlock = 0;
	if (fstat(m, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 ||
	    minor(st.st_rdev) != 2) {
		cv_errf(err, 0, "/dev/ptmx in the container is not the pty multiplexer");
		goto fail;
	}
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0) {
		cv_errf(err, errno, "unlocking the container's pty");
		goto fail;
	}
	if (proc->has_console_size) {
		struct winsize ws = { .ws_row = (unsigned short)proc->console_size.height,
				      .ws_col = (unsigned short)proc->console_size.width };
		if (ioctl(m, TIOCSWINSZ, &ws) < 0) {
			cv_errf(err, errno, "setting the pty's size (spec.process.consoleSize)");
			goto fail;
		}
	}
	/* By the master, not by name: no path lookup in the container. */
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		cv_errf(err, errno, "opening the container's pty replica");
		goto fail;
	}
	if (child_bind_console(s, err) < 0)
		goto fail;
	if (send_console_master(a->console_fd, m, err) < 0)
		goto fail;
	close(m);
	close(a->console_fd);
	/* The process's user owns its terminal (runc's fixStdioPermissions:
	 * uid only, the devpts gid stays); refused in some user namespaces,
	 * which runc ignores too. */
	if (fchown(s, proc->user.uid, (gid_t)-1) < 0 && errno != EPERM && errno != EINVAL) {
		cv_errf(err, errno, "giving the pty to uid %u", (unsigned)proc->user.uid);
		close(s);
		return -1;
	}
	for (int i = 0; i < 3; i++)
		if (dup2(s, i) < 0) {
			cv_errf(err, errno, "making the pty the container's fd %d", i);
			close(s);
			return -1;
		}
	close(s);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		return cv_errf(err, errno, "making the pty the controlling terminal");
	return 0;
fail:
	if (s >= 0)
		close(s);
	close(m);
	return -1;
}

/* Waits for boot's "placed" byte: this process is in every cgroup
 * hierarchy and its user namespace (if new) is mapped. */
static void wait_placed(int ctl_fd)
{
	char b;
	ssize_t n;
	do
		n = recv(ctl_fd, &b, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		_exit(0); /* the controller is gone */
}

/* With a new user namespace: nothing can be done as its unmapped user, so
 * the child waits for the maps first, then works as root of it. Joined by
 * path: entered before any other namespace (runc's order), then the
 * namespaces the clone left out are made inside it. */
static int enter_user_ns(const struct oci_spec *spec, int ns_flags, int ctl_fd,
			 struct cv_error *err)
{
	if (ns_flags & CLONE_NEWUSER) {
		wait_placed(ctl_fd);
		return userns_become_root(err);
	}
	const char *path = userns_to_join(spec);
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "opening the user namespace %s", path);
	int r = setns(fd, CLONE_NEWUSER);
	int e = errno;
	close(fd);
	if (r < 0)
		return cv_errf(err, e, "joining the user namespace %s", path);
	return userns_become_root(err);
}

static int unshare_in_user_ns(int later, struct cv_error *err)
{
	if (later && unshare(later) < 0)
		return cv_errf(err, errno, "creating the container's namespaces (flags %#x) in the "
					   "joined user namespace", later);
	return 0;
}

/* Waits until boot has placed this process in every cgroup hierarchy
 * (unless that was waited for already, with a new user namespace), then
 * makes the container's cgroup namespace rooted there (while
 * CAP_SYS_ADMIN is still held). */
static int make_cgroup_ns(int ctl_fd, bool wait, struct cv_error *err)
{
	if (wait)
		wait_placed(ctl_fd);
	if (unshare(CLONE_NEWCGROUP) < 0)
		return cv_errf(err, errno, "creating the container's cgroup namespace");
	return 0;
}

/* The OCI hook point, between the mounts and pivot_root (kernel/hooks.h). */
struct hook_point {
	const struct oci_spec *spec;
	int ctl_fd;
	bool placed_due;  /* boot's "placed" byte is queued before its go-ahead */
	int state_fds[2]; /* [1], for startContainer, is kept until the release */
};

static int at_hook_point(void *ctx, struct cv_error *err)
{
	struct hook_point *hp = ctx;
	const struct oci_spec *spec = hp->spec;
	if (!hooks_init_stops(spec))
		return 0;
	/* Boot sent "placed" right after the clone; it must not be taken
	 * for the go-ahead. */
	if (hp->placed_due) {
		wait_placed(hp->ctl_fd);
		hp->placed_due = false;
	}
	if (spawn_send_report(hp->ctl_fd, SPAWN_HOOKS, NULL) < 0)
		_exit(127); /* boot is gone */
	if (hooks_recv_go(hp->ctl_fd, hp->state_fds, err) < 0)
		return -1;
	/* In the container's namespaces, the host's root still visible;
	 * without env, the container process's (as runc's init has it). */
	int r = hooks_run(spec->hooks.create_container, spec->hooks.n_create_container,
			  "createContainer", hp->state_fds[0], spec->process.env, err);
	if (hp->state_fds[0] >= 0)
		close(hp->state_fds[0]);
	hp->state_fds[0] = -1;
	return r;
}

/* Everything up to SPAWN_READY. */
static int setup(const struct spawn_init_args *a, int ns_flags, pid_t parent, int *ctl_fd,
		 scmp_filter_ctx *filter, struct hook_point *hp, struct cv_error *err)
{
	const struct oci_spec *spec = a->spec;
	const struct oci_process *proc = &spec->process;

	/* No parent-death signal: the parent is the engine (CLONE_PARENT), as
	 * for runc's init. If boot dies before the release, the ctl socket's
	 * EOF ends this process (child_init_main). */
	(void)parent;
	child_reset_signals();
	/* The v1 cgroups are joined from outside by boot, concurrently with
	 * this set-up (cgroup_place_v1), and before boot reads SPAWN_READY. */
	/* Decided before joining, as boot did for the clone. */
	int later = userns_unshare_later(spec, ns_flags);
	if (enter_user_ns(spec, ns_flags, *ctl_fd, err) < 0)
		return -1;
	if (join_ns_paths(spec, err) < 0)
		return -1;
	if (unshare_in_user_ns(later, err) < 0)
		return -1;
	if (setsid() < 0)
		return cv_errf(err, errno, "creating a session for the container");
	/* Refused names before anything is set up; then the keyring, in the
	 * container's user namespace (runc joins it there too). */
	if (procattr_check(spec, err) < 0)
		return -1;
	if (procattr_join_keyring(spec, err) < 0)
		return -1;
	if (setup_stdio(a->stdio, ctl_fd, err) < 0)
		return -1;

	hp->spec = spec;
	hp->ctl_fd = *ctl_fd;
	hp->placed_due = (ns_flags & CLONE_NEWCGROUP) && !(ns_flags & CLONE_NEWUSER);
	if (child_setup_rootfs(a, at_hook_point, hp, err) < 0)
		return -1;
	if (proc->terminal && setup_terminal(a, err) < 0)
		return -1;

	if (((spec->hostname && *spec->hostname) || (spec->domainname && *spec->domainname)) &&
	    !(ns_flags & CLONE_NEWUTS)) {
		/* A joined UTS namespace (by path) is also the container's own. */
		bool joined = false;
		for (size_t i = 0; spec->has_linux && i < spec->linux_.n_namespaces; i++)
			if (spec->linux_.namespaces[i].type &&
			    strcmp(spec->linux_.namespaces[i].type, "uts") == 0)
				joined = true;
		if (!joined)
			return cv_errf(err, 0, "spec.hostname requires a new UTS namespace");
	}
	if (set_names(spec, err) < 0)
		return -1;
	if (child_set_rlimits(proc->rlimits, proc->n_rlimits, err) < 0)
		return -1;
	/* In a new user namespace boot wrote it (lowering it needs the host's
	 * CAP_SYS_RESOURCE, and /proc/self is not ours before execve). */
	if (proc->has_oom_score_adj && !(ns_flags & CLONE_NEWUSER)) {
		char v[16];
		snprintf(v, sizeof(v), "%d", proc->oom_score_adj);
		if (write_file("/proc/self/oom_score_adj", v, err) < 0)
			return cv_error_wrap(err, "spec.process.oomScoreAdj");
	}
	umask(proc->user.has_umask ? (mode_t)proc->user.umask : 022);
	/* While every capability is held: a real-time policy or class needs
	 * CAP_SYS_NICE, CAP_SYS_ADMIN. runc's order: ioPriority, scheduler. */
	if (procattr_set_io_priority(proc, err) < 0 || procattr_set_scheduler(proc, err) < 0)
		return -1;
	if (procattr_set_personality(spec, err) < 0)
		return -1;
	/* The container's /proc is in place (after pivot_root): the labels
	 * take effect at the execve. */
	if (procattr_set_exec_labels(proc, err) < 0)
		return -1;

	struct cap_sets caps;
	memset(&caps, 0, sizeof(caps));
	if (proc->has_capabilities && caps_from_spec(&proc->capabilities, &caps, err) < 0)
		return -1;
	if (child_seccomp_build(spec, proc->no_new_privileges, filter, err) < 0)
		return -1;
	/* Without no_new_privs the filter must go in while CAP_SYS_ADMIN is
	 * still held (runc's order); with it, as late as possible. */
	if (!proc->no_new_privileges && child_seccomp_load(filter, err) < 0)
		return -1;
	/* Still with CAP_SYS_ADMIN; boot answers the notifications (say of
	 * the chdir below) while it waits for SPAWN_READY. */
	if (child_trace_install(*ctl_fd, err) < 0)
		return -1;

	if ((ns_flags & CLONE_NEWCGROUP) && make_cgroup_ns(*ctl_fd, hp->placed_due, err) < 0)
		return -1;
	if (child_switch_user(proc->user.uid, proc->user.gid, proc->user.additional_gids,
			      proc->user.n_additional_gids, err) < 0)
		return -1;
	if (caps_apply(&caps, err) < 0)
		return -1;
	if (proc->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return cv_errf(err, errno, "setting no_new_privs");
	const char *cwd = proc->cwd && *proc->cwd ? proc->cwd : "/";
	if (chdir(cwd) < 0)
		return cv_errf(err, errno, "changing directory to \"%s\" (spec.process.cwd)", cwd);
	return 0;
}

void child_init_main(const struct spawn_init_args *a, int ns_flags, pid_t parent, int ctl_fd)
{
	struct cv_error err;
	cv_error_reset(&err);
	scmp_filter_ctx filter = NULL;
	struct hook_point hp = { .state_fds = { -1, -1 } };
	if (setup(a, ns_flags, parent, &ctl_fd, &filter, &hp, &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	if (spawn_send_report(ctl_fd, SPAWN_READY, NULL) < 0)
		_exit(127);
	char b;
	ssize_t n;
	do
		n = recv(ctl_fd, &b, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		_exit(0); /* the controller is gone: leave without a word */

	int keep[] = { ctl_fd, hp.state_fds[1] };
	child_close_fds_except(keep, 2);
	const struct oci_process *proc = &a->spec->process;
	/* The spec's arrays are counted, execve wants NULL-terminated ones. */
	char *argv[proc->n_args + 1], *envp[proc->n_env + 1];
	for (size_t i = 0; i < proc->n_args; i++)
		argv[i] = proc->args[i];
	argv[proc->n_args] = NULL;
	for (size_t i = 0; i < proc->n_env; i++)
		envp[i] = proc->env[i];
	envp[proc->n_env] = NULL;
	char path[4096];
	const char *cwd = proc->cwd && *proc->cwd ? proc->cwd : "/";
	if (child_resolve_exe(argv[0], envp, cwd, path, sizeof(path), &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	if (child_seccomp_load(&filter, &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	/* startContainer: as the process it precedes (user, capabilities,
	 * seccomp; runc's order), its path resolved in the container. */
	if (hooks_run(a->spec->hooks.start_container, a->spec->hooks.n_start_container,
		      "startContainer", hp.state_fds[1], envp, &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	if (hp.state_fds[1] >= 0)
		close(hp.state_fds[1]);
	execve(path, argv, envp);
	cv_errf(&err, errno, "executing \"%s\"", path);
	spawn_child_fail(ctl_fd, &err);
}

/* A process exec'd into a running container, from its clone3 in the
 * intermediate (kernel/spawn.c) to execve. It already sits in the
 * container's namespaces and cgroups; here it gets its fds, session,
 * limits, credentials, seccomp filter and binary. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel/procattr.h"
#include "kernel/spawn_internal.h"

/* Room above the highest guest fd for the temporary copies. */
#define FD_MARGIN 8

/* Installs fds[i] as guest fd guest_fds[i] (not close-on-exec), /dev/null
 * on 0-2 when not covered, and closes everything else but the fds in
 * keep_extra. *ctl_fd and *exec_fd are moved out of the way first. */
static int map_fds(const struct spawn_exec_args *a, int *ctl_fd, int *exec_fd,
		   struct cv_error *err)
{
	int max_guest = 2;
	for (size_t i = 0; i < a->nfds; i++) {
		if (a->guest_fds[i] < 0)
			return cv_errf(err, EBADF, "guest file descriptors must be 0 or greater");
		if (a->guest_fds[i] > max_guest)
			max_guest = a->guest_fds[i];
	}
	int base = max_guest + 1 + FD_MARGIN;
	if ((*ctl_fd = child_move_fd_above(*ctl_fd, base, err)) < 0)
		return -1;
	if (*exec_fd >= 0) {
		int e = fcntl(*exec_fd, F_DUPFD_CLOEXEC, base);
		if (e < 0)
			return cv_errf(err, errno, "preparing the executable fd");
		*exec_fd = e;
	}
	/* Copies first: a donated fd may sit on another one's guest number. */
	int tmp[a->nfds ? a->nfds : 1];
	for (size_t i = 0; i < a->nfds; i++) {
		tmp[i] = fcntl(a->fds[i], F_DUPFD_CLOEXEC, base);
		if (tmp[i] < 0)
			return cv_errf(err, errno, "preparing guest fd %d", a->guest_fds[i]);
	}
	bool covered[3] = { false, false, false };
	for (size_t i = 0; i < a->nfds; i++) {
		if (dup2(tmp[i], a->guest_fds[i]) < 0)
			return cv_errf(err, errno, "installing guest fd %d", a->guest_fds[i]);
		if (a->guest_fds[i] <= 2)
			covered[a->guest_fds[i]] = true;
	}
	if (a->stdio_is_pty) {
		int tty = -1;
		for (int g = 0; g <= 2 && tty < 0; g++)
			if (covered[g])
				tty = g;
		if (tty < 0)
			return cv_errf(err, EINVAL, "StdioIsPty is set but no guest fd 0-2 was given");
		for (int g = 0; g <= 2; g++) {
			if (g != tty && dup2(tty, g) < 0)
				return cv_errf(err, errno, "sharing the terminal as guest fd %d", g);
			covered[g] = true;
		}
	}
	if (!covered[0] || !covered[1] || !covered[2]) {
		/* After setns the root is the container's: its /dev/null, which
		 * the container controls and we still hold every capability. No
		 * symlink, no blocking open, and it must be the null device. */
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
		if (nul < 0)
			return cv_errf(err, errno, "opening /dev/null in the container");
		struct stat st;
		if (fstat(nul, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
			close(nul);
			return cv_errf(err, 0, "the container's /dev/null is not the null device");
		}
		for (int g = 0; g <= 2; g++)
			if (!covered[g] && dup2(nul, g) < 0)
				return cv_errf(err, errno, "installing /dev/null as fd %d", g);
		if (nul > 2)
			close(nul);
	}
	int keep[a->nfds + 2];
	size_t k = 0;
	for (size_t i = 0; i < a->nfds; i++)
		keep[k++] = a->guest_fds[i];
	keep[k++] = *ctl_fd;
	keep[k++] = *exec_fd;
	child_close_fds_except(keep, k);
	return 0;
}

/* runc and crun: a process gets exactly the capabilities it asks for. The
 * CLI sends the container's sets (config.json) or --process's; a request
 * without Capabilities gets none at all, bounding included, whatever its
 * uid. (Handing uid 0 everything boot holds let a container mount a cgroup
 * v1 hierarchy and have the host run its release_agent as root.) */
static void exec_caps(const struct spawn_exec_args *a, struct cap_sets *c)
{
	if (a->has_caps)
		*c = a->caps;
	else
		memset(c, 0, sizeof(*c));
}

static int setup(const struct spawn_exec_args *a, int *ctl_fd, int *exec_fd, char ***envp_out,
		 scmp_filter_ctx *filter, struct cv_error *err)
{
	/* Our parent is boot (CLONE_PARENT): die with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return cv_errf(err, errno, "setting the parent-death signal");
	child_reset_signals();
	if (map_fds(a, ctl_fd, exec_fd, err) < 0)
		return -1;
	if (setsid() < 0)
		return cv_errf(err, errno, "creating a session");
	if (a->stdio_is_pty && ioctl(0, TIOCSCTTY, 0) < 0)
		return cv_errf(err, errno, "making the terminal the controlling terminal");
	umask(022);
	const struct oci_spec *spec = a->spec;
	if (spec && spec->has_process &&
	    child_set_rlimits(spec->process.rlimits, spec->process.n_rlimits, err) < 0)
		return -1;
	/* The container's ioPriority, scheduler, personality, oomScoreAdj and
	 * LSM labels, as runc applies them to an exec'd process (before the
	 * capabilities go). */
	if (spec && spec->has_process &&
	    (procattr_set_io_priority(&spec->process, err) < 0 ||
	     procattr_set_scheduler(&spec->process, err) < 0 ||
	     procattr_set_personality(spec, err) < 0 ||
	     procattr_set_oom_score_adj(&spec->process, err) < 0 ||
	     procattr_set_exec_labels(&spec->process, err) < 0))
		return -1;
	const char *cwd = a->cwd && *a->cwd ? a->cwd : "/";
	if (chdir(cwd) < 0)
		return cv_errf(err, errno, "changing directory to \"%s\"", cwd);

	if (child_seccomp_build(spec, a->no_new_privs, filter, err) < 0)
		return -1;
	if (!a->no_new_privs && child_seccomp_load(filter, err) < 0)
		return -1;
	/* Still with CAP_SYS_ADMIN; boot's loop answers from here on. */
	if (child_trace_install(*ctl_fd, err) < 0)
		return -1;
	struct cap_sets caps;
	exec_caps(a, &caps);
	if (child_switch_user(a->uid, a->gid, a->extra_gids, a->n_extra_gids, err) < 0)
		return -1;
	if (caps_apply(&caps, err) < 0)
		return -1;
	if (a->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return cv_errf(err, errno, "setting no_new_privs");

	size_t n_env = 0;
	bool has_home = false;
	for (char *const *e = a->envv; e && *e; e++, n_env++)
		if (strncmp(*e, "HOME=", 5) == 0)
			has_home = true;
	/* Lives until execve: this process image is replaced or exits. */
	char **envp = calloc(n_env + 2, sizeof(char *));
	if (!envp)
		return cv_errf(err, ENOMEM, "building the environment");
	for (size_t i = 0; i < n_env; i++)
		envp[i] = a->envv[i];
	if (!has_home) {
		/* Only now, with the target's credentials: /etc/passwd is the
		 * container's file and may be a FIFO or a link to /dev/zero. */
		char home[1024];
		child_home_for_uid(a->uid, home, sizeof(home));
		size_t l = strlen(home) + 6;
		char *h = malloc(l);
		if (!h)
			return cv_errf(err, ENOMEM, "building the environment");
		snprintf(h, l, "HOME=%s", home);
		envp[n_env++] = h;
	}
	envp[n_env] = NULL;
	*envp_out = envp;

	return 0;
}

void child_exec_main(const struct spawn_exec_args *a, int ctl_fd)
{
	struct cv_error err;
	cv_error_reset(&err);
	scmp_filter_ctx filter = NULL;
	char **envp = NULL;
	int exec_fd = a->exec_fd;
	if (setup(a, &ctl_fd, &exec_fd, &envp, &filter, &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	if (exec_fd >= 0) {
		if (child_seccomp_load(&filter, &err) < 0)
			spawn_child_fail(ctl_fd, &err);
		syscall(SYS_execveat, exec_fd, "", a->argv, envp, AT_EMPTY_PATH);
		cv_errf(&err, errno, "executing the donated executable fd");
		spawn_child_fail(ctl_fd, &err);
	}
	const char *name = a->filename && *a->filename ? a->filename : a->argv[0];
	char path[4096];
	const char *cwd = a->cwd && *a->cwd ? a->cwd : "/";
	if (child_resolve_exe(name, a->envv, cwd, path, sizeof(path), &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	if (child_seccomp_load(&filter, &err) < 0)
		spawn_child_fail(ctl_fd, &err);
	execve(path, a->argv, envp);
	cv_errf(&err, errno, "executing \"%s\"", path);
	spawn_child_fail(ctl_fd, &err);
}

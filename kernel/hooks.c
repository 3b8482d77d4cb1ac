/* The OCI hook runner and the init's hook-point exchange (kernel/hooks.h).
 * Runs in the CLI, in boot and in the container's init before execve, so
 * it allocates nothing: fixed buffers on the stack. */
#include "kernel/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/spawn_internal.h"

/* The go-ahead byte (the release byte is 1: a different value catches a
 * mix-up of the two). */
#define HOOKS_GO 'G'
/* Without a pidfd (a seccomp profile may refuse pidfd_open), how often a
 * running hook is checked with waitpid. */
#define HOOKS_POLL_TICK_MS 20
/* Fds of the hook's child are moved at or above this before the dup2s. */
#define HOOKS_HIGH_FD 10

extern char **environ;

/* The last HOOKS_TAIL_MAX bytes of a stream. */
struct tail {
	char buf[2 * HOOKS_TAIL_MAX + 1]; /* + the NUL of tail_text */
	size_t len;
	int fd; /* read end, -1 once at EOF */
};

static void tail_read(struct tail *t)
{
	for (;;) {
		if (t->len > HOOKS_TAIL_MAX) {
			memmove(t->buf, t->buf + t->len - HOOKS_TAIL_MAX, HOOKS_TAIL_MAX);
			t->len = HOOKS_TAIL_MAX;
		}
		ssize_t k = read(t->fd, t->buf + t->len, 2 * HOOKS_TAIL_MAX - t->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k > 0) {
			t->len += (size_t)k;
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			close(t->fd);
			t->fd = -1;
		}
		return;
	}
}

/* The tail as one line for the error: trailing newlines dropped. */
static const char *tail_text(struct tail *t)
{
	size_t off = t->len > HOOKS_TAIL_MAX ? t->len - HOOKS_TAIL_MAX : 0;
	size_t n = t->len - off;
	while (n > 0 && (t->buf[off + n - 1] == '\n' || t->buf[off + n - 1] == '\r'))
		n--;
	char *s = t->buf + off;
	s[n] = '\0';
	return s;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the forked child: stdin = the state, stdout/stderr = our pipes, the
 * exec-error pipe on 3 (close-on-exec), nothing else open. Never returns. */
__attribute__((noreturn)) static void hook_child(const struct oci_hook *h, int state_fd,
						 int out_w, int err_w, int exec_w,
						 char *const *default_env)
{
	int e = 0, report = exec_w;
	/* Its own process group, so a timeout kills what it started too. */
	setpgid(0, 0);
	child_reset_signals();
	int src[4] = { state_fd, out_w, err_w, exec_w };
	for (int i = 0; i < 4; i++) {
		if (src[i] < 0)
			continue;
		if ((src[i] = fcntl(src[i], F_DUPFD, HOOKS_HIGH_FD)) < 0)
			goto fail;
	}
	if (src[0] >= 0) {
		if (lseek(src[0], 0, SEEK_SET) < 0 || dup2(src[0], 0) < 0)
			goto fail;
	} else {
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0)
			goto fail;
	}
	if (dup2(src[1], 1) < 0 || dup2(src[2], 2) < 0 || dup2(src[3], 3) < 0)
		goto fail;
	report = 3;
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		goto fail;
	if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
	char *only_path[2] = { h->path, NULL };
	char *no_env[1] = { NULL };
	char *const *argv = h->n_args > 0 ? h->args : only_path;
	char *const *envp = h->has_env ? (h->n_env > 0 ? h->env : no_env)
				       : (default_env ? default_env : environ);
	execve(h->path, argv, envp);
fail:
	e = errno;
	if (write(report, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Runs one hook; "spec.hooks.<kind>[i]: ..." on failure. */
static int run_one(const struct oci_hook *h, const char *kind, size_t i, int state_fd,
		   char *const *default_env, struct cv_error *err)
{
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 }, xp[2] = { -1, -1 };
	if (pipe2(op, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(ep, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    pipe2(xp, O_CLOEXEC) < 0) {
		int e = errno;
		close_fd(&op[0]), close_fd(&op[1]), close_fd(&ep[0]), close_fd(&ep[1]);
		return cv_errf(err, e, "spec.hooks.%s[%zu]: creating pipes for %s", kind, i, h->path);
	}
	/* The child's ends must block for it (a hook writing a lot would get
	 * EAGAIN); only our read ends are non-blocking. */
	fcntl(op[1], F_SETFL, 0);
	fcntl(ep[1], F_SETFL, 0);
	pid_t pid = fork();
	if (pid == 0)
		hook_child(h, state_fd, op[1], ep[1], xp[1], default_env);
	int fork_errno = errno;
	if (pid > 0)
		setpgid(pid, pid); /* as the child does: no race with a timeout's kill */
	close_fd(&op[1]), close_fd(&ep[1]), close_fd(&xp[1]);
	if (pid < 0) {
		close_fd(&op[0]), close_fd(&ep[0]), close_fd(&xp[0]);
		return cv_errf(err, fork_errno, "spec.hooks.%s[%zu]: starting %s", kind, i, h->path);
	}
	/* Our child until we reap it: no pid reuse. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct tail out = { .fd = op[0] }, errt = { .fd = ep[0] };
	/* A timeout beyond ~30 years is as good as none (and would overflow). */
	int64_t deadline = h->has_timeout && h->timeout < ((int64_t)1 << 30)
				   ? now_ms() + h->timeout * 1000 : -1;
	bool timed_out = false, reaped = false;
	int status = 0;
	while (!reaped) {
		struct pollfd p[3];
		int np = 0, io = -1, ie = -1, ip = -1;
		if (out.fd >= 0)
			io = np, p[np++] = (struct pollfd){ .fd = out.fd, .events = POLLIN };
		if (errt.fd >= 0)
			ie = np, p[np++] = (struct pollfd){ .fd = errt.fd, .events = POLLIN };
		if (pidfd >= 0)
			ip = np, p[np++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		int wait_ms = pidfd >= 0 ? -1 : HOOKS_POLL_TICK_MS;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left < 0)
				left = 0;
			if (wait_ms < 0 || left < wait_ms)
				wait_ms = (int)(left > INT_MAX ? INT_MAX : left);
		}
		int r = poll(p, (nfds_t)np, wait_ms);
		if (r < 0 && errno != EINTR) {
			int e = errno;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
				;
			close_fd(&pidfd), close_fd(&out.fd), close_fd(&errt.fd), close_fd(&xp[0]);
			return cv_errf(err, e, "spec.hooks.%s[%zu]: waiting for %s", kind, i, h->path);
		}
		if (r > 0 && io >= 0 && p[io].revents)
			tail_read(&out);
		if (r > 0 && ie >= 0 && p[ie].revents)
			tail_read(&errt);
		if (ip < 0 || (r > 0 && p[ip].revents)) {
			pid_t w = waitpid(pid, &status, WNOHANG | __WALL);
			if (w == pid)
				reaped = true;
		}
		if (!reaped && deadline >= 0 && now_ms() >= deadline) {
			/* runc kills the hook alone; its group goes too, so a
			 * child it left behind cannot hold the pipes (or the
			 * container's set-up) forever. */
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
				;
			reaped = timed_out = true;
		}
	}
	close_fd(&pidfd);
	/* What is already in the pipes; not waiting for EOF, which a process
	 * the hook left running could hold off forever. */
	if (out.fd >= 0)
		tail_read(&out);
	if (errt.fd >= 0)
		tail_read(&errt);
	close_fd(&out.fd), close_fd(&errt.fd);
	int exec_errno = 0;
	ssize_t k;
	do
		k = read(xp[0], &exec_errno, sizeof(exec_errno));
	while (k < 0 && errno == EINTR);
	close_fd(&xp[0]);

	const char *o = tail_text(&errt);
	const char *what = "stderr";
	if (!*o) {
		o = tail_text(&out);
		what = "stdout";
	}
	if (k == (ssize_t)sizeof(exec_errno))
		return cv_errf(err, exec_errno, "spec.hooks.%s[%zu]: executing %s", kind, i, h->path);
	if (timed_out) {
		cv_errf(err, 0, "spec.hooks.%s[%zu]: %s did not exit within its timeout of %lld s and "
				"was killed%s%s%s%s", kind, i, h->path, (long long)h->timeout,
			*o ? "; " : "", *o ? what : "", *o ? ": " : "", o);
		err->code = ETIMEDOUT;
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char how[64];
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	return cv_errf(err, 0, "spec.hooks.%s[%zu]: %s %s%s%s%s%s", kind, i, h->path, how,
		       *o ? "; " : "", *o ? what : "", *o ? ": " : "", o);
}

int hooks_run(const struct oci_hook *hooks, size_t n, const char *kind, int state_fd,
	      char *const *default_env, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (run_one(&hooks[i], kind, i, state_fd, default_env, err) < 0)
			return -1;
	return 0;
}

int hooks_run_at(const struct oci_hook *hooks, size_t i, const char *kind, int state_fd,
		 char *const *default_env, struct cv_error *err)
{
	return run_one(&hooks[i], kind, i, state_fd, default_env, err);
}

int hooks_state_fd(const char *json, size_t len, struct cv_error *err)
{
	int fd = memfd_create("cvisor-hook-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return cv_errf(err, errno, "creating the hooks' state file");
	size_t off = 0;
	while (off < len) {
		ssize_t k = write(fd, json + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;
			close(fd);
			return cv_errf(err, e, "writing the hooks' state file");
		}
		off += (size_t)k;
	}
	/* Every hook of a list reads the same file: sealed, so one cannot
	 * change what the next one is told. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "sealing the hooks' state file");
	}
	return fd;
}

bool hooks_init_stops(const struct oci_spec *spec)
{
	const struct oci_hooks *h = &spec->hooks;
	return spec->has_hooks && (h->n_prestart || h->n_create_runtime || h->n_create_container ||
				   h->n_start_container);
}

int hooks_send_go(int ctl_fd, const int state_fds[2], struct cv_error *err)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	int fds[2], n = 0;
	for (int i = 0; i < 2; i++)
		if (state_fds[i] >= 0)
			fds[n++] = state_fds[i];
	/* Which fd is which travels in the byte after the go: bit 0 creating,
	 * bit 1 created. */
	char msg[2] = { HOOKS_GO, (char)((state_fds[0] >= 0) | ((state_fds[1] >= 0) << 1)) };
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n > 0) {
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	}
	ssize_t k;
	do
		k = sendmsg(ctl_fd, &m, MSG_NOSIGNAL);
	while (k < 0 && errno == EINTR);
	if (k != (ssize_t)sizeof(msg))
		return cv_errf(err, k < 0 ? errno : EIO, "letting the container's init go on after its hooks");
	return 0;
}

int hooks_recv_go(int ctl_fd, int state_fds[2], struct cv_error *err)
{
	state_fds[0] = state_fds[1] = -1;
	char msg[2];
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	ssize_t k;
	do
		k = recvmsg(ctl_fd, &m, MSG_CMSG_CLOEXEC);
	while (k < 0 && errno == EINTR);
	if (k == 0)
		_exit(0); /* boot is gone or refused the hooks: it reports why */
	if (k < 0)
		return cv_errf(err, errno, "waiting for the runtime's hooks");
	int fds[2] = { -1, -1 }, n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t j = 0; j < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
				if (n < 2)
					fds[n++] = fd;
				else
					close(fd);
			}
	int want = k == 2 ? (msg[1] & 1) + ((msg[1] >> 1) & 1) : -1;
	if (k != 2 || msg[0] != HOOKS_GO || want != n || (m.msg_flags & MSG_CTRUNC)) {
		for (int i = 0; i < n; i++)
			close(fds[i]);
		return cv_errf(err, EPROTO, "the runtime's answer after the hooks is malformed");
	}
	int j = 0;
	if (msg[1] & 1)
		state_fds[0] = fds[j++];
	if (msg[1] & 2)
		state_fds[1] = fds[j++];
	return 0;
}

int hooks_budget_ms(const struct oci_hook *hooks, size_t n)
{
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (!hooks[i].has_timeout)
			return -1;
		sum += hooks[i].timeout * 1000;
		if (sum > INT_MAX)
			return -1;
	}
	return (int)sum;
}

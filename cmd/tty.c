/* Ptys and runc's console-socket protocol: connecting to a console socket
 * (create hands the connection to the container's init, which sends the
 * master of a pty made in the container's devpts), receiving and proxying
 * that master (attached `run`), and host ptys for `exec -t`. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cmd/verbs.h"
#include "core/fdsend.h"
#include "core/util.h"

int tty_open_pair(int *master, int *slave, char *name, size_t name_len, struct cv_error *err)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return cv_errf(err, errno, "opening a pty");
	if (grantpt(m) < 0 || unlockpt(m) < 0) {
		int e = errno;
		close(m);
		return cv_errf(err, e, "unlocking the pty");
	}
	if (ptsname_r(m, name, name_len) != 0) {
		int e = errno;
		close(m);
		return cv_errf(err, e, "naming the pty");
	}
	int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;
		close(m);
		return cv_errf(err, e, "opening %s", name);
	}
	*master = m; /* both owned by the caller */
	*slave = s;
	return 0;
}

int tty_console_connect(const char *path, struct cv_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int dfd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		/* Too long for sun_path: go through the directory's fd. */
		char dir[PATH_MAX], base[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", path);
		snprintf(base, sizeof(base), "%s", path);
		dfd = open(dirname(dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return cv_errf(err, errno, "opening the directory of console socket %s", path);
		int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd,
				 basename(base));
		if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
			close(dfd);
			return cv_errf(err, ENAMETOOLONG, "console socket %s", path);
		}
	} else {
		memcpy(sa.sun_path, path, strlen(path) + 1);
	}
	static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM };
	int e = 0;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			break;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			if (dfd >= 0)
				close(dfd);
			return fd;
		}
		e = errno;
		close(fd);
		/* The listener's socket type differs: try the next one. */
		if (e != EPROTOTYPE)
			break;
	}
	if (dfd >= 0)
		close(dfd);
	return cv_errf(err, e, "connecting to console socket %s", path);
}

int tty_send_console(const char *path, int master, const char *name, struct cv_error *err)
{
	int fd = tty_console_connect(path, err);
	if (fd < 0)
		return -1;
	char what[PATH_MAX + 64];
	snprintf(what, sizeof(what), "sending the pty to console socket %s", path);
	int r = fd_send(fd, master, name, strlen(name), what, err);
	close(fd);
	return r;
}

int tty_recv_console(int sock, struct cv_error *err)
{
	char data[4096];
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cv_errf(err, errno, "receiving the container's pty");
	int fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				close(f); /* only one is expected */
		}
	}
	if (fd < 0)
		return cv_errf(err, 0, "the container sent no pty on its console socket");
	if (!isatty(fd)) {
		close(fd);
		return cv_errf(err, 0, "the container's console socket carried a file that is not a pty");
	}
	return fd;
}

bool tty_make_raw(struct termios *saved)
{
	if (tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	struct termios t = *saved;
	cfmakeraw(&t);
	return tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

void tty_copy_winsize(int master)
{
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

int tty_copy_some(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0)
		return 0;
	return cli_write_all(to, buf, (size_t)n) == 0 ? 1 : -1;
}

int tty_proxy_until_exit(int master, pid_t child, int *status, struct cv_error *err)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGWINCH);
	if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
		return cv_errf(err, errno, "blocking SIGCHLD and SIGWINCH");
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		int e = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return cv_errf(err, e, "watching SIGCHLD and SIGWINCH");
	}
	struct termios saved;
	bool is_tty = isatty(STDIN_FILENO);
	bool raw = is_tty && tty_make_raw(&saved);
	if (is_tty)
		tty_copy_winsize(master);

	int r = 0;
	bool stdin_open = true, master_open = true;
	for (;;) {
		/* Before sleeping: the child may have ended before the block. */
		pid_t w = waitpid(child, status, WNOHANG | __WALL);
		if (w == child)
			break;
		if (w < 0 && errno != EINTR) {
			r = cv_errf(err, errno, "waiting for the container's init %d", (int)child);
			break;
		}
		struct pollfd p[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = master_open ? master : -1, .events = POLLIN },
		};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR) /* a signal run forwards to the init */
				continue;
			r = cv_errf(err, errno, "waiting on the container's terminal");
			break;
		}
		/* Signals first: a resize that came before some input reaches
		 * the container before that input does. */
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo == SIGWINCH && is_tty)
					tty_copy_winsize(master);
		}
		if (p[2].revents) {
			int c = tty_copy_some(master, STDOUT_FILENO);
			if (c <= 0)
				master_open = false; /* output gone or nowhere to go */
		}
		/* At stdin's EOF the pty stays open: hanging it up would
		 * SIGHUP the container. */
		if (p[1].revents && tty_copy_some(STDIN_FILENO, master) <= 0)
			stdin_open = false;
	}
	/* The init is gone, and with its pid namespace everything that held
	 * the replica: what is left in the pty ends with EIO. The bounded
	 * poll only guards against a replica kept open outside (a container
	 * without its own pid namespace leaving a daemon behind). */
	while (master_open) {
		struct pollfd p = { .fd = master, .events = POLLIN };
		int k = poll(&p, 1, 200);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || tty_copy_some(master, STDOUT_FILENO) <= 0)
			break;
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

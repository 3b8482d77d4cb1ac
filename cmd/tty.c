/* Ptys for `create` and `exec -t`, and runc's console-socket protocol. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd/verbs.h"

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

static int connect_unix(const char *path, struct cv_error *err)
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
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
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
	int fd = connect_unix(path, err);
	if (fd < 0)
		return -1;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n < 0)
		return cv_errf(err, e, "sending the pty to console socket %s", path);
	return 0;
}

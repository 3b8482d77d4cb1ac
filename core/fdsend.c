/* File descriptors over a unix socket (core/fdsend.h). */
#include "core/fdsend.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

union fd_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * FD_MSG_MAX)];
	struct cmsghdr align;
};

ssize_t fd_sendmsg(int sock, const void *data, size_t len, const int *fds, size_t nfds,
		   int flags)
{
	union fd_cmsg u;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds > FD_MSG_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		memset(&u, 0, CMSG_SPACE(sizeof(int) * nfds));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t fd_recvmsg(int sock, void *data, size_t len, int *fds, size_t max, int *nfds, int flags)
{
	union fd_cmsg u;
	if (max > FD_MSG_MAX)
		max = FD_MSG_MAX;
	struct iovec iov = { .iov_base = data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	*nfds = 0;
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *p = CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, p + i * sizeof(int), sizeof(int));
			if ((size_t)*nfds < max)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		for (int i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = -1;
	}
	return n;
}

int fd_send(int sock, int fd, const void *data, size_t len, const char *what,
	    struct cv_error *err)
{
	if (fd_sendmsg(sock, data, len, &fd, 1, 0) < 0)
		return cv_errf(err, errno, "%s", what);
	return 0;
}

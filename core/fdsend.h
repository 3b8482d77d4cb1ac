#pragma once
/* File descriptors over a unix socket (SCM_RIGHTS) with a few bytes of
 * data: one sendmsg, read with one recvmsg. No allocation: usable in a
 * freshly cloned child before execve. */
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

/* Most fds one message carries: the kernel's SCM_MAX_FD. */
#define FD_MSG_MAX 253

/* One sendmsg of data[0..len) with fds[0..nfds) (nfds <= FD_MSG_MAX);
 * MSG_NOSIGNAL is always added to flags, EINTR retried. Returns what
 * sendmsg returned (-1 with errno). A stream socket drops the fds of an
 * empty message, so len > 0 there. */
ssize_t fd_sendmsg(int sock, const void *data, size_t len, const int *fds, size_t nfds,
		   int flags);

/* One recvmsg into data[0..len) taking up to max fds, close-on-exec; EINTR
 * retried. *nfds is how many arrived (fds beyond max are closed), or -1
 * when the kernel cut the control data short (the fds that did arrive are
 * closed then). Returns what recvmsg returned (-1 with errno). */
ssize_t fd_recvmsg(int sock, void *data, size_t len, int *fds, size_t max, int *nfds, int flags);

/* Sends one fd with data (console sockets: runc's, conmon's, the
 * containerd shim's). what names the operation in errors. */
int fd_send(int sock, int fd, const void *data, size_t len, const char *what,
	    struct cv_error *err);

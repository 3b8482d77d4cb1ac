#pragma once
/* Sending one file descriptor over a unix socket (SCM_RIGHTS) with a few
 * bytes of data, as console sockets expect it (runc's, conmon's, the
 * containerd shim's: one sendmsg, read with one recvmsg). No allocation:
 * usable in a freshly cloned child before execve. */
#include <stddef.h>

#include "core/err.h"

/* Sends fd with data[0..len) (len > 0: a stream socket drops an empty
 * message's fds). what names the operation in errors. */
int fd_send(int sock, int fd, const void *data, size_t len, const char *what,
	    struct cv_error *err);

/* Pipes between the processes of a checkpointed container
 * (kernel/ckpt_tree.h). A pipe is known by its inode (the fd link's
 * "pipe:[INO]"); each end is one open file description, whose flags
 * fdinfo shows. The buffered bytes are copied, not consumed: the
 * container may run on (checkpoint --leave-running). */
#include "kernel/ckpt_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct ckpt_pipe *find(struct ckpt_pipe *a, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].ino == ino)
			return &a[i];
	return NULL;
}

/* A copy of fd of process pid, in us. */
static int take_fd(pid_t pid, int fd, struct cv_error *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return cv_errf(err, errno, "process %d: pidfd", pid);
	int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int e = errno;
	close(pidfd);
	if (got < 0)
		return cv_errf(err, e, "process %d fd %d: taking a copy of it", pid, fd);
	fcntl(got, F_SETFD, FD_CLOEXEC);
	return got;
}

/* The bytes buffered in the pipe whose read end rfd (a copy) is: tee(2)
 * duplicates them into a pipe of ours, as large as this one, and we read
 * them from there. */
static int read_buffered(struct ckpt_pipe *cp, int rfd, pid_t pid, int fd, struct cv_error *err)
{
	int avail = 0;
	if (ioctl(rfd, FIONREAD, &avail) < 0)
		return cv_errf(err, errno, "process %d fd %d (pipe:[%llu]): FIONREAD", pid, fd,
			       (unsigned long long)cp->ino);
	if (avail <= 0)
		return 0;
	if ((size_t)avail > CKPT_PIPE_MAX_BYTES)
		return cv_errf(err, 0, "process %d fd %d (pipe:[%llu]): %d buffered bytes, at most %d",
			       pid, fd, (unsigned long long)cp->ino, avail, CKPT_PIPE_MAX_BYTES);
	int sp[2];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0)
		return cv_errf(err, errno, "checkpoint: a spare pipe");
	int rc = 0;
	if (fcntl(sp[1], F_SETPIPE_SZ, (int)cp->size) < 0)
		rc = cv_errf(err, errno, "checkpoint: sizing a spare pipe to %llu bytes",
			     (unsigned long long)cp->size);
	ssize_t got = rc == 0 ? tee(rfd, sp[1], (size_t)avail, SPLICE_F_NONBLOCK) : -1;
	if (rc == 0 && got != avail)
		rc = cv_errf(err, got < 0 ? errno : 0,
			     "process %d fd %d (pipe:[%llu]): copying its %d buffered bytes (got %zd)",
			     pid, fd, (unsigned long long)cp->ino, avail, got);
	if (rc == 0 && !(cp->data = malloc((size_t)avail)))
		rc = cv_errf(err, ENOMEM, "checkpoint: pipe bytes");
	for (size_t off = 0; rc == 0 && off < (size_t)avail;) {
		ssize_t r = read(sp[0], cp->data + off, (size_t)avail - off);
		if (r <= 0) {
			rc = cv_errf(err, r < 0 ? errno : EIO, "checkpoint: reading a spare pipe");
			break;
		}
		off += (size_t)r;
	}
	if (rc == 0)
		cp->len = (size_t)avail;
	close(sp[0]);
	close(sp[1]);
	return rc;
}

int ckpt_pipes_collect(const struct ckpt_proc *procs, size_t n, struct ckpt_pipe **out,
		       size_t *npipes, struct cv_error *err)
{
	struct ckpt_pipe *a = calloc(CKPT_MAX_PIPES, sizeof(*a));
	if (!a)
		return cv_errf(err, ENOMEM, "checkpoint: pipes");
	size_t np = 0;
	int rc = 0;
	/* Where each pipe's ends are: a holder of each, by index. */
	struct holder {
		int rproc, rfd, wproc, wfd;
	} *h = calloc(CKPT_MAX_PIPES, sizeof(*h));
	if (!h)
		rc = cv_errf(err, ENOMEM, "checkpoint: pipes");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		for (size_t k = 0; rc == 0 && k < procs[i].nfds; k++) {
			const struct ckpt_fd *f = &procs[i].fds[k];
			if (f->kind != CKPT_FD_PIPE)
				continue;
			struct ckpt_pipe *cp = find(a, np, f->pipe);
			if (!cp) {
				if (np == CKPT_MAX_PIPES) {
					rc = cv_errf(err, 0, "the container holds more than %d pipes",
						     CKPT_MAX_PIPES);
					break;
				}
				cp = &a[np];
				cp->ino = f->pipe;
				h[np] = (struct holder){-1, -1, -1, -1};
				np++;
			}
			struct holder *ho = &h[cp - a];
			int acc = f->flags & O_ACCMODE;
			if (acc == O_RDONLY && ho->rproc < 0) {
				*ho = (struct holder){(int)i, f->fd, ho->wproc, ho->wfd};
				cp->rflags = f->flags & ~O_ACCMODE;
			} else if (acc == O_WRONLY && ho->wproc < 0) {
				ho->wproc = (int)i;
				ho->wfd = f->fd;
				cp->wflags = f->flags & ~O_ACCMODE;
			}
		}
	}
	size_t total = 0;
	for (size_t i = 0; rc == 0 && i < np; i++) {
		struct holder *ho = &h[i];
		if (ho->rproc < 0 || ho->wproc < 0) {
			int pi = ho->rproc < 0 ? ho->wproc : ho->rproc;
			int fd = ho->rproc < 0 ? ho->wfd : ho->rfd;
			rc = cv_errf(err, 0,
				     "process %d fd %d (pipe:[%llu]) is not supported by checkpoint: "
				     "no process of the container holds its %s end (kind: pipe to "
				     "outside or half-closed pipe)",
				     procs[pi].pid, fd, (unsigned long long)a[i].ino,
				     ho->rproc < 0 ? "read" : "write");
			break;
		}
		int rfd = take_fd(procs[ho->rproc].pid, ho->rfd, err);
		if (rfd < 0) {
			rc = -1;
			break;
		}
		int sz = fcntl(rfd, F_GETPIPE_SZ);
		if (sz < 0)
			rc = cv_errf(err, errno, "process %d fd %d (pipe:[%llu]): its size",
				     procs[ho->rproc].pid, ho->rfd, (unsigned long long)a[i].ino);
		else
			a[i].size = (uint64_t)sz;
		if (rc == 0)
			rc = read_buffered(&a[i], rfd, procs[ho->rproc].pid, ho->rfd, err);
		close(rfd);
		total += a[i].len;
		if (rc == 0 && total > CKPT_PIPES_MAX_TOTAL)
			rc = cv_errf(err, 0,
				     "process %d fd %d (pipe:[%llu]): the container's pipes hold more "
				     "than %d bytes together",
				     procs[ho->rproc].pid, ho->rfd, (unsigned long long)a[i].ino,
				     CKPT_PIPES_MAX_TOTAL);
	}
	free(h);
	if (rc < 0) {
		ckpt_pipes_free(a, np);
		return -1;
	}
	*out = a;
	*npipes = np;
	return 0;
}

void ckpt_pipes_free(struct ckpt_pipe *pipes, size_t n)
{
	for (size_t i = 0; pipes && i < n; i++)
		free(pipes[i].data);
	free(pipes);
}

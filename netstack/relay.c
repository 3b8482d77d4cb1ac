/* splice relay between two sockets (netstack/relay.h). */
#include "netstack/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cont.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

/* Splices per event before yielding to the loop: one busy stream must not
 * starve the others (each splice moves up to a pipe's worth). */
#define RELAY_BUDGET 16

struct dir {
	struct relay *r;
	int src, dst;
	int pipe[2];
	size_t cap;      /* the pipe's size */
	size_t pending;  /* bytes in the pipe */
	bool eof;        /* src ended */
	bool done;       /* eof, drained, dst shut for writing */
	bool stalled;    /* the pipe took nothing although not full: wait for the drain */
	uint64_t moved;
	ev_io rw;        /* src readable */
	ev_io ww;        /* dst writable */
};

struct relay {
	int fd[2];
	struct dir d[2]; /* d[0]: fd[0] → fd[1]; d[1]: fd[1] → fd[0] */
	bool ended;
	struct cont end_k;
	relay_done_fn done;
	void *data;
};

static void stop_dir(struct dir *d)
{
	ev_io_stop(core_loop(), &d->rw);
	ev_io_stop(core_loop(), &d->ww);
}

static void finish(struct cont *k, int err)
{
	(void)err;
	struct relay *r = container_of(k, struct relay, end_k);
	r->done(r, r->data); /* the owner frees r */
}

/* Both directions stop; the owner hears of it from the loop. */
static void end_relay(struct relay *r)
{
	if (r->ended)
		return;
	r->ended = true;
	stop_dir(&r->d[0]);
	stop_dir(&r->d[1]);
	cont_post(&r->end_k, 0);
}

/* Moves what it can; returns -1 when the relay must end (error). */
static int pump(struct dir *d)
{
	for (int i = 0; i < RELAY_BUDGET; i++) {
		bool progress = false;
		if (!d->eof && !d->stalled && d->pending < d->cap) {
			ssize_t n = splice(d->src, NULL, d->pipe[1], NULL, d->cap - d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->pending += (size_t)n;
				progress = true;
			} else if (n == 0) {
				d->eof = true;
			} else if (errno == EAGAIN) {
				/* With bytes in the pipe, EAGAIN may mean the pipe ran out
				 * of slots (one per fragment) rather than no data: wait
				 * for the writer to drain instead of spinning on a
				 * readable source. */
				if (d->pending)
					d->stalled = true;
			} else if (errno != EINTR) {
				return -1;
			}
		}
		if (d->pending) {
			ssize_t n = splice(d->pipe[0], NULL, d->dst, NULL, d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->pending -= (size_t)n;
				d->moved += (uint64_t)n;
				d->stalled = false;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return -1;
			}
		}
		if (d->eof && !d->pending) {
			shutdown(d->dst, SHUT_WR);
			d->done = true;
			return 0;
		}
		if (!progress)
			break;
	}
	return 0;
}

/* Arms exactly the watchers the direction's state needs. */
static void arm(struct dir *d)
{
	struct ev_loop *loop = core_loop();
	bool want_read = !d->done && !d->eof && !d->stalled && d->pending < d->cap;
	bool want_write = !d->done && d->pending > 0;
	if (want_read)
		ev_io_start(loop, &d->rw);
	else
		ev_io_stop(loop, &d->rw);
	if (want_write)
		ev_io_start(loop, &d->ww);
	else
		ev_io_stop(loop, &d->ww);
}

static void run_dir(struct dir *d)
{
	struct relay *r = d->r;
	if (r->ended)
		return;
	if (pump(d) < 0) {
		end_relay(r);
		return;
	}
	if (r->d[0].done && r->d[1].done) {
		end_relay(r);
		return;
	}
	arm(d);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	run_dir(container_of(w, struct dir, rw));
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	run_dir(container_of(w, struct dir, ww));
}

static int init_dir(struct relay *r, struct dir *d, int src, int dst, struct cv_error *err)
{
	d->r = r;
	d->src = src;
	d->dst = dst;
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		d->pipe[0] = d->pipe[1] = -1;
		return cv_errf(err, errno, "creating the relay's pipe");
	}
	int got = fcntl(d->pipe[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
	if (got < 0)
		got = fcntl(d->pipe[1], F_GETPIPE_SZ); /* the default size still works */
	d->cap = got > 0 ? (size_t)got : 65536;
	ev_io_init(&d->rw, on_read, src, EV_READ);
	ev_io_init(&d->ww, on_write, dst, EV_WRITE);
	return 0;
}

/* A unix stream socket's send buffer bounds the bytes in flight to its
 * reader (208 KiB by default): as big as the pipe, the relay hands over a
 * pipe's worth per wake-up instead of a fifth of it. TCP keeps its
 * autotuning (setting SO_SNDBUF would turn it off). Needs CAP_NET_ADMIN
 * past net.core.wmem_max; without it the default stays. */
static void widen_unix(int fd)
{
	int domain = 0, size = RELAY_PIPE_SIZE;
	socklen_t len = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

struct relay *relay_new(int a, int b, relay_done_fn done, void *data, struct cv_error *err)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (!r) {
		close(a);
		close(b);
		cv_errf(err, ENOMEM, "allocating a relay");
		return NULL;
	}
	r->fd[0] = a;
	r->fd[1] = b;
	r->d[0].pipe[0] = r->d[0].pipe[1] = r->d[1].pipe[0] = r->d[1].pipe[1] = -1;
	r->done = done;
	r->data = data;
	cont_init(&r->end_k, finish, "port-forward relay end");
	r->ended = true; /* nothing to stop until started */
	if (fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK) < 0) {
		cv_errf(err, errno, "making the relayed sockets non-blocking");
		relay_free(r);
		return NULL;
	}
	widen_unix(a);
	widen_unix(b);
	if (init_dir(r, &r->d[0], a, b, err) < 0 || init_dir(r, &r->d[1], b, a, err) < 0) {
		relay_free(r);
		return NULL;
	}
	r->ended = false;
	run_dir(&r->d[0]);
	run_dir(&r->d[1]);
	return r;
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	for (int i = 0; i < 2; i++) {
		stop_dir(&r->d[i]);
		for (int j = 0; j < 2; j++)
			if (r->d[i].pipe[j] >= 0)
				close(r->d[i].pipe[j]);
		close(r->fd[i]);
	}
	cont_cancel(&r->end_k);
	free(r);
}

void relay_bytes(const struct relay *r, uint64_t *a_to_b, uint64_t *b_to_a)
{
	*a_to_b = r->d[0].moved;
	*b_to_a = r->d[1].moved;
}

static const char *dir_state(const struct dir *d)
{
	if (d->done)
		return "ended (EOF passed on)";
	if (d->eof)
		return "source at EOF, draining";
	if (d->stalled || d->pending >= d->cap)
		return "pipe full, waiting for the destination";
	if (d->pending)
		return "writing";
	return "waiting for the source";
}

void relay_describe(const struct relay *r, FILE *out, const char *indent, const char *a,
		    const char *b)
{
	for (int i = 0; i < 2; i++) {
		const struct dir *d = &r->d[i];
		fprintf(out, "%s%s -> %s: %llu bytes, %zu in the pipe, %s; watcher read (io fd %d): "
			     "%s, write (io fd %d): %s\n",
			indent, i == 0 ? a : b, i == 0 ? b : a,
			(unsigned long long)d->moved, d->pending, dir_state(d), d->src,
			ev_is_active(&d->rw) ? "active" : "stopped", d->dst,
			ev_is_active(&d->ww) ? "active" : "stopped");
	}
}

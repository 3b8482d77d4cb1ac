/* Boot's side of the exec spawner (kernel/spawner.h): keeps one spare
 * intermediate, queues execs that arrive while none is spare, and watches
 * the spawner's socket on the loop. Nothing here forks or waits. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/spawn_wire.h"
#include "kernel/spawner.h"

void spawner_init(struct spawner *s, const struct spawner_conf *conf)
{
	memset(s, 0, sizeof(*s));
	if (conf)
		s->conf = *conf;
	s->proc.pid = -1;
	s->proc.pidfd = s->proc.sock = -1;
	s->ready.pid = -1;
	s->ready.pidfd = s->ready.req_fd = -1;
	list_init(&s->waiting);
}

static void req_release(struct spawner_req *r)
{
	if (r->memfd >= 0)
		close(r->memfd);
	for (size_t i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	if (r->exec_fd >= 0)
		close(r->exec_fd);
	free(r->fds);
	r->fds = NULL;
	r->nfds = 0;
	r->memfd = r->exec_fd = -1;
}

static struct spawner_req *pop_waiting(struct spawner *s)
{
	if (list_empty(&s->waiting))
		return NULL;
	struct spawner_req *r = container_of(list_first(&s->waiting), struct spawner_req, link);
	list_del(&r->link);
	r->queued = false;
	s->n_waiting--;
	return r;
}

/* Keeps one intermediate spare beyond the queued execs, within the cap. */
static void refill(struct spawner *s)
{
	while (s->running && s->asked < SPAWNER_MAX_ASKED &&
	       (size_t)s->asked + (s->has_ready ? 1 : 0) < s->n_waiting + 1) {
		struct cv_error err;
		if (spawner_proc_ask(&s->proc, &err) < 0) {
			/* EAGAIN: its queue is full; the next answer asks again. */
			if (err.code != EAGAIN)
				LOG(LL_WARN, "%s", err.msg);
			return;
		}
		s->asked++;
	}
}

static void serve(struct spawner_req *r, struct spawner_mid *mid)
{
	const struct spawner_packed pk = { r->memfd, r->fds, r->nfds, r->exec_fd };
	struct spawn_pending p;
	struct cv_error err;
	int rc = spawner_mid_send(mid, &pk, &p, &err);
	req_release(r);
	if (rc < 0)
		r->done(r, NULL, &err);
	else
		r->done(r, &p, NULL);
}

static int start_proc(struct spawner *s, struct cv_error *err);

static void stop_proc(struct spawner *s)
{
	if (!s->running)
		return;
	ev_io_stop(core_loop(), &s->sock_w);
	spawner_proc_stop(&s->proc);
	s->running = false;
	s->asked = 0;
}

static void on_answer(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct spawner *s = container_of(w, struct spawner, sock_w);
	for (;;) {
		struct spawner_mid mid;
		struct cv_error err;
		int r = spawner_proc_recv(&s->proc, &mid, &err);
		if (r == 0)
			break;
		if (r < 0 && err.code == ECHILD) {
			/* Gone (killed, out of memory): a new one serves the queued
			 * execs; only if that fails too are they told why. */
			LOG(LL_WARN, "%s", err.msg);
			stop_proc(s);
			if (s->n_waiting == 0)
				return;
			struct cv_error serr;
			if (start_proc(s, &serr) == 0) {
				refill(s);
				return;
			}
			struct spawner_req *q;
			while ((q = pop_waiting(s))) {
				req_release(q);
				q->done(q, NULL, &serr);
			}
			return;
		}
		s->asked--;
		struct spawner_req *q = pop_waiting(s);
		if (r < 0) {
			/* This fork failed; the oldest exec gets the reason. */
			if (q) {
				req_release(q);
				q->done(q, NULL, &err);
			}
			continue;
		}
		if (q)
			serve(q, &mid);
		else if (!s->has_ready) {
			s->ready = mid;
			s->has_ready = true;
		} else {
			spawner_mid_discard(&mid);
		}
	}
	refill(s);
}

static int start_proc(struct spawner *s, struct cv_error *err)
{
	if (s->running)
		return 0;
	if (spawner_proc_start(&s->conf, &s->proc, err) < 0)
		return -1;
	ev_io_init(&s->sock_w, on_answer, s->proc.sock, EV_READ);
	ev_io_start(core_loop(), &s->sock_w);
	s->running = true;
	s->asked = 0;
	return 0;
}

/* The queued copy of an exec's fds: the RPC request that lent them is
 * freed when its handler returns. */
static int take_fds(struct spawner_req *r, const struct spawn_exec_args *a, struct cv_error *err)
{
	r->fds = a->nfds ? calloc(a->nfds, sizeof(int)) : NULL;
	if (a->nfds && !r->fds)
		return cv_errf(err, ENOMEM, "queueing the exec");
	for (size_t i = 0; i < a->nfds; i++) {
		int fd = fcntl(a->fds[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			int e = errno;
			req_release(r);
			return cv_errf(err, e, "keeping the exec's fds while it waits");
		}
		r->fds[r->nfds++] = fd;
	}
	if (a->exec_fd >= 0 && (r->exec_fd = fcntl(a->exec_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		int e = errno;
		req_release(r);
		return cv_errf(err, e, "keeping the exec's file while it waits");
	}
	return 0;
}

int spawner_submit(struct spawner *s, const struct spawn_exec_args *a, struct spawner_req *r,
		   spawner_done_fn done, struct spawn_pending *p, struct cv_error *err)
{
	if (!a->argv || !a->argv[0])
		return cv_errf(err, 0, "argv must not be empty");
	/* The container's part is the same for every exec of it. */
	s->conf = (struct spawner_conf){ a->init_pidfd, a->ns_flags, a->cg, a->spec };
	if (start_proc(s, err) < 0)
		return -1;
	int memfd;
	if (spawn_wire_pack(a, &memfd, err) < 0)
		return -1;
	if (s->has_ready) {
		s->has_ready = false;
		const struct spawner_packed pk = { memfd, a->fds, a->nfds, a->exec_fd };
		int rc = spawner_mid_send(&s->ready, &pk, p, err);
		close(memfd);
		refill(s);
		return rc < 0 ? -1 : 1;
	}
	memset(r, 0, sizeof(*r));
	r->memfd = memfd;
	r->exec_fd = -1;
	if (take_fds(r, a, err) < 0)
		return -1;
	r->done = done;
	r->queued = true;
	list_add_tail(&s->waiting, &r->link);
	s->n_waiting++;
	refill(s);
	return 0;
}

void spawner_cancel(struct spawner *s, struct spawner_req *r)
{
	if (!r->queued)
		return;
	list_del(&r->link);
	r->queued = false;
	s->n_waiting--;
	req_release(r);
}

void spawner_destroy(struct spawner *s)
{
	struct spawner_req *q;
	while ((q = pop_waiting(s)))
		req_release(q);
	if (s->has_ready) {
		spawner_mid_discard(&s->ready);
		s->has_ready = false;
	}
	stop_proc(s);
}

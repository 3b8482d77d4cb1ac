/* The sandbox's side of a gofer connection (kernel/gofer_conn.h). */
#include "kernel/gofer_conn.h"

#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fdsend.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "kernel/model.h"

/* A gofer answers from its own memory in microseconds; this bounds one
 * that is stuck (its file system hung). */
#define GOFER_REPLY_TIMEOUT_S 10.0
#define GOFER_MSGID 1
#define GOFER_REPLY_MAX 4096

struct gofer_req {
	int sock;
	ev_io w;
	ev_timer t;
	gofer_root_fn done;
	void *data;
};

static void on_reply(struct ev_loop *loop, ev_io *w, int revents);
static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents);

struct gofer_req *gofer_root_start(int sock, gofer_root_fn done, void *data,
				   struct cv_error *err)
{
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 0);
	msgpack_pack_int(&pk, GOFER_MSGID);
	mpk_pack_str(&pk, "Gofer.RootTree");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_nil(&pk);
	ssize_t n = send(sock, b.data, b.size, MSG_NOSIGNAL | MSG_DONTWAIT);
	int e = errno;
	size_t want = b.size;
	msgpack_sbuffer_destroy(&b);
	if (n != (ssize_t)want) {
		cv_errf(err, n < 0 ? e : EIO, "asking the container's gofer for its root");
		return NULL;
	}
	struct gofer_req *r = calloc(1, sizeof(*r));
	if (!r) {
		cv_errf(err, ENOMEM, "asking the container's gofer for its root");
		return NULL;
	}
	r->sock = sock;
	r->done = done;
	r->data = data;
	ev_io_init(&r->w, on_reply, sock, EV_READ);
	ev_io_start(core_loop(), &r->w);
	ev_timer_init(&r->t, on_timeout, GOFER_REPLY_TIMEOUT_S, 0);
	ev_timer_start(core_loop(), &r->t);
	return r;
}

static void finish(struct gofer_req *r, int *fds, size_t nfds, const struct cv_error *err)
{
	ev_io_stop(core_loop(), &r->w);
	ev_timer_stop(core_loop(), &r->t);
	gofer_root_fn done = r->done;
	void *data = r->data;
	free(r);
	done(data, fds, nfds, err);
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void on_reply(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gofer_req *r = container_of(w, struct gofer_req, w);
	struct cv_error err;
	cv_error_reset(&err);
	char buf[GOFER_REPLY_MAX];
	int fds[FD_MSG_MAX], nfds = 0;
	ssize_t n = fd_recvmsg(r->sock, buf, sizeof(buf), fds, FD_MSG_MAX, &nfds, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		cv_errf(&err, n < 0 ? errno : 0, "the container's gofer hung up before answering");
		finish(r, NULL, 0, &err);
		return;
	}
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	const msgpack_object *m = NULL;
	if (msgpack_unpack_next(&u, buf, (size_t)n, &off) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 4)
		m = u.data.via.array.ptr;
	if (!m || m[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || m[0].via.u64 != 1 ||
	    m[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || m[1].via.u64 != GOFER_MSGID)
		cv_errf(&err, 0, "the container's gofer sent something that is not its reply");
	else if (m[2].type == MSGPACK_OBJECT_STR)
		cv_errf(&err, 0, "the container's gofer: %.*s", (int)m[2].via.str.size,
			m[2].via.str.ptr);
	else if (nfds < 1)
		cv_errf(&err, 0, "the container's gofer sent no root");
	msgpack_unpacked_destroy(&u);
	if (cv_error_is_set(&err)) {
		close_all(fds, nfds > 0 ? nfds : 0);
		finish(r, NULL, 0, &err);
		return;
	}
	finish(r, fds, (size_t)nfds, NULL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gofer_req *r = container_of(w, struct gofer_req, t);
	struct cv_error err;
	cv_errf(&err, ETIMEDOUT, "the container's gofer did not answer within %.0f s",
		GOFER_REPLY_TIMEOUT_S);
	finish(r, NULL, 0, &err);
}

void gofer_root_cancel(struct gofer_req *r)
{
	ev_io_stop(core_loop(), &r->w);
	ev_timer_stop(core_loop(), &r->t);
	free(r);
}

/* ---- hang-up ---------------------------------------------------------- */

static void on_hangup(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct container *c = container_of(w, struct container, gofer_w);
	char b[64];
	ssize_t n = recv(c->gofer_fd, b, sizeof(b), MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return; /* nothing is expected after the reply: ignored */
	LOG(LL_WARN, "the gofer of container %s hung up: killing the container's processes", c->id);
	gofer_unwatch(c);
	if (c->init && c->init->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, c->init->pidfd, SIGKILL, NULL, 0);
	if (c->cg_made) {
		struct cv_error err;
		cv_error_reset(&err);
		if (cgroup_kill(&c->cg, &err) < 0)
			LOG(LL_WARN, "killing container %s: %s", c->id, err.msg);
	}
}

void gofer_watch(struct container *c, int sock)
{
	c->gofer_fd = sock;
	ev_io_init(&c->gofer_w, on_hangup, sock, EV_READ);
	ev_io_start(core_loop(), &c->gofer_w);
}

void gofer_unwatch(struct container *c)
{
	if (c->gofer_fd < 0)
		return;
	ev_io_stop(core_loop(), &c->gofer_w);
	close(c->gofer_fd);
	c->gofer_fd = -1;
}

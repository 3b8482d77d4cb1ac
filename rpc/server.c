/* MessagePack-RPC server: the listener, the connection limit and the
 * server's lifetime (rpc/server.h). Connections live in conn.c, calls in
 * call.c. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "rpc/rpc_internal.h"

void rpc_limits_default(struct rpc_limits *l)
{
	l->max_message = 16u * 1024 * 1024;
	l->max_depth = 32;
	l->max_inflight = 1024;
	l->max_conns = 0; /* derived from RLIMIT_NOFILE in rpc_server_new */
	l->max_fds_queued = 256;
	l->max_fds_total = 0; /* derived from RLIMIT_NOFILE in rpc_server_new */
	l->fd_reserve = 256;
	l->max_client_mem = 256u * 1024 * 1024;
}

static uint64_t nofile_soft(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

/* Every connection is an fd in boot's table: the limit follows
 * RLIMIT_NOFILE instead of a fixed count, so raising the limit is all a
 * host with many clients needs. Half of what fd_reserve and the server's
 * own fds leave goes to connections, the other half to the fds clients
 * send (fds_budget below), so neither can starve the other. Memory is
 * bounded separately, by max_client_mem. */
static unsigned conns_limit(const struct rpc_limits *l)
{
	if (l->max_conns)
		return l->max_conns;
	uint64_t soft = nofile_soft();
	uint64_t keep = 1 + RPC_FDS_OWN + (uint64_t)l->fd_reserve;
	uint64_t n = soft > keep ? (soft - keep) / 2 : 0;
	if (n > RPC_CONNS_CAP)
		n = RPC_CONNS_CAP;
	if (n < 16) {
		LOG(LL_WARN,
		    "rpc: RLIMIT_NOFILE %" PRIu64 " leaves room for only %" PRIu64
		    " connections; allowing 16",
		    soft, n);
		n = 16;
	}
	return (unsigned)n;
}

/* The all-connections budget of queued fds. Received fds sit in boot's fd
 * table, shared with everything else boot does: keep a slot for every
 * connection, the server's own fds and fd_reserve (spawning, pidfds,
 * pipes) free, so clients' queued fds alone can never cause EMFILE. */
static unsigned fds_budget(const struct rpc_limits *l)
{
	if (l->max_fds_total)
		return l->max_fds_total;
	uint64_t soft = nofile_soft();
	uint64_t keep = (uint64_t)l->max_conns + 1 + RPC_FDS_OWN + l->fd_reserve;
	uint64_t b = soft > keep ? soft - keep : 0;
	if (b > RPC_FDS_TOTAL_CAP)
		b = RPC_FDS_TOTAL_CAP;
	if (b < RPC_MAX_FILES)
		LOG(LL_WARN,
		    "rpc: RLIMIT_NOFILE %" PRIu64 " leaves room for only %" PRIu64
		    " queued fds from clients (a request may carry %d)",
		    soft, b, RPC_MAX_FILES);
	return (unsigned)b;
}

static int open_reserve_fd(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Over the connection limit: tell the client why, then hang up. The reply
 * is tiny and the socket is fresh, so one non-blocking send suffices. */
static void refuse_conn(struct rpc_server *s, int fd)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "too many connections (limit %u)", s->lim.max_conns);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	rpc_pack_error(&sb, -1, msg);
	ssize_t n;
	do {
		n = send(fd, sb.data, sb.size, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	msgpack_sbuffer_destroy(&sb);
	close(fd);
	LOG(LL_WARN, "rpc: refused a connection: %s", msg);
}

/* The table is full: close the least recently active idle connection (no
 * call in flight, nothing half-received, no reply unread), else the least
 * recently active one with no call in flight that is stalled in the
 * middle of a message or not reading its replies. Idle or
 * stalled clients cannot lock out everyone else (`cvisor state` included);
 * a connection waiting for a reply is never dropped. */
static bool make_room(struct rpc_server *s)
{
	for (int stalled = 0; stalled < 2; stalled++) {
		list_for_each(pos, &s->conns) {
			struct rpc_conn *c = container_of(pos, struct rpc_conn, link);
			if (!rpc_conn_evictable(c, stalled))
				continue;
			const char *state = "idle";
			if (stalled)
				state = c->scan.msg_bytes > 0 ? "stalled in a message"
							      : "not reading its replies";
			char why[128];
			snprintf(why, sizeof(why),
				 "connection closed: %s while the connection table was full (limit %u)",
				 state, s->lim.max_conns);
			rpc_conn_evict(c, why);
			return true;
		}
	}
	return false;
}

/* Out of fds: give the reserve back to the kernel, accept the pending
 * connection and close it at once (so the level-triggered watcher stops
 * firing), then take the reserve again. */
static void shed_on_emfile(struct rpc_server *s)
{
	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
	}
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0)
		refuse_conn(s, fd); /* tells the client why, then closes */
	s->reserve_fd = open_reserve_fd();
	LOG(LL_WARN, "rpc: out of file descriptors, dropped a new connection");
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rpc_server *s = container_of(w, struct rpc_server, accept_w);
	/* A bounded batch per event keeps the other watchers served. */
	for (int i = 0; i < 64 && s->listen_fd >= 0; i++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				shed_on_emfile(s);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				LOG(LL_WARN, "rpc: accept on the control socket failed: %s",
				    strerror(errno));
			return;
		}
		if (s->nconns >= s->lim.max_conns && !make_room(s)) {
			refuse_conn(s, fd);
			continue;
		}
		rpc_conn_new(s, fd); /* takes fd, closes it on failure */
	}
}

static void reap_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	struct rpc_server *s = container_of(w, struct rpc_server, reap_w);
	/* Destroying a connection runs cancel hooks, which may close more
	 * connections: take them one at a time from the head. */
	while (!list_empty(&s->dead)) {
		struct rpc_conn *c = container_of(list_first(&s->dead), struct rpc_conn, link);
		rpc_conn_destroy(c);
	}
	ev_idle_stop(loop, w);
}

struct rpc_server *rpc_server_new(struct ev_loop *loop, int listen_fd,
				  const struct rpc_method *methods, size_t nmethods,
				  const struct rpc_limits *limits, void *ctx, struct cv_error *err)
{
	struct rpc_server *s = calloc(1, sizeof(*s));
	if (!s) {
		close(listen_fd);
		cv_errf(err, ENOMEM, "allocating the RPC server");
		return NULL;
	}
	s->loop = loop;
	s->listen_fd = listen_fd;
	s->methods = methods;
	s->nmethods = nmethods;
	if (limits)
		s->lim = *limits;
	else
		rpc_limits_default(&s->lim);
	/* msgpack-c cannot parse deeper messages at all. */
	if (s->lim.max_depth > RPC_SCAN_MAX_DEPTH)
		s->lim.max_depth = RPC_SCAN_MAX_DEPTH;
	s->lim.max_conns = conns_limit(&s->lim);
	if (s->lim.max_client_mem == 0)
		s->lim.max_client_mem = SIZE_MAX;
	s->fds_budget = fds_budget(&s->lim);
	s->fds_quota = s->lim.max_fds_queued < s->fds_budget ? s->lim.max_fds_queued : s->fds_budget;
	s->ctx = ctx;
	list_init(&s->conns);
	list_init(&s->dead);
	s->next_conn_id = 1;

	int fl = fcntl(listen_fd, F_GETFL);
	if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		cv_errf(err, errno, "making the control socket non-blocking");
		goto fail;
	}
	/* A burst of clients connecting at once waits in the backlog (the
	 * kernel caps it at net.core.somaxconn) instead of being refused with
	 * EAGAIN before boot could accept them. */
	if (listen(listen_fd, 4096) < 0) {
		cv_errf(err, errno, "listening on the control socket");
		goto fail;
	}
	s->reserve_fd = open_reserve_fd();
	if (s->reserve_fd < 0) {
		cv_errf(err, errno, "opening /dev/null as the reserve fd");
		goto fail;
	}
	ev_io_init(&s->accept_w, accept_cb, listen_fd, EV_READ);
	ev_io_start(loop, &s->accept_w);
	ev_idle_init(&s->reap_w, reap_cb);
	/* Highest priority so that a busy loop still frees closed conns. */
	ev_set_priority(&s->reap_w, EV_MAXPRI);
	return s;
fail:
	close(listen_fd);
	free(s);
	return NULL;
}

void rpc_server_stop_listening(struct rpc_server *s)
{
	if (s->listen_fd < 0)
		return;
	ev_io_stop(s->loop, &s->accept_w);
	close(s->listen_fd);
	s->listen_fd = -1;
}

void rpc_server_free(struct rpc_server *s)
{
	if (!s)
		return;
	rpc_server_stop_listening(s);
	while (!list_empty(&s->conns)) {
		struct rpc_conn *c = container_of(list_first(&s->conns), struct rpc_conn, link);
		rpc_conn_close(c, "server shutting down");
	}
	while (!list_empty(&s->dead)) {
		struct rpc_conn *c = container_of(list_first(&s->dead), struct rpc_conn, link);
		rpc_conn_destroy(c);
	}
	ev_idle_stop(s->loop, &s->reap_w);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	free(s);
}

size_t rpc_server_pending_output(const struct rpc_server *s)
{
	size_t n = 0;
	list_for_each(pos, &s->conns)
		n += rpc_conn_pending(container_of(pos, struct rpc_conn, link));
	return n;
}

unsigned rpc_server_nconns(const struct rpc_server *s)
{
	return s->nconns;
}

const struct rpc_limits *rpc_server_limits(const struct rpc_server *s)
{
	return &s->lim;
}

size_t rpc_server_client_mem(const struct rpc_server *s)
{
	return s->mem_used;
}

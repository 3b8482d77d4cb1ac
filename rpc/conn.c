/* One RPC connection: reading bytes and fds, unpacking and checking
 * messages, dispatching calls, and the ordered output queue. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "rpc/rpc_internal.h"

/* ---- fd queue --------------------------------------------------------- */

/* Every queued fd is counted twice: against its connection's quota and
 * against the server's budget. read_cb never lets the kernel install more
 * than both allow (see fd_allowance), so pushing cannot overflow. */
static void fdq_push(struct rpc_conn *c, int fd)
{
	if (c->nfdq >= c->s->fds_quota || c->s->nfds_queued >= c->s->fds_budget) {
		close(fd); /* cannot happen: the control buffer was sized to fit */
		return;
	}
	c->fdq[c->nfdq++] = fd;
	c->s->nfds_queued++;
}

static void fdq_drop_all(struct rpc_conn *c)
{
	for (size_t i = 0; i < c->nfdq; i++)
		close(c->fdq[i]);
	c->s->nfds_queued -= (unsigned)c->nfdq;
	c->nfdq = 0;
}

/* Moves the first n queued fds into out (caller owns them). */
static void fdq_take(struct rpc_conn *c, int *out, size_t n)
{
	assert(n <= c->nfdq);
	memcpy(out, c->fdq, n * sizeof(int));
	memmove(c->fdq, c->fdq + n, (c->nfdq - n) * sizeof(int));
	c->nfdq -= n;
	c->s->nfds_queued -= (unsigned)n;
}

/* ---- output ----------------------------------------------------------- */

/* Marks c as the most recently active connection (the eviction order). */
static void conn_touch(struct rpc_conn *c)
{
	if (c->closing)
		return;
	list_del(&c->link);
	list_add_tail(&c->s->conns, &c->link);
}

size_t rpc_conn_pending(const struct rpc_conn *c)
{
	return buf_pending(&c->out);
}

/* Real bytes, not counts: allocated capacities (an input buffer grown for
 * a large message counts whole until shrink_input gives it back). */
void rpc_conn_account(struct rpc_conn *c)
{
	struct rpc_server *s = c->s;
	size_t m = sizeof(*c) + (size_t)s->fds_quota * sizeof(int) + c->out.cap + c->calls_mem +
		   (size_t)c->scan.deep_cap * sizeof(uint64_t);
	if (c->up)
		m += sizeof(*c->up) + c->up->used + c->up->free;
	list_for_each(pos, &c->fdmarks) {
		struct rpc_fdmark *fm = container_of(pos, struct rpc_fdmark, link);
		m += sizeof(*fm) + fm->n * sizeof(int);
	}
	s->mem_used = s->mem_used - c->mem + m;
	c->mem = m;
}

bool rpc_server_over_budget(const struct rpc_server *s)
{
	return s->mem_used > s->lim.max_client_mem;
}

void rpc_budget_msg(const struct rpc_server *s, char *buf, size_t len)
{
	snprintf(buf, len, "sandbox memory budget for clients exhausted (%zu MiB)",
		 s->lim.max_client_mem >> 20);
}

/* Output above which reading stops, and below which it resumes. */
static size_t out_high(const struct rpc_conn *c)
{
	return rpc_server_over_budget(c->s) ? RPC_OUT_HIGH_OVER_BUDGET : RPC_OUT_HIGH;
}

static size_t out_low(const struct rpc_conn *c)
{
	return rpc_server_over_budget(c->s) ? RPC_OUT_LOW_OVER_BUDGET : RPC_OUT_LOW;
}

static void conn_resume_reading(struct rpc_conn *c)
{
	if (c->read_paused && !c->closing && !c->close_after_flush &&
	    buf_pending(&c->out) < out_low(c)) {
		c->read_paused = false;
		ev_io_start(c->s->loop, &c->rw);
	}
}

/* Sends what the kernel takes; fds ride on the first byte of their reply.
 * Returns after EAGAIN (arming EV_WRITE), when drained, or after the
 * fairness cap. */
static void conn_flush(struct rpc_conn *c)
{
	size_t budget = RPC_WRITE_CAP;
	while (!c->closing && buf_pending(&c->out) > 0) {
		if (budget == 0) {
			ev_io_start(c->s->loop, &c->ww);
			return;
		}
		size_t len = buf_pending(&c->out);
		if (len > budget)
			len = budget;
		struct rpc_fdmark *m = NULL;
		if (!list_empty(&c->fdmarks))
			m = container_of(list_first(&c->fdmarks), struct rpc_fdmark, link);
		union {
			char buf[CMSG_SPACE(sizeof(int) * RPC_MAX_FILES)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = (void *)buf_head(&c->out) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		bool with_fds = m && m->pos == c->out_written;
		if (with_fds) {
			/* Stop at the next marker so its fds keep their byte. */
			struct list_node *nx = m->link.next;
			if (nx != &c->fdmarks.n) {
				struct rpc_fdmark *m2 = container_of(nx, struct rpc_fdmark, link);
				if (m2->pos - c->out_written < len)
					len = (size_t)(m2->pos - c->out_written);
			}
			msg.msg_control = ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * m->n);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * m->n);
			memcpy(CMSG_DATA(cm), m->fds, sizeof(int) * m->n);
		} else if (m && m->pos - c->out_written < len) {
			len = (size_t)(m->pos - c->out_written);
		}
		iov.iov_len = len;
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(c->s->loop, &c->ww);
				return;
			}
			char why[128];
			snprintf(why, sizeof(why), "write failed: %s", strerror(errno));
			rpc_conn_close(c, why);
			return;
		}
		if (with_fds) {
			for (size_t i = 0; i < m->n; i++)
				close(m->fds[i]);
			list_del(&m->link);
			free(m);
		}
		buf_consume(&c->out, (size_t)n);
		c->out_written += (uint64_t)n;
		budget -= (size_t)n;
		if (n > 0)
			conn_touch(c);
	}
	/* Drained: an output buffer grown by a burst of replies goes back,
	 * so the budget and boot's memory see what is really queued. */
	if (!c->closing && buf_pending(&c->out) == 0 && c->out.cap > RPC_OUT_SHRINK_ABOVE)
		buf_free(&c->out);
	rpc_conn_account(c);
	if (c->closing)
		return;
	ev_io_stop(c->s->loop, &c->ww);
	if (c->close_after_flush) {
		rpc_conn_close(c, "closed after a protocol error");
		return;
	}
	conn_resume_reading(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(container_of(w, struct rpc_conn, ww));
}

void rpc_conn_send(struct rpc_conn *c, const char *data, size_t len, const int *fds,
		   size_t nfds)
{
	if (c->closing) {
		/* The peer is gone: the reply has nowhere to go. */
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	if (nfds > 0) {
		struct rpc_fdmark *m = malloc(sizeof(*m) + nfds * sizeof(int));
		if (!m) {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			rpc_conn_close(c, "out of memory queueing a reply");
			return;
		}
		m->pos = c->out_written + buf_pending(&c->out);
		m->n = nfds;
		memcpy(m->fds, fds, nfds * sizeof(int));
		list_add_tail(&c->fdmarks, &m->link);
	}
	if (buf_append(&c->out, data, len) < 0) {
		rpc_conn_close(c, "out of memory queueing a reply");
		return;
	}
	bool was_idle = !ev_is_active(&c->ww);
	if (was_idle)
		conn_flush(c);
	if (c->closing)
		return;
	rpc_conn_account(c);
	if (!c->read_paused && buf_pending(&c->out) > out_high(c)) {
		/* Backpressure: a client that does not read its replies stops
		 * being read until they drain. */
		c->read_paused = true;
		ev_io_stop(c->s->loop, &c->rw);
	}
}

/* Sends [1, msgid|nil, msg, nil]. */
static void send_error(struct rpc_conn *c, int64_t msgid, const char *msg)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	rpc_pack_error(&sb, msgid, msg);
	if (msgid >= 0)
		LOG(LL_DEBUG, "<- conn %d [reply] id=%" PRId64 " err: %s", c->id, msgid, msg);
	else
		LOG(LL_DEBUG, "<- conn %d [reply] id=nil err: %s", c->id, msg);
	rpc_conn_send(c, sb.data, sb.size, NULL, 0);
	msgpack_sbuffer_destroy(&sb);
}

/* The stream cannot be resynchronised: answer, stop reading, flush, close.
 * Queued fds can no longer be claimed: they go at once, not at teardown. */
static void fail_stream(struct rpc_conn *c, int64_t msgid, const char *msg)
{
	LOG(LL_INFO, "rpc: conn %d: %s; closing the connection", c->id, msg);
	c->close_after_flush = true;
	ev_io_stop(c->s->loop, &c->rw);
	fdq_drop_all(c);
	send_error(c, msgid, msg);
	if (!c->closing && buf_pending(&c->out) == 0)
		rpc_conn_close(c, msg);
}

void rpc_conn_evict(struct rpc_conn *c, const char *why)
{
	LOG(LL_WARN, "rpc: conn %d: %s", c->id, why);
	fdq_drop_all(c);
	/* The msgid of a half-received request, so its caller sees why. */
	int64_t id = c->scan.msg_bytes > 0 ? rpc_head_msgid(c->scan.head, c->scan.head_len) : -1;
	send_error(c, id, why); /* best effort: one non-blocking write */
	rpc_conn_close(c, why);
}

bool rpc_conn_evictable(const struct rpc_conn *c, bool stalled)
{
	if (c->closing || c->ninflight > 0)
		return false;
	bool busy = c->scan.msg_bytes > 0 || c->unscanned > 0 || c->nfdq > 0 ||
		    buf_pending(&c->out) > 0;
	return stalled || c->close_after_flush || !busy;
}

/* ---- message checks --------------------------------------------------- */

/* Depth of obj (a scalar is 1), or max+1 as soon as it goes deeper than
 * max. Recursion is bounded by max (and msgpack-c's own parser stack). */
static unsigned obj_depth(const msgpack_object *o, unsigned max)
{
	if (max == 0)
		return 1;
	unsigned d = 0;
	switch (o->type) {
	case MSGPACK_OBJECT_ARRAY:
		for (uint32_t i = 0; i < o->via.array.size && d < max; i++) {
			unsigned k = obj_depth(&o->via.array.ptr[i], max - 1);
			if (k > d)
				d = k;
		}
		return d + 1;
	case MSGPACK_OBJECT_MAP:
		for (uint32_t i = 0; i < o->via.map.size && d < max; i++) {
			unsigned k = obj_depth(&o->via.map.ptr[i].key, max - 1);
			if (k > d)
				d = k;
			k = obj_depth(&o->via.map.ptr[i].val, max - 1);
			if (k > d)
				d = k;
		}
		return d + 1;
	case MSGPACK_OBJECT_NIL:
	case MSGPACK_OBJECT_BOOLEAN:
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
	case MSGPACK_OBJECT_EXT:
		return 1;
	}
	return 1;
}

/* mpk_map_get less its duplicate-key rule (first wins here): kept local
 * because the rpc fuzz target links rpc/ without core/mpk.c
 * (test/fuzz/fuzz.mk SRC_rpc). */
static const msgpack_object *map_get_ci(const msgpack_object *map, const char *key)
{
	size_t klen = strlen(key);
	const msgpack_object *ci = NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != klen)
			continue;
		if (memcmp(k->via.str.ptr, key, klen) == 0)
			return &map->via.map.ptr[i].val;
		if (!ci && strncasecmp(k->via.str.ptr, key, klen) == 0)
			ci = &map->via.map.ptr[i].val;
	}
	return ci;
}

static const struct rpc_method *find_method(const struct rpc_server *s, const msgpack_object *m)
{
	for (size_t i = 0; i < s->nmethods; i++) {
		const char *name = s->methods[i].name;
		if (strlen(name) == m->via.str.size &&
		    memcmp(name, m->via.str.ptr, m->via.str.size) == 0)
			return &s->methods[i];
	}
	return NULL;
}

/* Handles one decoded message; takes ownership of zone. */
static void handle_message(struct rpc_conn *c, const msgpack_object *o, msgpack_zone *zone)
{
	const struct rpc_limits *lim = &c->s->lim;
	const char *e = NULL;
	int64_t id = -1;
	int files[RPC_MAX_FILES];
	size_t nfiles = 0;
	char msg[160];

	if (o->type != MSGPACK_OBJECT_ARRAY) {
		e = "invalid message: expected array";
		goto fail;
	}
	const msgpack_object *el = o->via.array.ptr;
	uint32_t n = o->via.array.size;
	if (n == 3 && el[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    el[0].via.u64 == RPC_MSG_NOTIFY) {
		LOG(LL_DEBUG, "rpc: conn %d: ignoring a notification", c->id);
		msgpack_zone_free(zone);
		return;
	}
	if (n != 4) {
		e = "invalid message: request must have 4 elements";
		goto fail;
	}
	if (el[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || el[0].via.u64 != RPC_MSG_REQUEST) {
		e = "invalid message: type must be 0 (request)";
		goto fail;
	}
	if (el[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || el[1].via.u64 > UINT32_MAX) {
		e = "invalid message: msgid must be an unsigned 32-bit integer";
		goto fail;
	}
	id = (int64_t)el[1].via.u64;
	if (el[2].type != MSGPACK_OBJECT_STR) {
		e = "invalid message: method must be a string";
		goto fail;
	}
	if (el[3].type != MSGPACK_OBJECT_ARRAY || el[3].via.array.size != 1) {
		e = "invalid message: params must be an array with one argument";
		goto fail;
	}
	if (obj_depth(o, lim->max_depth) > lim->max_depth) {
		snprintf(msg, sizeof(msg), "invalid message: nesting deeper than %u", lim->max_depth);
		e = msg;
		goto fail;
	}
	const msgpack_object *arg = &el[3].via.array.ptr[0];
	LOG(LL_DEBUG, "-> conn %d [request] id=%u %.*s", c->id, (unsigned)id,
	    (int)el[2].via.str.size, el[2].via.str.ptr);

	/* Files first, so the fd queue stays in step even when the call
	 * itself is refused below. */
	const msgpack_object *fo = arg->type == MSGPACK_OBJECT_MAP ? map_get_ci(arg, "Files") : NULL;
	if (fo && fo->type != MSGPACK_OBJECT_NIL) {
		if (fo->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
			fdq_drop_all(c);
			e = "Files: expected non-negative integer";
			goto fail;
		}
		if (fo->via.u64 > RPC_MAX_FILES) {
			fdq_drop_all(c);
			e = "too many files";
			goto fail;
		}
		nfiles = (size_t)fo->via.u64;
		if (nfiles > c->nfdq) {
			snprintf(msg, sizeof(msg), "request declares %zu files but %zu arrived", nfiles,
				 c->nfdq);
			fdq_drop_all(c);
			nfiles = 0;
			e = msg;
			goto fail;
		}
		fdq_take(c, files, nfiles);
	}

	const struct rpc_method *m = find_method(c->s, &el[2]);
	if (!m) {
		e = "unknown method";
		goto fail;
	}
	if (c->ninflight >= lim->max_inflight) {
		snprintf(msg, sizeof(msg), "too many calls in flight (limit %u)", lim->max_inflight);
		e = msg;
		goto fail;
	}
	/* The request was read whole, so the stream stays in sync: refuse
	 * the call, keep the connection (Redis's maxmemory-clients refuses
	 * the same way). The input buffer holding it counts already. */
	rpc_conn_account(c);
	if (rpc_server_over_budget(c->s)) {
		rpc_budget_msg(c->s, msg, sizeof(msg));
		e = msg;
		goto fail;
	}
	struct rpc_call *call = rpc_call_new(c, (uint64_t)id, m->name, zone, files, nfiles);
	if (!call) {
		e = "out of memory creating the call";
		goto fail;
	}
	/* The call owns zone and files now; it may be answered (and freed)
	 * before fn returns, which clears c->dispatching. */
	call->method_idx = (uint32_t)(m - c->s->methods);
	if (rpc_observer)
		call->t0_ns = core_now_ns();
	c->dispatching = call;
	m->fn(call, arg);
	if (c->dispatching) {
		/* Parked: it keeps only what the handler copied, never the
		 * request's bytes (up to max_message) or its unused fds. */
		rpc_call_release_request(c->dispatching);
		c->dispatching = NULL;
	}
	return;
fail:
	for (size_t i = 0; i < nfiles; i++)
		close(files[i]);
	msgpack_zone_free(zone);
	send_error(c, id, e);
}

/* ---- input ------------------------------------------------------------ */

/* msgid of a request from the first bytes of its encoding, or -1:
 * array header, positive int 0, then an unsigned integer. */
int64_t rpc_head_msgid(const unsigned char *p, size_t len)
{
	size_t i = 0;
	if (len < 1)
		return -1;
	if ((p[0] & 0xf0) == 0x90)
		i = 1;
	else if (p[0] == 0xdc)
		i = 3;
	else if (p[0] == 0xdd)
		i = 5;
	else
		return -1;
	if (i >= len || p[i] != 0x00)
		return -1;
	i++;
	if (i >= len)
		return -1;
	unsigned char t = p[i++];
	uint64_t v;
	size_t w;
	if (t <= 0x7f)
		return t;
	switch (t) {
	case 0xcc: case 0xd0: w = 1; break;
	case 0xcd: case 0xd1: w = 2; break;
	case 0xce: case 0xd2: w = 4; break;
	case 0xcf: case 0xd3: w = 8; break;
	default: return -1;
	}
	if (i + w > len)
		return -1;
	v = 0;
	for (size_t k = 0; k < w; k++)
		v = (v << 8) | p[i + k];
	if (t >= 0xd0 && (p[i] & 0x80)) /* negative signed value */
		return -1;
	return v <= UINT32_MAX ? (int64_t)v : -1;
}

static void fail_too_large(struct rpc_conn *c, int64_t msgid)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "message too large (limit %zu bytes)", c->s->lim.max_message);
	fail_stream(c, msgid, msg);
}

/* Frames the bytes received so far and handles every complete message.
 * msgpack-c only sees a message once the framer has found its end (see
 * scan.c for why). */
static void process_input(struct rpc_conn *c)
{
	size_t max = c->s->lim.max_message;
	while (!c->closing && !c->close_after_flush) {
		const unsigned char *p =
			(const unsigned char *)c->up->buffer + c->up->used - c->unscanned;
		size_t used = 0;
		enum rpc_scan_result r = rpc_scan_feed(&c->scan, p, c->unscanned, &used);
		c->unscanned -= used;
		int64_t head_id = rpc_head_msgid(c->scan.head, c->scan.head_len);
		switch (r) {
		case RPC_SCAN_MORE:
			if (c->scan.msg_bytes > max)
				fail_too_large(c, head_id);
			return;
		case RPC_SCAN_BAD:
			fail_stream(c, -1, "invalid message: cannot parse msgpack");
			return;
		case RPC_SCAN_TOO_DEEP: {
			char msg[96];
			snprintf(msg, sizeof(msg), "invalid message: nesting deeper than %u",
				 c->s->lim.max_depth);
			fail_stream(c, head_id, msg);
			return;
		}
		case RPC_SCAN_DONE:
			break;
		}
		uint64_t size = c->scan.msg_bytes;
		bool too_deep = c->scan.too_deep;
		rpc_scan_reset(&c->scan);
		if (size > max) {
			fail_too_large(c, head_id);
			return;
		}
		if (too_deep && c->up->parsed == 0) {
			/* msgpack-c cannot parse it, but the framer knows where it
			 * ends: skip its bytes unparsed, answer, keep the stream. */
			char msg[96];
			snprintf(msg, sizeof(msg), "invalid message: nesting deeper than %u",
				 c->s->lim.max_depth);
			c->up->off += (size_t)size;
			send_error(c, head_id, msg);
			continue;
		}
		size_t off0 = c->up->off, parsed0 = c->up->parsed;
		msgpack_unpacked res;
		msgpack_unpacked_init(&res);
		msgpack_unpack_return ur = msgpack_unpacker_next(c->up, &res);
		if (ur != MSGPACK_UNPACK_SUCCESS || parsed0 + (c->up->off - off0) != size) {
			/* msgpack-c disagrees with the framer: the stream is lost. */
			msgpack_unpacked_destroy(&res);
			fail_stream(c, -1, "invalid message: cannot parse msgpack");
			return;
		}
		/* msgpack-c hands out no zone when the object needed no
		 * allocation (a lone scalar); the call always gets one. */
		msgpack_zone *zone = msgpack_unpacked_release_zone(&res);
		if (!zone)
			zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
		if (!zone) {
			fail_stream(c, -1, "out of memory decoding a message");
			return;
		}
		handle_message(c, &res.data, zone);
	}
}

/* How many fds the next recvmsg may install: what is left of c's quota
 * and of the server's budget. When the budget is short, connections that
 * hold more queued fds than c (half-sent messages hoarding fds) are
 * evicted first, largest first: a connection is never starved by others'
 * queues, and one with few queued fds is never evicted for one with more.
 * *why_short says which limit binds, for the error when fds were cut. */
static size_t fd_allowance(struct rpc_conn *c, char *why_short, size_t why_len)
{
	struct rpc_server *s = c->s;
	size_t want = s->fds_quota > c->nfdq ? s->fds_quota - c->nfdq : 0;
	if (want > RPC_RECV_MAX_FDS)
		want = RPC_RECV_MAX_FDS;
	while (s->fds_budget - s->nfds_queued < want) {
		struct rpc_conn *v = NULL;
		list_for_each(pos, &s->conns) {
			struct rpc_conn *o = container_of(pos, struct rpc_conn, link);
			if (o != c && o->nfdq > c->nfdq && (!v || o->nfdq > v->nfdq))
				v = o;
		}
		if (!v)
			break;
		char why[160];
		snprintf(why, sizeof(why),
			 "connection closed: it held %zu received fds while the sandbox's fd budget "
			 "(%u) was full",
			 v->nfdq, s->fds_budget);
		rpc_conn_evict(v, why);
	}
	size_t room = s->fds_budget - s->nfds_queued;
	if (room < want) {
		snprintf(why_short, why_len,
			 "too many file descriptors: the sandbox's budget of %u queued fds is full",
			 s->fds_budget);
		return room;
	}
	if (c->nfdq + want >= s->fds_quota)
		snprintf(why_short, why_len,
			 "too many file descriptors queued on this connection (limit %u)",
			 s->fds_quota);
	else
		snprintf(why_short, why_len,
			 "file descriptors dropped by the kernel (more than %d in one message, or "
			 "the sandbox is out of fds)",
			 RPC_RECV_MAX_FDS);
	return want;
}

/* An input buffer grown by a large message goes back once it is empty. */
static void shrink_input(struct rpc_conn *c)
{
	msgpack_unpacker *up = c->up;
	if (c->unscanned > 0 || up->used != up->off ||
	    up->used + up->free <= RPC_IN_SHRINK_ABOVE)
		return;
	msgpack_unpacker *n = msgpack_unpacker_new(RPC_READ_SMALL);
	if (!n)
		return; /* keep the big one: still correct */
	msgpack_unpacker_free(up);
	c->up = n;
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rpc_conn *c = container_of(w, struct rpc_conn, rw);
	/* Between messages a small read suffices; a message on its way in
	 * gets big reads (and the buffer grows to hold it). */
	bool partial = c->scan.msg_bytes > 0 || c->unscanned > 0;
	size_t cap0 = c->up->used + c->up->free;
	if (!msgpack_unpacker_reserve_buffer(c->up, partial ? RPC_READ_CHUNK : RPC_READ_SMALL)) {
		rpc_conn_close(c, "out of memory for the input buffer");
		return;
	}
	if (c->up->used + c->up->free > cap0) {
		rpc_conn_account(c);
		if (partial && rpc_server_over_budget(c->s)) {
			/* The message cannot be held and its bytes cannot be
			 * skipped without reading them: say why and close. */
			char why[96];
			rpc_budget_msg(c->s, why, sizeof(why));
			fail_stream(c, rpc_head_msgid(c->scan.head, c->scan.head_len), why);
			return;
		}
	}
	char why_short[160];
	size_t allow = fd_allowance(c, why_short, sizeof(why_short));
	union {
		char buf[CMSG_SPACE(sizeof(int) * RPC_RECV_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = msgpack_unpacker_buffer(c->up),
			     .iov_len = msgpack_unpacker_buffer_capacity(c->up) };
	/* The kernel installs at most as many fds as the control buffer
	 * holds and drops (never installs) the rest with MSG_CTRUNC: so fds
	 * over the quota never reach the fd table. CMSG_LEN, not
	 * CMSG_SPACE: the padding would let one more fd in. */
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (allow > 0) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_LEN(sizeof(int) * allow);
	}
	ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		char why[128];
		snprintf(why, sizeof(why), "read failed: %s", strerror(errno));
		rpc_conn_close(c, why);
		return;
	}
	for (struct cmsghdr *cm = mh.msg_controllen ? CMSG_FIRSTHDR(&mh) : NULL; cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			fdq_push(c, fd);
		}
	}
	if (n == 0) {
		rpc_conn_close(c, "closed by peer");
		return;
	}
	msgpack_unpacker_buffer_consumed(c->up, (size_t)n);
	conn_touch(c);
	if (mh.msg_flags & MSG_CTRUNC) {
		/* Some fds were dropped and nobody knows how many: the queue
		 * no longer lines up with the requests' Files. */
		fail_stream(c, -1, why_short);
		return;
	}
	c->unscanned += (size_t)n;
	process_input(c);
	if (c->closing || c->close_after_flush)
		return;
	/* fds that arrived with no request to claim them: once every
	 * complete message has taken its Files and no partial message is
	 * buffered (whose Files might still need them), nobody can claim
	 * the rest, so close them instead of letting them pile up. */
	if (c->scan.msg_bytes == 0)
		fdq_drop_all(c);
	shrink_input(c);
	rpc_conn_account(c);
}

/* ---- lifetime --------------------------------------------------------- */

struct rpc_conn *rpc_conn_new(struct rpc_server *s, int fd)
{
	struct rpc_conn *c = calloc(1, sizeof(*c));
	int *q = calloc(s->fds_quota ? s->fds_quota : 1, sizeof(int));
	msgpack_unpacker *up = msgpack_unpacker_new(RPC_READ_SMALL);
	if (!c || !q || !up) {
		LOG(LL_WARN, "rpc: out of memory accepting a connection");
		if (up)
			msgpack_unpacker_free(up);
		free(q);
		free(c);
		close(fd);
		return NULL;
	}
	c->up = up;
	c->s = s;
	c->fd = fd;
	c->id = s->next_conn_id++;
	if (s->next_conn_id <= 0)
		s->next_conn_id = 1;
	c->fdq = q;
	list_init(&c->calls);
	list_init(&c->fdmarks);
	buf_init(&c->out);
	ev_io_init(&c->rw, read_cb, fd, EV_READ);
	ev_io_init(&c->ww, write_cb, fd, EV_WRITE);
	ev_io_start(s->loop, &c->rw);
	list_add_tail(&s->conns, &c->link);
	s->nconns++;
	rpc_conn_account(c);
	LOG(LL_DEBUG, "rpc: conn %d accepted", c->id);
	return c;
}

void rpc_conn_close(struct rpc_conn *c, const char *why)
{
	if (c->closing)
		return;
	LOG(LL_DEBUG, "rpc: conn %d closing: %s", c->id, why);
	c->closing = true;
	ev_io_stop(c->s->loop, &c->rw);
	ev_io_stop(c->s->loop, &c->ww);
	/* Unclaimable now: give the fds back to the budget at once. */
	fdq_drop_all(c);
	list_del(&c->link);
	list_add_tail(&c->s->dead, &c->link);
	c->s->nconns--;
	ev_idle_start(c->s->loop, &c->s->reap_w);
}

void rpc_conn_destroy(struct rpc_conn *c)
{
	assert(c->closing);
	/* Cancel hooks may answer other calls of this connection (their
	 * replies are dropped) and so free them: pop from the head. */
	while (!list_empty(&c->calls)) {
		struct rpc_call *call = container_of(list_first(&c->calls), struct rpc_call, link);
		rpc_call_cancel(call);
	}
	list_del(&c->link);
	fdq_drop_all(c);
	free(c->fdq);
	while (!list_empty(&c->fdmarks)) {
		struct rpc_fdmark *m = container_of(list_first(&c->fdmarks), struct rpc_fdmark, link);
		for (size_t i = 0; i < m->n; i++)
			close(m->fds[i]);
		list_del(&m->link);
		free(m);
	}
	close(c->fd);
	rpc_scan_reset(&c->scan);
	msgpack_unpacker_free(c->up);
	buf_free(&c->out);
	c->s->mem_used -= c->mem;
	LOG(LL_DEBUG, "rpc: conn %d freed", c->id);
	free(c);
}

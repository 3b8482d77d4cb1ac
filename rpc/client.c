/* Blocking MessagePack-RPC client for the CLI (rpc/client.h). One call at
 * a time; replies for other msgids are skipped. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/fdsend.h"
#include "rpc/client.h"
#include "rpc/proto.h"

struct rpc_client {
	int fd; /* owned */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t next_id;
	msgpack_unpacker up;
	msgpack_unpacked last; /* the last reply; its zone holds *result */
	int timeout_ms;        /* per call, < 0 = none */
	const char *const *unbounded; /* methods exempt from timeout_ms */
	bool broken;           /* a call timed out: the stream is out of step */
};

/* A call's deadline on CLOCK_MONOTONIC; ms < 0 means none. */
struct deadline {
	bool set;
	struct timespec at;
};

static struct deadline deadline_in(int ms)
{
	struct deadline d = { .set = ms >= 0 };
	if (d.set) {
		clock_gettime(CLOCK_MONOTONIC, &d.at);
		d.at.tv_sec += ms / 1000;
		d.at.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (d.at.tv_nsec >= 1000000000L) {
			d.at.tv_sec++;
			d.at.tv_nsec -= 1000000000L;
		}
	}
	return d;
}

/* Milliseconds left for poll(): -1 without a deadline, 0 once passed. */
static int deadline_left(const struct deadline *d)
{
	if (!d->set)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(d->at.tv_sec - now.tv_sec) * 1000 +
		       (d->at.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Waits until fd is ready for events or the deadline passes: 0, or -1
 * with errno ETIMEDOUT (or poll's errno). */
static int wait_ready(int fd, short events, const struct deadline *d)
{
	for (;;) {
		int left = deadline_left(d);
		if (left == 0 && d->set) {
			/* One last non-blocking look: ready beats late. */
			struct pollfd p = { .fd = fd, .events = events };
			if (poll(&p, 1, 0) > 0)
				return 0;
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static struct rpc_client *connect_to(const char *socket_path, int timeout_ms,
				     struct cv_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		cv_errf(err, ENAMETOOLONG, "connecting to %s", socket_path);
		return NULL;
	}
	strcpy(sa.sun_path, socket_path);
	struct rpc_client *c = calloc(1, sizeof(*c));
	if (!c) {
		cv_errf(err, ENOMEM, "connecting to %s", socket_path);
		return NULL;
	}
	strcpy(c->path, socket_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		cv_errf(err, errno, "connecting to %s", socket_path);
		free(c);
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	if (timeout_ms >= 0) {
		/* A unix-socket connect waits for room in the listener's backlog
		 * for at most SO_SNDTIMEO (0 would mean forever), then fails
		 * with EAGAIN. Later sends poll with their own deadline. */
		int ms = timeout_ms > 0 ? timeout_ms : 1;
		struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	int r;
	do {
		r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EISCONN) {
		if (errno == EAGAIN && timeout_ms >= 0) {
			cv_errf(err, 0, "connecting to %s: the sandbox did not accept within %d ms",
				socket_path, timeout_ms);
			if (err)
				err->code = ETIMEDOUT;
		} else {
			cv_errf(err, errno, "connecting to %s", socket_path);
		}
		close(c->fd);
		free(c);
		return NULL;
	}
	if (!msgpack_unpacker_init(&c->up, RPC_READ_CHUNK)) {
		cv_errf(err, ENOMEM, "connecting to %s", socket_path);
		close(c->fd);
		free(c);
		return NULL;
	}
	msgpack_unpacked_init(&c->last);
	c->next_id = 1;
	return c;
}

struct rpc_client *rpc_client_connect(const char *socket_path, struct cv_error *err)
{
	return connect_to(socket_path, -1, err);
}

struct rpc_client *rpc_client_connect_timeout(const char *socket_path, int timeout_ms,
					      struct cv_error *err)
{
	return connect_to(socket_path, timeout_ms < 0 ? -1 : timeout_ms, err);
}

void rpc_client_set_timeout(struct rpc_client *c, int timeout_ms, const char *const *unbounded)
{
	c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	c->unbounded = unbounded;
}

static bool is_unbounded(const struct rpc_client *c, const char *method)
{
	for (const char *const *m = c->unbounded; m && *m; m++)
		if (strcmp(*m, method) == 0)
			return true;
	return false;
}

void rpc_client_close(struct rpc_client *c)
{
	if (!c)
		return;
	msgpack_unpacked_destroy(&c->last);
	msgpack_unpacker_destroy(&c->up);
	close(c->fd);
	free(c);
}

/* The message says what timed out; the code tells callers it was time. */
static int timed_out(struct rpc_client *c, const char *method, struct cv_error *err)
{
	c->broken = true;
	cv_errf(err, 0, "the sandbox at %s did not answer %s within %d ms", c->path, method,
		c->timeout_ms);
	if (err)
		err->code = ETIMEDOUT;
	return -1;
}

/* Sends all of data; fds go with the first sendmsg. */
static int send_all(struct rpc_client *c, const char *method, const char *data, size_t len,
		    const int *fds, size_t nfds, const struct deadline *dl, struct cv_error *err)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = fd_sendmsg(c->fd, data + off, len - off, fds, nfds, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN && wait_ready(c->fd, POLLOUT, dl) == 0)
				continue;
			if (errno == ETIMEDOUT)
				return timed_out(c, method, err);
			return cv_errf(err, errno, "sending %s to the sandbox at %s", method, c->path);
		}
		nfds = 0; /* the kernel took them with the first bytes */
		off += (size_t)n;
	}
	return 0;
}

static void close_fds(int *fds, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		close(fds[i]);
	*n = 0;
}

/* Reads until the reply with msgid arrives; stores it in c->last. */
static int recv_reply(struct rpc_client *c, const char *method, uint32_t msgid, int *fds_out,
		      size_t *nfds, size_t max_fds_out, const struct deadline *dl,
		      struct cv_error *err)
{
	for (;;) {
		msgpack_unpacked_destroy(&c->last);
		msgpack_unpacked_init(&c->last);
		msgpack_unpack_return r = msgpack_unpacker_next(&c->up, &c->last);
		if (r == MSGPACK_UNPACK_SUCCESS) {
			const msgpack_object *o = &c->last.data;
			if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
			    o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
			    o->via.array.ptr[0].via.u64 != RPC_MSG_RESPONSE)
				return cv_errf(err, 0, "malformed reply from the sandbox to %s",
					       method);
			const msgpack_object *id = &o->via.array.ptr[1];
			if (id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && id->via.u64 == msgid)
				return 0;
			if (id->type == MSGPACK_OBJECT_NIL &&
			    o->via.array.ptr[2].type == MSGPACK_OBJECT_STR)
				return 0; /* a connection-level error (limit, parse) */
			continue;     /* someone else's reply */
		}
		if (r != MSGPACK_UNPACK_CONTINUE)
			return cv_errf(err, 0, "malformed reply from the sandbox to %s", method);
		if (msgpack_unpacker_message_size(&c->up) > 256u * 1024 * 1024)
			return cv_errf(err, 0, "reply from the sandbox to %s is too large", method);
		if (!msgpack_unpacker_reserve_buffer(&c->up, RPC_READ_CHUNK))
			return cv_errf(err, ENOMEM, "reading the reply to %s", method);
		if (wait_ready(c->fd, POLLIN, dl) < 0) {
			if (errno == ETIMEDOUT)
				return timed_out(c, method, err);
			return cv_errf(err, errno, "reading the reply to %s", method);
		}
		/* fds beyond the caller's room are closed: nowhere to put them. */
		size_t room = fds_out && *nfds < max_fds_out ? max_fds_out - *nfds : 0;
		int got_fds;
		ssize_t n = fd_recvmsg(c->fd, msgpack_unpacker_buffer(&c->up),
				       msgpack_unpacker_buffer_capacity(&c->up),
				       fds_out ? fds_out + *nfds : NULL, room, &got_fds, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN)
				continue;
			return cv_errf(err, errno, "reading the reply to %s", method);
		}
		if (got_fds > 0)
			*nfds += (size_t)got_fds;
		if (n == 0) {
			cv_errf(err, 0, "connection closed by the sandbox before replying to %s",
				method);
			if (err)
				err->code = ECONNRESET; /* callers tell a hang-up from a refusal */
			return -1;
		}
		msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
	}
}

int rpc_client_call(struct rpc_client *c, const char *method, const msgpack_sbuffer *arg,
		    const int *fds, size_t nfds, const msgpack_object **result,
		    int *fds_out, size_t *nfds_out, size_t max_fds_out, struct cv_error *err)
{
	size_t got = 0;
	if (nfds_out)
		*nfds_out = 0;
	if (result)
		*result = NULL;
	if (nfds > RPC_MAX_FILES)
		return cv_errf(err, 0, "too many files");
	if (c->broken) {
		cv_errf(err, 0, "not sending %s: the sandbox at %s stopped answering", method,
			c->path);
		if (err)
			err->code = ETIMEDOUT;
		return -1;
	}
	struct deadline dl = deadline_in(is_unbounded(c, method) ? -1 : c->timeout_ms);
	uint32_t id = c->next_id++;

	/* [0, id, method, [arg]]: a msgpack array is its header followed by
	 * its elements, so the caller's packed arg is appended as is. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, RPC_MSG_REQUEST);
	msgpack_pack_uint32(&pk, id);
	size_t mlen = strlen(method);
	msgpack_pack_str(&pk, mlen);
	msgpack_pack_str_body(&pk, method, mlen);
	msgpack_pack_array(&pk, 1);
	if (arg && arg->size > 0)
		msgpack_sbuffer_write(&sb, arg->data, arg->size);
	else
		msgpack_pack_nil(&pk);
	int r = send_all(c, method, sb.data, sb.size, fds, nfds, &dl, err);
	msgpack_sbuffer_destroy(&sb);
	if (r < 0)
		return r;

	if (recv_reply(c, method, id, fds_out, &got, max_fds_out, &dl, err) < 0) {
		close_fds(fds_out, &got);
		return -1;
	}
	const msgpack_object *el = c->last.data.via.array.ptr;
	if (el[2].type != MSGPACK_OBJECT_NIL) {
		close_fds(fds_out, &got);
		if (el[2].type == MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "%.*s", (int)el[2].via.str.size, el[2].via.str.ptr);
		return cv_errf(err, 0, "malformed error in the sandbox's reply to %s", method);
	}
	if (result)
		*result = &el[3];
	if (nfds_out)
		*nfds_out = got;
	else
		close_fds(fds_out, &got);
	return 0;
}

int rpc_client_call_str(struct rpc_client *c, const char *method, const char *s,
			const msgpack_object **result, struct cv_error *err)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	size_t n = strlen(s);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
	int r = rpc_client_call(c, method, &sb, NULL, 0, result, NULL, NULL, 0, err);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

int rpc_client_call_nil(struct rpc_client *c, const char *method, const msgpack_object **result,
			struct cv_error *err)
{
	return rpc_client_call(c, method, NULL, NULL, 0, result, NULL, NULL, 0, err);
}

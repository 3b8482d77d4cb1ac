/* The call object: what a handler sees, its files, its cancellation, and
 * the replies that end it (rpc/server.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "rpc/rpc_internal.h"

rpc_observer_fn rpc_observer;

void rpc_set_observer(rpc_observer_fn fn)
{
	rpc_observer = fn;
}

void rpc_pack_error(msgpack_sbuffer *sb, int64_t msgid, const char *msg)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, RPC_MSG_RESPONSE);
	if (msgid >= 0)
		msgpack_pack_uint64(&pk, (uint64_t)msgid);
	else
		msgpack_pack_nil(&pk);
	size_t n = strlen(msg);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, msg, n);
	msgpack_pack_nil(&pk);
}

/* What the call holds: itself, its files array, the request's zone (at
 * least one chunk) and the result being packed. Kept in conn->calls_mem
 * so the server's client memory budget sees parked calls. */
static void call_account(struct rpc_call *call)
{
	size_t m = sizeof(*call) + call->nfiles * sizeof(int) + call->result.alloc;
	if (call->zone)
		m += sizeof(*call->zone) + call->zone->chunk_size;
	struct rpc_conn *c = call->conn;
	c->calls_mem = c->calls_mem - call->mem + m;
	call->mem = m;
	rpc_conn_account(c);
}

struct rpc_call *rpc_call_new(struct rpc_conn *c, uint64_t msgid, const char *method,
			      msgpack_zone *zone, int *files, size_t nfiles)
{
	assert(nfiles <= RPC_MAX_FILES);
	/* Room for the files the request declared, not for the most any
	 * request may declare: most calls carry none. */
	struct rpc_call *call = calloc(1, sizeof(*call) + nfiles * sizeof(int));
	if (!call)
		return NULL;
	call->conn = c;
	call->msgid = msgid;
	call->method = method;
	call->zone = zone; /* ownership moves to the call */
	memcpy(call->files, files, nfiles * sizeof(int)); /* and the fds */
	call->nfiles = nfiles;
	msgpack_sbuffer_init(&call->result);
	msgpack_packer_init(&call->pk, &call->result, msgpack_sbuffer_write);
	list_add_tail(&c->calls, &call->link);
	c->ninflight++;
	call_account(call);
	return call;
}

/* Ends the call: unlinks it and frees everything it still owns. */
static void call_free(struct rpc_call *call)
{
	struct rpc_conn *c = call->conn;
	list_del(&call->link);
	c->ninflight--;
	if (c->dispatching == call)
		c->dispatching = NULL;
	for (size_t i = 0; i < call->nfiles; i++)
		if (call->files[i] >= 0)
			close(call->files[i]);
	if (call->zone)
		msgpack_zone_free(call->zone);
	msgpack_sbuffer_destroy(&call->result);
	c->calls_mem -= call->mem;
	free(call);
	rpc_conn_account(c);
}

void rpc_call_release_request(struct rpc_call *call)
{
	/* msgpack-c's strings point into the connection's input buffer and
	 * the zone holds a reference to it: a parked call would otherwise
	 * keep a whole (up to max_message) buffer alive. */
	if (call->zone) {
		msgpack_zone_free(call->zone);
		call->zone = NULL;
	}
	for (size_t i = 0; i < call->nfiles; i++) {
		if (call->files[i] >= 0) {
			close(call->files[i]);
			call->files[i] = -1;
		}
	}
	call_account(call);
}

void rpc_call_cancel(struct rpc_call *call)
{
	LOG(LL_DEBUG, "rpc: conn %d: cancelling call id=%" PRIu64 " %s", call->conn->id,
	    call->msgid, call->method);
	/* Marked answered before the hook runs: a reply from inside the hook
	 * is a bug that the assert in finish() catches. */
	call->answered = true;
	if (call->cancel_fn)
		call->cancel_fn(call, call->cancel_data);
	call_free(call);
}

void *rpc_call_ctx(const struct rpc_call *call)
{
	return call->conn->s->ctx;
}

const char *rpc_call_method(const struct rpc_call *call)
{
	return call->method;
}

uint64_t rpc_call_msgid(const struct rpc_call *call)
{
	return call->msgid;
}

int rpc_call_conn_id(const struct rpc_call *call)
{
	return call->conn->id;
}

msgpack_zone *rpc_call_zone(struct rpc_call *call)
{
	/* Released (the call waits): a small fresh zone, never the request. */
	if (!call->zone) {
		call->zone = msgpack_zone_new(256);
		call_account(call);
	}
	return call->zone;
}

size_t rpc_call_nfiles(const struct rpc_call *call)
{
	return call->nfiles;
}

int rpc_call_file(const struct rpc_call *call, size_t i)
{
	return i < call->nfiles ? call->files[i] : -1;
}

int rpc_call_take_file(struct rpc_call *call, size_t i)
{
	if (i >= call->nfiles)
		return -1;
	int fd = call->files[i];
	call->files[i] = -1; /* the caller owns it now */
	return fd;
}

void rpc_call_set_cancel(struct rpc_call *call, void (*fn)(struct rpc_call *call, void *data),
			 void *data)
{
	call->cancel_fn = fn;
	call->cancel_data = data;
}

/* Sends [1, msgid, nil, <result bytes>] (or the error reply when errmsg is
 * set) and frees the call. fds pass to the connection. */
static void finish(struct rpc_call *call, const char *errmsg, const int *fds, size_t nfds)
{
	/* A call is answered once, and never after its connection was torn
	 * down (cancellation frees it first, and the handler must have
	 * dropped it in its cancel hook). */
	assert(call->conn && !call->answered);
	call->answered = true;
	struct rpc_conn *c = call->conn;
	if (rpc_observer)
		rpc_observer(call->method_idx, errmsg != NULL, core_now_ns() - call->t0_ns);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (errmsg) {
		rpc_pack_error(&sb, (int64_t)call->msgid, errmsg);
		LOG(LL_DEBUG, "<- conn %d [reply] id=%" PRIu64 " err: %s", c->id, call->msgid,
		    errmsg);
	} else {
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint8(&pk, RPC_MSG_RESPONSE);
		msgpack_pack_uint64(&pk, call->msgid);
		msgpack_pack_nil(&pk);
		if (call->result.size > 0)
			msgpack_sbuffer_write(&sb, call->result.data, call->result.size);
		else
			msgpack_pack_nil(&pk); /* nothing packed: the result is nil */
		LOG(LL_DEBUG, "<- conn %d [reply] id=%" PRIu64 " ok", c->id, call->msgid);
	}
	/* Free first so the connection's in-flight count is right if the
	 * write below closes it. */
	call_free(call);
	rpc_conn_send(c, sb.data, sb.size, fds, nfds);
	msgpack_sbuffer_destroy(&sb);
}

void rpc_reply_nil(struct rpc_call *call)
{
	msgpack_sbuffer_clear(&call->result);
	msgpack_pack_nil(&call->pk);
	finish(call, NULL, NULL, 0);
}

void rpc_reply_int(struct rpc_call *call, int64_t v)
{
	msgpack_sbuffer_clear(&call->result);
	msgpack_pack_int64(&call->pk, v);
	finish(call, NULL, NULL, 0);
}

void rpc_reply_uint(struct rpc_call *call, uint64_t v)
{
	msgpack_sbuffer_clear(&call->result);
	msgpack_pack_uint64(&call->pk, v);
	finish(call, NULL, NULL, 0);
}

void rpc_reply_str(struct rpc_call *call, const char *s)
{
	msgpack_sbuffer_clear(&call->result);
	if (s) {
		size_t n = strlen(s);
		msgpack_pack_str(&call->pk, n);
		msgpack_pack_str_body(&call->pk, s, n);
	} else {
		msgpack_pack_nil(&call->pk);
	}
	finish(call, NULL, NULL, 0);
}

msgpack_packer *rpc_result_packer(struct rpc_call *call)
{
	msgpack_sbuffer_clear(&call->result);
	return &call->pk;
}

void rpc_reply_packed(struct rpc_call *call)
{
	finish(call, NULL, NULL, 0);
}

void rpc_reply_packed_fds(struct rpc_call *call, const int *fds, size_t nfds)
{
	if (nfds > RPC_MAX_FILES) {
		/* The seed's server refuses such a reply the same way. */
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		finish(call, "too many files", NULL, 0);
		return;
	}
	finish(call, NULL, fds, nfds);
}

void rpc_fail(struct rpc_call *call, const char *fmt, ...)
{
	char msg[CV_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	finish(call, msg, NULL, 0);
}

void rpc_fail_err(struct rpc_call *call, const struct cv_error *err)
{
	finish(call, err->msg[0] ? err->msg : "internal error (no message)", NULL, 0);
}

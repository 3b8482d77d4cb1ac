#pragma once
/* MessagePack-RPC server on an AF_UNIX SOCK_STREAM listening socket
 * (docs/DESIGN.md, "The control protocol"). Knows nothing about
 * containers: it dispatches method names to handlers from a table and
 * answers calls, possibly out of order.
 *
 *   request  [0, msgid, method, [arg]]   response [1, msgid, error, result]
 *
 * A handler either answers at once (rpc_reply_* / rpc_fail*) or parks a
 * continuation and answers later. If the client disconnects first, the
 * call's cancel hook runs (the handler unparks and frees what it holds)
 * and the call is freed by the server. */
#include <ev.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

struct rpc_server;
struct rpc_call;

typedef void (*rpc_handler_fn)(struct rpc_call *call, const msgpack_object *arg);

struct rpc_method {
	const char *name; /* "containerManager.Wait" */
	rpc_handler_fn fn;
};

struct rpc_limits {
	size_t max_message;      /* bytes of one message (default 16 MiB) */
	unsigned max_depth;      /* nesting depth of one message (default 32) */
	unsigned max_inflight;   /* unanswered calls per connection (default 1024) */
	/* Connections per server. 0 (the default) derives it when the server
	 * starts from RLIMIT_NOFILE: half of what is left after fd_reserve and
	 * the server's own fds (the other half is for the fds clients send),
	 * at most 65536. When full, a new connection replaces the least
	 * recently active idle one, or is told "too many connections (limit
	 * N)" and closed. */
	unsigned max_conns;
	unsigned max_fds_queued; /* received fds not yet claimed, per connection (default 256) */
	/* Received fds not yet claimed, all connections together. 0 (the
	 * default) derives it when the server starts: RLIMIT_NOFILE minus a
	 * slot per connection and minus fd_reserve, at most 4096, so queued
	 * fds can never fill the fd table. */
	unsigned max_fds_total;
	unsigned fd_reserve;     /* fds kept free for the sandbox's own work (default 256) */
	/* Bytes all clients together may hold in the sandbox: input buffers,
	 * unsent output and calls (default 256 MiB). Past it, new requests are
	 * answered "sandbox memory budget for clients exhausted (N MiB)" (the
	 * connection stays), a connection whose half-received message needs a
	 * bigger buffer is told the same and closed, and clients that do not
	 * read their replies stop being read sooner. */
	size_t max_client_mem;
};

void rpc_limits_default(struct rpc_limits *l);

/* Takes ownership of listen_fd (bound; listen() is called here).
 * `ctx` is handed to handlers through rpc_call_ctx(). */
struct rpc_server *rpc_server_new(struct ev_loop *loop, int listen_fd,
				  const struct rpc_method *methods, size_t nmethods,
				  const struct rpc_limits *limits, void *ctx, struct cv_error *err);
/* Closes the listener and every connection (cancelling parked calls). */
void rpc_server_free(struct rpc_server *s);
/* Stops accepting; existing connections continue. */
void rpc_server_stop_listening(struct rpc_server *s);
/* Bytes still queued for output on all connections (to drain before exit). */
size_t rpc_server_pending_output(const struct rpc_server *s);
unsigned rpc_server_nconns(const struct rpc_server *s);
/* The effective limits (derived values filled in). */
const struct rpc_limits *rpc_server_limits(const struct rpc_server *s);
/* Bytes clients hold now (counted against max_client_mem). */
size_t rpc_server_client_mem(const struct rpc_server *s);

/* Observer of answered calls, for the sandbox's metrics (kernel/metrics.c):
 * the method's index in the server's table, whether the answer was an
 * error, and the time from dispatch to answer (ns). One per process, set
 * before serving; NULL (the default) costs nothing. Calls cancelled
 * because the client went away are not answered, so not observed. */
typedef void (*rpc_observer_fn)(size_t method, bool failed, uint64_t ns);
void rpc_set_observer(rpc_observer_fn fn);

/* Writes what each connection is doing (debug.Stacks): its id, calls in
 * flight (method, msgid), queued output and fds. Appends to a memstream. */
void rpc_server_dump(const struct rpc_server *s, FILE *out);

/* --- inside a handler ------------------------------------------------ */
void *rpc_call_ctx(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);
uint64_t rpc_call_msgid(const struct rpc_call *call);
int rpc_call_conn_id(const struct rpc_call *call);
/* Zone holding the decoded request. Use it for everything decoded from
 * the arg while the handler runs. When the handler returns without
 * answering (the call waits), the server frees the request: the arg, this
 * zone and every file the handler did not take, so a waiting call pins
 * none of the client's bytes or fds. A waiting call copies the few fields
 * it needs; calling this afterwards gives a new, empty zone (or NULL when
 * out of memory). */
msgpack_zone *rpc_call_zone(struct rpc_call *call);

/* Files received with the request ("Files": N in the arg map; the server
 * has already checked that N fds arrived). Positional. The server closes
 * every one the handler did not take when the handler returns (see
 * rpc_call_zone) or the call ends, whichever is first. */
size_t rpc_call_nfiles(const struct rpc_call *call);
int rpc_call_file(const struct rpc_call *call, size_t i); /* peek, -1 if taken */
int rpc_call_take_file(struct rpc_call *call, size_t i);  /* caller owns the fd now */

/* Cancel hook: runs if the client goes away before the call is answered;
 * after it returns the server frees the call, so the handler must drop
 * every pointer to it. */
void rpc_call_set_cancel(struct rpc_call *call, void (*fn)(struct rpc_call *call, void *data),
			 void *data);

/* --- answering (exactly one of these per call; the call is freed after) --- */
void rpc_reply_nil(struct rpc_call *call);
void rpc_reply_int(struct rpc_call *call, int64_t v);
void rpc_reply_uint(struct rpc_call *call, uint64_t v);
void rpc_reply_str(struct rpc_call *call, const char *s);
/* Pack exactly one msgpack object (the result) with the returned packer,
 * then call rpc_reply_packed(). */
msgpack_packer *rpc_result_packer(struct rpc_call *call);
void rpc_reply_packed(struct rpc_call *call);
/* Like rpc_reply_packed, and sends fds (ownership passes to the server,
 * which closes them after sending). The result map must say "Files": nfds. */
void rpc_reply_packed_fds(struct rpc_call *call, const int *fds, size_t nfds);
void rpc_fail(struct rpc_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rpc_fail_err(struct rpc_call *call, const struct cv_error *err);

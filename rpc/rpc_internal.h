#pragma once
/* Private to rpc/: the server, connection and call objects shared by
 * server.c (listener), conn.c (one connection's bytes and fds) and call.c
 * (the call object and replies). Nothing outside rpc/ includes this. */
#include <ev.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/list.h"
#include "rpc/proto.h"
#include "rpc/server.h"

/* ...and between messages, and a new connection's input buffer: an idle
 * connection (thousands may be open) holds this, not RPC_READ_CHUNK. */
#define RPC_READ_SMALL (4 * 1024)
/* Output backpressure: stop reading above HIGH, resume below LOW. */
#define RPC_OUT_HIGH (4u * 1024 * 1024)
#define RPC_OUT_LOW (1u * 1024 * 1024)
/* The same while the sandbox's client memory budget is exhausted: a client
 * sending requests it does not read the (error) replies of stops being
 * read much sooner, so error replies cannot pile up past the budget. */
#define RPC_OUT_HIGH_OVER_BUDGET (64u * 1024)
#define RPC_OUT_LOW_OVER_BUDGET (16u * 1024)
/* Bytes written per EV_WRITE event, so one greedy reader cannot starve
 * the others (Redis writeToClient's cap). */
#define RPC_WRITE_CAP (1u * 1024 * 1024)
/* Bytes of a message's head kept to find its msgid after an error. */
#define RPC_HEAD_MAX 16
/* Ceiling of the derived all-connections fd budget (rpc_limits.max_fds_total). */
#define RPC_FDS_TOTAL_CAP 4096
/* Ceiling of the derived connection limit (rpc_limits.max_conns). */
#define RPC_CONNS_CAP 65536
/* fds of the server's own beyond one per connection: listener, reserve,
 * the loop's epoll and signal fds, stdio, the log. */
#define RPC_FDS_OWN 16
/* An input buffer grown past this (by a large message) is given back once
 * no bytes are pending, so an idle connection holds RPC_READ_CHUNK, not
 * the size of the largest message it ever sent. */
#define RPC_IN_SHRINK_ABOVE (4u * RPC_READ_CHUNK)
/* An output buffer grown past this is freed once it has drained. */
#define RPC_OUT_SHRINK_ABOVE (64u * 1024)

/* Containers open at once in one message: msgpack-c's parser stack
 * (MSGPACK_EMBED_STACK_SIZE); the effective max_depth is capped to it. */
#define RPC_SCAN_MAX_DEPTH 32
/* Deeper messages are still framed (so the stream stays in sync and the
 * connection can be kept) up to this many open containers; the extra
 * levels live in a heap array freed with the message. */
#define RPC_SCAN_HARD_DEPTH 4096

/* Resumable framer (scan.c): finds message boundaries and records each
 * message's first bytes, size and depth without allocating. */
struct rpc_scan {
	uint64_t msg_bytes; /* bytes of the current message seen so far */
	uint64_t skip;      /* payload bytes still to skip */
	unsigned char hdr[9];
	unsigned hdr_len, hdr_need;
	unsigned depth;     /* open containers */
	uint64_t left[RPC_SCAN_MAX_DEPTH]; /* items left in each open container */
	uint64_t *deep;     /* levels beyond RPC_SCAN_MAX_DEPTH (malloc'd), or NULL */
	unsigned deep_cap;
	bool too_deep;      /* more than RPC_SCAN_MAX_DEPTH containers were open at once */
	unsigned char head[RPC_HEAD_MAX];  /* first bytes of the message */
	size_t head_len;
};

enum rpc_scan_result {
	RPC_SCAN_MORE,     /* all n bytes consumed, message incomplete */
	RPC_SCAN_DONE,     /* a message ends after *used bytes */
	RPC_SCAN_BAD,      /* not msgpack (byte 0xc1) */
	RPC_SCAN_TOO_DEEP, /* more than RPC_SCAN_HARD_DEPTH open containers (or no memory) */
};

/* Also frees the overflow stack: call it when a connection goes away. */
void rpc_scan_reset(struct rpc_scan *s);
enum rpc_scan_result rpc_scan_feed(struct rpc_scan *s, const unsigned char *p, size_t n,
				   size_t *used);
/* msgid of a request from its first bytes, or -1 (conn.c). */
int64_t rpc_head_msgid(const unsigned char *p, size_t len);

struct rpc_server {
	struct ev_loop *loop;
	int listen_fd;  /* owned; -1 once stopped */
	int reserve_fd; /* owned; /dev/null kept to survive EMFILE on accept */
	ev_io accept_w;
	ev_idle reap_w;              /* frees closed connections outside their callbacks */
	const struct rpc_method *methods; /* borrowed; must outlive the server */
	size_t nmethods;
	struct rpc_limits lim;
	void *ctx;
	struct list_head conns; /* live connections, least recently active first */
	struct list_head dead;  /* closed, waiting for reap_w */
	unsigned nconns;        /* live ones */
	unsigned fds_budget;    /* effective max_fds_total */
	unsigned fds_quota;     /* effective max_fds_queued (<= fds_budget) */
	unsigned nfds_queued;   /* received, unclaimed fds of all connections */
	/* Bytes held for clients: every connection's input buffer, unsent
	 * output and calls (see rpc_conn_account). */
	size_t mem_used;
	int next_conn_id;
};

/* fds to send with the output byte at absolute stream position `pos`. */
struct rpc_fdmark {
	struct list_node link;
	uint64_t pos;
	size_t n;
	int fds[]; /* owned until sent */
};

struct rpc_conn {
	struct rpc_server *s;
	struct list_node link; /* on s->conns or s->dead */
	int fd;                /* owned */
	int id;
	ev_io rw, ww;
	msgpack_unpacker *up; /* owned; replaced by a small one when shrunk */

	int *fdq; /* received fds not yet claimed, arrival order; owned */
	size_t nfdq;

	struct list_head calls; /* unanswered calls */
	unsigned ninflight;
	struct rpc_call *dispatching; /* the call whose handler runs, until it is answered */

	struct buf out;
	uint64_t out_written;      /* absolute count of bytes sent */
	struct list_head fdmarks;  /* struct rpc_fdmark, by pos */

	struct rpc_scan scan;
	size_t unscanned; /* bytes at the tail of the unpacker's buffer not yet framed */

	size_t calls_mem; /* bytes of its calls (sum of rpc_call.mem) */
	size_t mem;       /* what it counts in s->mem_used */

	bool closing;          /* on s->dead; no more I/O */
	bool close_after_flush; /* stream unusable: stop reading, flush, close */
	bool read_paused;      /* backpressure */
};

struct rpc_call {
	struct list_node link; /* on conn->calls */
	struct rpc_conn *conn;
	uint64_t msgid;
	const char *method;   /* the method table's name (static) */
	msgpack_zone *zone;   /* owned: the decoded request (NULL once released) */
	void (*cancel_fn)(struct rpc_call *call, void *data);
	void *cancel_data;
	msgpack_sbuffer result; /* rpc_result_packer's output */
	msgpack_packer pk;
	size_t mem;           /* bytes it holds, counted in conn->calls_mem */
	bool answered;
	uint32_t method_idx;  /* index in the server's method table (rpc_set_observer) */
	uint64_t t0_ns;       /* dispatch time, only while an observer is set */
	size_t nfiles;
	int files[];          /* nfiles of them (what the request declared); owned unless -1 */
};

/* conn.c */
struct rpc_conn *rpc_conn_new(struct rpc_server *s, int fd);
/* Marks the connection closed (stops its I/O) and schedules its teardown
 * from the server's idle hook; safe inside the connection's callbacks. */
void rpc_conn_close(struct rpc_conn *c, const char *why);
/* Tells the peer why (an error reply with a nil msgid) and closes c: the
 * server takes the slot or the fds it holds for someone else. */
void rpc_conn_evict(struct rpc_conn *c, const char *why);
/* Evictable to make room for a new connection: no call in flight, nothing
 * half-received, no fds queued (idle), or with `stalled` also a
 * connection holding a half-received message but no call. */
bool rpc_conn_evictable(const struct rpc_conn *c, bool stalled);
/* Cancels calls, closes fds and frees c (which must be marked closing).
 * Never call it from a callback of c. */
void rpc_conn_destroy(struct rpc_conn *c);
/* Appends an encoded reply (and fds to send with its first byte, whose
 * ownership passes to the connection) and tries to write it. */
void rpc_conn_send(struct rpc_conn *c, const char *data, size_t len, const int *fds,
		   size_t nfds);
size_t rpc_conn_pending(const struct rpc_conn *c);
/* Recounts what c holds (input buffer, unsent output, fd queue, calls)
 * into the server's mem_used. Cheap: called after every change. */
void rpc_conn_account(struct rpc_conn *c);
/* The client memory budget (rpc_limits.max_client_mem) is used up. */
bool rpc_server_over_budget(const struct rpc_server *s);
/* Its text, for replies: "sandbox memory budget for clients exhausted (N MiB)". */
void rpc_budget_msg(const struct rpc_server *s, char *buf, size_t len);

/* call.c */
struct rpc_call *rpc_call_new(struct rpc_conn *c, uint64_t msgid, const char *method,
			      msgpack_zone *zone, int *files, size_t nfiles);
/* The handler returned without answering: frees the request's zone (and
 * with it the input buffer it references) and closes the files the
 * handler did not take, so a waiting call holds only its own state. */
void rpc_call_release_request(struct rpc_call *call);
/* Runs the cancel hook and frees the call (connection going away). */
void rpc_call_cancel(struct rpc_call *call);
/* The observer set with rpc_set_observer, or NULL. */
extern rpc_observer_fn rpc_observer;
/* Packs [1, msgid, errmsg, nil]; msgid < 0 packs nil. */
void rpc_pack_error(msgpack_sbuffer *sb, int64_t msgid, const char *msg);

/* containerManager.PortForward (docs/API.md): a TCP connection to
 * 127.0.0.1:Port inside the container's network namespace, relayed to the
 * stream socket the client donated (netstack/relay.h).
 *
 * The socket is made in the container's namespace (setns there through
 * the init's pidfd and back: boot is single-threaded) and connects
 * without blocking; the call is answered only once the connect completed,
 * refused, or ran out of time, with its continuation parked on the
 * socket's writability, never a blocked loop. Streams are bounded. */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "netstack/netns.h"
#include "netstack/relay.h"

struct pf_args {
	char *cid;
	uint32_t port;
};

static const struct mpk_field pf_fields[] = {
	{ "ContainerID", MPK_STR, offsetof(struct pf_args, cid), MPK_NONE, MPK_NONE, MPK_REQUIRED,
	  NULL },
	{ "Port", MPK_U32, offsetof(struct pf_args, port), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
};
static const struct mpk_schema pf_schema = { "PortForwardOpts", sizeof(struct pf_args), pf_fields,
					     ARRAY_SIZE(pf_fields) };

/* One forward: connecting (call set), then relaying (relay set). */
struct pf {
	struct list_node link; /* streams */
	struct rpc_call *call; /* while connecting */
	int sock;              /* the container side, while connecting */
	int peer;              /* the donated socket, while connecting */
	uint16_t port;
	char *cid;             /* for messages (malloc'd) */
	ev_io conn_w;
	ev_timer timer_w;
	struct relay *relay;
};

static struct list_head streams = LIST_HEAD_INIT(streams);
static unsigned n_streams;

static void pf_free(struct pf *p)
{
	ev_io_stop(core_loop(), &p->conn_w);
	ev_timer_stop(core_loop(), &p->timer_w);
	if (p->sock >= 0)
		close(p->sock);
	if (p->peer >= 0)
		close(p->peer);
	relay_free(p->relay);
	list_del(&p->link);
	n_streams--;
	free(p->cid);
	free(p);
}

static void relay_ended(struct relay *r, void *data)
{
	struct pf *p = data;
	uint64_t out = 0, in = 0;
	relay_bytes(r, &out, &in);
	LOG(LL_DEBUG, "port forward to %s:%u ended (%llu bytes in, %llu out)", p->cid, p->port,
	    (unsigned long long)in, (unsigned long long)out);
	pf_free(p);
}

/* The connect completed: the relay takes both sockets, the call is answered. */
static void connected(struct pf *p)
{
	struct rpc_call *call = p->call;
	struct cv_error err;
	cv_error_reset(&err);
	p->call = NULL;
	ev_io_stop(core_loop(), &p->conn_w);
	ev_timer_stop(core_loop(), &p->timer_w);
	p->relay = relay_new(p->peer, p->sock, relay_ended, p, &err);
	p->peer = p->sock = -1; /* taken by relay_new, even on failure */
	if (!p->relay) {
		pf_free(p);
		rpc_fail_err(call, &err);
		return;
	}
	rpc_reply_nil(call);
}

static void failed(struct pf *p, int e, const char *why)
{
	struct rpc_call *call = p->call;
	char msg[256];
	snprintf(msg, sizeof(msg), "port forward to port %u of container \"%s\": %s", p->port,
		 p->cid, why ? why : strerror(e));
	pf_free(p);
	rpc_fail(call, "%s", msg);
}

static void on_connect(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pf *p = container_of(w, struct pf, conn_w);
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(p->sock, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e)
		failed(p, e, NULL);
	else
		connected(p);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	failed(container_of(w, struct pf, timer_w), ETIMEDOUT,
	       "no connection within " PF_CONNECT_TIMEOUT_TEXT);
}

static void pf_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct pf *p = data;
	p->call = NULL;
	pf_free(p);
}

/* The checks of the seed and ours, before any socket is made. */
static struct container *check(struct rpc_call *call, const struct pf_args *a,
			       struct cv_error *err)
{
	if (rpc_call_nfiles(call) != 1) {
		cv_errf(err, 0, "stream FD is required for port forward");
		return NULL;
	}
	if (a->port < 1 || a->port > 65535) {
		cv_errf(err, 0, "PortForwardOpts.Port: %u is not a TCP port (1-65535)", a->port);
		return NULL;
	}
	struct container *c = sandbox_find_container(rpc_call_ctx(call), a->cid);
	if (!c) {
		cv_errf(err, 0, "container \"%s\" not found", a->cid);
		return NULL;
	}
	if (!c->init || c->init->state == TASK_CREATED || c->init->state == TASK_STARTING) {
		cv_errf(err, 0, "container \"%s\" not started", a->cid);
		return NULL;
	}
	if (c->init->state == TASK_EXITED || c->init->pidfd < 0) {
		cv_errf(err, 0, "container \"%s\" is not running", a->cid);
		return NULL;
	}
	int type = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(rpc_call_file(call, 0), SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM) {
		cv_errf(err, 0, "PortForwardOpts.Files[0]: not a stream socket");
		return NULL;
	}
	if (n_streams >= PF_MAX_STREAMS) {
		cv_errf(err, 0, "too many port-forward streams (limit %d); close some first",
			PF_MAX_STREAMS);
		return NULL;
	}
	return c;
}

void cm_port_forward(struct rpc_call *call, const msgpack_object *arg)
{
	struct cv_error err;
	cv_error_reset(&err);
	struct pf_args a;
	if (mpk_decode(arg, &pf_schema, &a, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	struct container *c = check(call, &a, &err);
	if (!c) {
		rpc_fail_err(call, &err);
		return;
	}
	struct pf *p = calloc(1, sizeof(*p));
	if (!p) {
		rpc_fail(call, "out of memory starting a port forward");
		return;
	}
	p->port = (uint16_t)a.port;
	p->cid = strdup(a.cid);
	if (!p->cid) {
		free(p);
		rpc_fail(call, "out of memory starting a port forward");
		return;
	}
	p->sock = p->peer = -1;
	p->call = call;
	ev_io_init(&p->conn_w, on_connect, -1, EV_WRITE);
	ev_timer_init(&p->timer_w, on_timeout, PF_CONNECT_TIMEOUT_S, 0.);
	list_add_tail(&streams, &p->link);
	n_streams++;
	p->sock = netns_socket(c->init->pidfd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, &err);
	if (p->sock < 0) {
		char why[CV_ERROR_MAX];
		snprintf(why, sizeof(why), "%s", err.msg);
		failed(p, 0, why);
		return;
	}
	p->peer = rpc_call_take_file(call, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p->port),
				  .sin_addr = { htonl(INADDR_LOOPBACK) } };
	if (connect(p->sock, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		connected(p);
		return;
	}
	if (errno != EINPROGRESS) {
		failed(p, errno, NULL);
		return;
	}
	ev_io_set(&p->conn_w, p->sock, EV_WRITE);
	ev_io_start(core_loop(), &p->conn_w);
	ev_timer_start(core_loop(), &p->timer_w);
	rpc_call_set_cancel(call, pf_cancel, p);
}

unsigned port_forward_streams(void)
{
	return n_streams;
}

void port_forward_shutdown(void)
{
	while (!list_empty(&streams)) {
		struct pf *p = container_of(list_first(&streams), struct pf, link);
		if (p->call) /* the server cancels parked calls first; be safe anyway */
			rpc_fail(p->call, "the sandbox is ending");
		p->call = NULL;
		pf_free(p);
	}
}

void port_forward_describe(FILE *out)
{
	if (!n_streams)
		return;
	fprintf(out, "  port forwards: %u of %d\n", n_streams, PF_MAX_STREAMS);
	list_for_each(pos, &streams) {
		const struct pf *p = container_of(pos, struct pf, link);
		if (p->relay) {
			fprintf(out, "    to %s port %u: relaying\n", p->cid, p->port);
			relay_describe(p->relay, out, "      ", "client", "container");
		} else {
			fprintf(out, "    to %s port %u: connecting; watcher connect (io fd %d): %s, "
				     "timeout (timer %s): %s\n",
				p->cid, p->port, p->sock, ev_is_active(&p->conn_w) ? "active" : "stopped",
				PF_CONNECT_TIMEOUT_TEXT, ev_is_active(&p->timer_w) ? "active" : "stopped");
		}
	}
}

/* What the server's connections are doing, as text for debug.Stacks
 * (rpc/server.h). Read-only walk of the connection list: bounded by the
 * connection and in-flight limits. */
#include <inttypes.h>
#include <stdio.h>

#include "rpc/rpc_internal.h"

void rpc_server_dump(const struct rpc_server *s, FILE *out)
{
	fprintf(out, "rpc server: %u connections (limit %u), listening %s, %zu bytes held for clients\n",
		s->nconns, s->lim.max_conns, s->listen_fd >= 0 ? "yes" : "no", s->mem_used);
	fprintf(out, "  watcher accept (io fd %d): %s\n", s->listen_fd,
		ev_is_active(&s->accept_w) ? "active" : "stopped");
	list_for_each(pos, &s->conns) {
		const struct rpc_conn *c = container_of(pos, struct rpc_conn, link);
		fprintf(out,
			"  conn %d (fd %d): %u calls in flight, %zu bytes unsent, %zu fds queued, "
			"read %s, write %s%s\n",
			c->id, c->fd, c->ninflight, c->out.len - c->out.off, c->nfdq,
			ev_is_active(&c->rw) ? "active" : "stopped",
			ev_is_active(&c->ww) ? "active" : "stopped",
			c->read_paused ? ", paused (backpressure)" : "");
		list_for_each(cp, &c->calls) {
			const struct rpc_call *call = container_of(cp, struct rpc_call, link);
			fprintf(out, "    call id=%" PRIu64 " %s%s\n", call->msgid, call->method,
				call == c->dispatching ? " (running)" : " (waiting)");
		}
	}
}

#pragma once
/* Parking an RPC call on a task's wait queue until an event (exec
 * handshake, exit) answers it. The call holds a task reference; if the
 * client disconnects first, the parked continuation is cancelled and the
 * reference dropped. Nothing else: once the handler returns, the server
 * frees the request (arg, zone, untaken files), so a done callback must
 * work from the task alone, never from what was decoded from the arg. */
#include "kernel/model.h"
#include "rpc/server.h"

/* Runs from the loop when the wait ends; must answer the call. */
typedef void (*park_done_fn)(struct rpc_call *call, struct task *t, int err);

/* Returns 0, or -1 after answering the call with an allocation error. */
int park_call(struct rpc_call *call, struct task *t, struct waitq *q, park_done_fn done,
	      const char *what);

/* Decodes a lone string argument (a container ID); answers the call with
 * the error and returns -1 if it is not a string. */
int arg_string(struct rpc_call *call, const msgpack_object *arg, char **out);

/* Looks up the container named by a string argument; answers the call
 * with the error and returns NULL if the argument is bad or unknown. */
struct container *arg_container(struct rpc_call *call, const msgpack_object *arg, char **cid);

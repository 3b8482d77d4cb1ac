#pragma once
/* Blocking MessagePack-RPC client, used by the CLI (one call at a time). */
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct rpc_client;

/* Connects without a time bound; calls are unbounded until
 * rpc_client_set_timeout(). */
struct rpc_client *rpc_client_connect(const char *socket_path, struct cv_error *err);

/* Like rpc_client_connect, but the connect itself gives up after timeout_ms
 * (a server that stopped accepting fills its listen backlog, and connect
 * would then block forever) with ETIMEDOUT, and timeout_ms becomes the
 * client's call timeout (see rpc_client_set_timeout, no unbounded methods). */
struct rpc_client *rpc_client_connect_timeout(const char *socket_path, int timeout_ms,
					      struct cv_error *err);

/* Bounds every later call: the request must be sent and its reply read
 * within timeout_ms (< 0: no bound), else the call fails with ETIMEDOUT.
 * Calls to the methods named in `unbounded` (NULL-terminated; not copied,
 * must outlive the client) are not bounded: they answer when a process
 * exits. After a timeout the connection is out of step (a request may be
 * half sent) and every later call fails at once. */
void rpc_client_set_timeout(struct rpc_client *c, int timeout_ms, const char *const *unbounded);
void rpc_client_close(struct rpc_client *c);

/* The argument is packed by the caller into `arg` (exactly one msgpack
 * object; it becomes the single element of the params array). fds are sent
 * with SCM_RIGHTS on the sendmsg carrying the first bytes of the request;
 * the arg map must say "Files": nfds. On success `result` holds the reply's
 * result object (valid until the next call or rpc_client_close); received
 * fds (if any) are stored in fds_out (caller owns them). A remote error
 * fails with err holding the server's message verbatim. */
int rpc_client_call(struct rpc_client *c, const char *method, const msgpack_sbuffer *arg,
		    const int *fds, size_t nfds, const msgpack_object **result,
		    int *fds_out, size_t *nfds_out, size_t max_fds_out, struct cv_error *err);

/* Helper for the common one-string argument (a container ID). */
int rpc_client_call_str(struct rpc_client *c, const char *method, const char *s,
			const msgpack_object **result, struct cv_error *err);

/* Helper for nil arguments. */
int rpc_client_call_nil(struct rpc_client *c, const char *method, const msgpack_object **result,
			struct cv_error *err);

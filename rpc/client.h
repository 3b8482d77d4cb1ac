#pragma once
/* Blocking MessagePack-RPC client, used by the CLI (one call at a time). */
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct rpc_client;

struct rpc_client *rpc_client_connect(const char *socket_path, struct cv_error *err);
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

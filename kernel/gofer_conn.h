#pragma once
/* The sandbox's side of a container's gofer connection (cmd/gofer.c): a
 * SOCK_SEQPACKET socket, one msgpack-RPC message per packet. Asking for
 * the root is a continuation: the reply is awaited by an ev_io, bounded by
 * a timer, and the loop serves everyone else meanwhile. Once the container
 * runs, the same socket is watched for the gofer hanging up, which kills
 * the container's processes (as runsc does); the sandbox lives on. */
#include <stddef.h>

#include "core/err.h"

struct container;

/* done runs once from the loop: fds[0] is the detached root, then one
 * detached mount per bind mount of the spec, in its order (the callee owns
 * them all); nfds 0 with err set on failure. */
typedef void (*gofer_root_fn)(void *data, int *fds, size_t nfds, const struct cv_error *err);

struct gofer_req;
/* Sends Gofer.RootTree on sock (borrowed; must stay open until done or
 * cancel). NULL with err if the request cannot even be sent. */
struct gofer_req *gofer_root_start(int sock, gofer_root_fn done, void *data,
				   struct cv_error *err);
/* Stops a request whose done has not run; done will not run. */
void gofer_root_cancel(struct gofer_req *r);

/* Takes sock: watched for hang-up until container_free closes it. */
void gofer_watch(struct container *c, int sock);
/* Stops the watch and closes the socket (container_free). */
void gofer_unwatch(struct container *c);

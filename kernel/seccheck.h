#pragma once
/* Trace sessions (docs/DESIGN.md, "Trace sessions"; docs/API.md,
 * containerManager.CreateTraceSession): what the rest of the sandbox
 * calls. Events come from three places: the controller itself
 * (container/start), seccomp notifications of the armed syscalls
 * (kernel/seccheck_notify.c) and the proc connector
 * (kernel/seccheck_proc.c); kernel/seccheck_emit.c turns them into
 * messages for the session's sinks. */
#include <msgpack.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>

struct container;
struct sandbox;
struct task;

/* Takes fd, the seccomp listener of a process of c (SPAWN_LISTENER), and
 * answers its notifications from the core loop until nobody uses it. */
void seccheck_listener_add(struct container *c, int fd);
/* For boot's wait before its loop runs (sandbox.c): the listeners as
 * pollfds (at most max), and answering whatever is pending on them. */
size_t seccheck_listener_pollfds(struct pollfd *out, size_t max);
void seccheck_listener_drain_all(void);
/* Closes every listener of c, or of all (NULL). */
void seccheck_listener_close(const struct container *c);
/* c is being freed: its listeners are closed and the tasks remembered
 * under its id forgotten (they point at c->id). */
void seccheck_container_gone(const struct container *c);

/* StartRoot released c's init. */
void seccheck_container_start(struct container *c);

/* debug.Stacks' lines: each listener's and the connector's watcher, the
 * session and strace. Nothing when tracing was never used. */
void seccheck_describe(FILE *out);

/* Sandbox teardown: the session, its sinks, the connector, the listeners. */
void seccheck_shutdown(void);

/* Handlers (kernel/methods.c). */
struct rpc_call;
void cm_create_trace_session(struct rpc_call *call, const msgpack_object *arg);
void cm_delete_trace_session(struct rpc_call *call, const msgpack_object *arg);
void cm_list_trace_sessions(struct rpc_call *call, const msgpack_object *arg);

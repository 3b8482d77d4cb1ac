/* containerManager.Wait and WaitPID (docs/API.md): parked
 * continuations answered when the task exits; the status stays readable. */
#include <stddef.h>

#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/park.h"
#include "kernel/pidns.h"

struct wait_pid_args {
	int32_t pid;
	char *cid;
};

static const struct mpk_field wait_pid_fields[] = {
	{ "PID", MPK_I32, offsetof(struct wait_pid_args, pid), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
	{ "CID", MPK_STR, offsetof(struct wait_pid_args, cid), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
};
static const struct mpk_schema wait_pid_schema = {
	"WaitPIDArgs", sizeof(struct wait_pid_args), wait_pid_fields,
	ARRAY_SIZE(wait_pid_fields)
};

static void reply_status(struct rpc_call *call, struct task *t, int err)
{
	(void)err;
	if (t->status_unknown)
		rpc_fail(call, "%s", t->exit_err ? t->exit_err : "the exit status is unknown");
	else
		rpc_reply_uint(call, (uint32_t)t->status);
}

/* Answers now if t has exited, else parks the call on its exit. */
static void wait_task(struct rpc_call *call, struct task *t, const char *what)
{
	if (t->state == TASK_EXITED) {
		reply_status(call, t, 0);
		task_release_if_done(t);
		return;
	}
	park_call(call, t, &t->exited, reply_status, what);
}

void cm_wait(struct rpc_call *call, const msgpack_object *arg)
{
	char *cid;
	struct container *c = arg_container(call, arg, &cid);
	if (!c)
		return;
	struct task *init = c->init;
	if (!init || init->state == TASK_CREATED || (init->state == TASK_STARTING && !init->start_failed)) {
		/* Waiting for an unstarted container would hang a client that
		 * forgot to start it: runsc refuses too. */
		rpc_fail(call, "container \"%s\" not started", cid);
		return;
	}
	wait_task(call, init, "Wait: container init exit");
}

static void wait_pid_found(struct rpc_call *call, struct container *c, pid_t pid, pid_t host,
			   struct container *owner, int unused)
{
	(void)unused;
	if (host < 0) {
		if (task_was_forgotten(c, pid))
			rpc_fail(call,
				 "waiting for PID %d: the process exited and its status was forgotten: a "
				 "container keeps the exit status of only its %d most recently exited "
				 "processes nobody waited for",
				 pid, TASK_REGISTRY_KEEP_EXITED);
		else
			rpc_fail(call, "waiting for PID %d: no such process", pid);
		return;
	}
	if (owner != c) {
		rpc_fail(call, "process %d is part of a different container: \"%s\"", pid, owner->id);
		return;
	}
	/* A process the workload forked: its exit status goes to its own
	 * parent inside the container, so the sandbox cannot report it. */
	rpc_fail(call,
		 "waiting for PID %d: the process was not started by the sandbox, so its exit status "
		 "goes to its parent (only a container's init and ExecuteAsync processes can be waited for)",
		 pid);
}

void cm_wait_pid(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	struct wait_pid_args a;
	if (mpk_decode(arg, &wait_pid_schema, &a, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	if (a.pid <= 0) {
		rpc_fail(call, "PID (%d) must be positive", a.pid);
		return;
	}
	struct container *c = sandbox_find_container(sb, a.cid);
	if (!c) {
		rpc_fail(call, "waiting for PID %d: container \"%s\" not found", a.pid, a.cid);
		return;
	}
	/* The exec registry first; the first WaitPID consumes the entry. */
	struct task *t = container_find_task(c, a.pid, true);
	if (t) {
		t->in_registry = false;
		wait_task(call, t, "WaitPID: exec'd process exit");
		return;
	}
	struct task *init = c->init;
	if (!init || init->state == TASK_CREATED) {
		rpc_fail(call, "waiting for PID %d: container \"%s\" not started", a.pid, a.cid);
		return;
	}
	/* Then the container's PID namespace: its init, or a process it started
	 * whose registry entry was consumed but which still runs. */
	if (init->ns_pid == a.pid) {
		wait_task(call, init, "WaitPID: container init exit");
		return;
	}
	t = container_find_task(c, a.pid, false);
	if (t && t->state != TASK_EXITED) {
		wait_task(call, t, "WaitPID: process exit");
		return;
	}
	/* Then any process of the sandbox, found without blocking the loop,
	 * for the error that says why it cannot be waited for. */
	pidns_find_start(call, sb, c, a.pid, wait_pid_found, 0);
}

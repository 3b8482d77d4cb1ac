/* containerManager.StartRoot and ContainerRuntimeState. */
#include "core/log.h"
#include "core/mpk.h"
#include "kernel/ckpt_procstate.h"
#include "kernel/methods.h"
#include "kernel/seccheck.h"
#include "kernel/park.h"
#include "kernel/spawn.h"

static void start_done(struct rpc_call *call, struct task *t, int err)
{
	(void)err;
	if (t->start_failed)
		rpc_fail(call, "starting sandbox: %s", task_start_err(t));
	else
		rpc_reply_nil(call);
}

void cm_start_root(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	char *cid = NULL;
	/* As in runsc the cid is only logged, but it must be a string. */
	if (arg_string(call, arg, &cid) < 0)
		return;
	struct task *init = sb->root->init;
	if (sb->started || init->state != TASK_CREATED) {
		rpc_fail(call, "sandbox is not in created state, cannot start root container: state=%s",
			 init->state == TASK_EXITED ? "stopped" : "started");
		return;
	}
	LOG(LL_INFO, "starting root container %s (asked for %s)", sb->root->id, cid);
	/* Still waiting for the release: nothing of the container ran yet. */
	init->seccomp_base = ckpt_seccomp_base(init->host_pid, &sb->root->spec);
	if (spawn_release(init->ctl_fd, &err) < 0) {
		rpc_fail(call, "starting sandbox: %s", err.msg);
		return;
	}
	sb->started = true;
	seccheck_container_start(sb->root);
	init->state = TASK_STARTING;
	park_call(call, init, &init->started, start_done, "StartRoot: root init execve");
}

void cm_runtime_state(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	char *cid = NULL;
	if (arg_string(call, arg, &cid) < 0)
		return;
	/* An unknown cid reports Stopped (docs/API.md). */
	rpc_reply_int(call, container_runtime_state(sandbox_find_container(sb, cid)));
}

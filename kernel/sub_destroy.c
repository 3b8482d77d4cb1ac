/* containerManager.DestroySubcontainer: kill every process of the
 * container, wait until all are gone, then drop its registry entries and
 * cgroup (docs/API.md). The wait is a chain of loop events, never a sleep:
 * the cgroup kill runs on its 1 ms timer (cgroup_kill_start), then a 1 ms
 * timer checks that every task has exited and that no parked call still
 * holds one (their continuations run first), bounded at 5 s. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/methods.h"
#include "kernel/park.h"

#define GONE_TICK_S 0.001
#define GONE_TICKS_MAX 5000

struct destroy_job {
	struct rpc_call *call; /* NULL once the client left: the destroy goes on */
	struct sandbox *sb;
	char *cid;
	struct cgroup_op *op;
	ev_timer gone_w;
	int ticks;
};

static void job_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct destroy_job *j = data;
	j->call = NULL;
}

static void job_end(struct destroy_job *j, const char *fail)
{
	if (j->call) {
		rpc_call_set_cancel(j->call, NULL, NULL);
		if (fail)
			rpc_fail(j->call, "destroying container \"%s\": %s", j->cid, fail);
		else
			rpc_reply_nil(j->call);
	}
	free(j->cid);
	free(j);
}

static bool all_gone(const struct container *c)
{
	if (c->init && (c->init->state != TASK_EXITED || c->init->refs > 0))
		return false;
	list_for_each(n, &c->tasks) {
		const struct task *t = container_of(n, struct task, link);
		if (t->state != TASK_EXITED || t->refs > 0 || t->spawning)
			return false;
	}
	return true;
}

static void on_gone_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct destroy_job *j = container_of(w, struct destroy_job, gone_w);
	struct container *c = sandbox_find_container(j->sb, j->cid);
	if (!c) { /* the sandbox ended meanwhile */
		ev_timer_stop(loop, w);
		job_end(j, NULL);
		return;
	}
	if (!all_gone(c)) {
		if (++j->ticks < GONE_TICKS_MAX)
			return;
		/* A process that survives SIGKILL this long is stuck in the
		 * kernel; the entry stays so a later Destroy can try again. */
		ev_timer_stop(loop, w);
		c->destroying = false;
		job_end(j, "its processes did not exit within 5 s of SIGKILL");
		return;
	}
	ev_timer_stop(loop, w);
	LOG(LL_INFO, "subcontainer %s destroyed", c->id);
	container_free(c); /* tasks, spawner, cgroup nodes, spec */
	job_end(j, NULL);
}

static void killed(void *data, int rc, const struct cv_error *err)
{
	struct destroy_job *j = data;
	j->op = NULL;
	if (rc < 0)
		LOG(LL_WARN, "destroying %s: %s (waiting for its processes anyway)", j->cid,
		    err ? err->msg : "?");
	ev_timer_init(&j->gone_w, on_gone_tick, 0, GONE_TICK_S);
	ev_timer_start(core_loop(), &j->gone_w);
}

void cm_destroy_subcontainer(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	char *cid;
	struct container *c = arg_container(call, arg, &cid);
	if (!c)
		return;
	if (c == sb->root) {
		rpc_fail(call, "container \"%s\" is the root container: destroying it ends the sandbox "
			       "(cvisor delete)", cid);
		return;
	}
	if (c->destroying) {
		rpc_fail(call, "container \"%s\" is already being destroyed", cid);
		return;
	}
	struct destroy_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->cid = strdup(cid))) {
		free(j);
		rpc_fail(call, "destroying container \"%s\": out of memory", cid);
		return;
	}
	j->call = call;
	j->sb = sb;
	c->destroying = true;
	rpc_call_set_cancel(call, job_cancel, j);
	if (c->init && c->init->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, c->init->pidfd, SIGKILL, NULL, 0);
	if (c->cg_made) {
		struct cv_error err;
		cv_error_reset(&err);
		j->op = cgroup_kill_start(&c->cg, killed, j, &err);
		if (j->op)
			return;
		LOG(LL_WARN, "destroying %s: %s", cid, err.msg);
	}
	killed(j, 0, NULL);
}

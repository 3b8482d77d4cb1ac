/* containerManager.Checkpoint (docs/API.md): boot's side. The work runs in
 * a helper process forked here (kernel/ckpt_helper.c): ptrace waits and
 * large copies would block the reactor. Boot watches the helper's pidfd
 * with an ev_io and reads its one-line report from a pipe when it ends, so
 * the control socket stays live throughout. A successful checkpoint
 * without Resume ends the sandbox as runsc does: every process is killed
 * and the root container reports exit status 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "kernel/ckpt_helper.h"
#include "kernel/helper_proc.h"
#include "kernel/methods.h"
#include "kernel/model.h"

struct ckpt_job {
	ev_io pid_w; /* the helper's pidfd */
	struct helper_proc helper; /* its report: the error message, empty on success */
	bool resume;
	struct rpc_call *call; /* NULL once the client went away */
	struct sandbox *sb;
};

/* One checkpoint at a time per sandbox (a boot process serves one). */
static struct ckpt_job *active;

/* Set when a checkpoint without Resume succeeded: the root init's exit is
 * then reported as status 0 (kernel/task.c asks). */
static bool ended_by_checkpoint;

bool checkpoint_ended_sandbox(void)
{
	return ended_by_checkpoint;
}

static void job_free(struct ckpt_job *j)
{
	ev_io_stop(core_loop(), &j->pid_w);
	helper_proc_close(&j->helper);
	if (active == j)
		active = NULL;
	free(j);
}

static void job_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	/* The helper runs to its end (killing it mid-way would leave the
	 * tasks ptrace-stopped until it is reaped); nobody hears the answer. */
	((struct ckpt_job *)data)->call = NULL;
}

static void kill_sandbox(struct sandbox *sb)
{
	struct cv_error err = {0};
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		if (c->cg_made && cgroup_kill(&c->cg, &err) < 0)
			LOG(LL_WARN, "after checkpoint: %s", err.msg);
		if (c->init && c->init->state != TASK_EXITED)
			kill(c->init->host_pid, SIGKILL);
	}
}

static void on_helper_exit(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ckpt_job *j = container_of(w, struct ckpt_job, pid_w);
	char msg[CV_ERROR_MAX];
	int r = helper_proc_reap(&j->helper, 0, "checkpoint", msg, sizeof(msg));
	if (r > 0)
		return; /* not yet */
	bool ok = r == 0 && !msg[0];
	LOG(ok ? LL_INFO : LL_WARN, "checkpoint %s%s%s", ok ? "written" : "failed: ", ok ? "" : msg,
	    ok && !j->resume ? "; the sandbox ends" : "");
	if (ok && !j->resume) {
		ended_by_checkpoint = true;
		kill_sandbox(j->sb);
	}
	if (j->call) {
		if (ok)
			rpc_reply_nil(j->call);
		else
			rpc_fail(j->call, "checkpoint: %s", msg);
	}
	job_free(j);
}

/* In the forked helper: no loop state is touched. */
static int helper_main(void *arg, int report_fd, struct cv_error *err)
{
	(void)report_fd;
	return ckpt_helper_run(arg, err);
}

/* SaveOpts: {"Resume": bool, "Files": 1} with the state file. */
static int parse_opts(struct rpc_call *call, const msgpack_object *arg, bool *resume,
		      struct cv_error *err)
{
	if (!arg || arg->type != MSGPACK_OBJECT_MAP)
		return cv_errf(err, 0, "SaveOpts: expected map, got %s",
			       arg ? mpk_type_name(arg->type) : "nothing");
	const msgpack_object *r = mpk_map_get(arg, "Resume");
	*resume = false;
	if (r && r->type != MSGPACK_OBJECT_BOOLEAN && r->type != MSGPACK_OBJECT_NIL)
		return cv_errf(err, 0, "SaveOpts.Resume: expected bool, got %s",
			       mpk_type_name(r->type));
	if (r && r->type == MSGPACK_OBJECT_BOOLEAN)
		*resume = r->via.boolean;
	if (rpc_call_nfiles(call) != 1)
		return cv_errf(err, 0, "SaveOpts.Files: got %zu files, wanted 1 (the state file)",
			       rpc_call_nfiles(call));
	return 0;
}

static char *read_spec(const struct sandbox *sb)
{
	if (!sb->bundle)
		return NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/config.json", sb->bundle);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t k;
	while (m && (k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, k, m);
	if (m)
		fclose(m);
	fclose(f);
	return buf;
}

void cm_checkpoint(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err = {0};
	bool resume = false;
	if (parse_opts(call, arg, &resume, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	struct container *c = sb->root;
	if (active) {
		rpc_fail(call, "checkpoint: another checkpoint of this sandbox is running");
		return;
	}
	if (!c || !c->init || c->init->state != TASK_RUNNING || sb->ended) {
		rpc_fail(call, "checkpoint: the container is not running");
		return;
	}
	if (!c->cg_made || !cgroup_v2_root()) {
		rpc_fail(call, "checkpoint: the container has no v2 cgroup to freeze it with");
		return;
	}
	if (sb->pause_count > 0) {
		rpc_fail(call, "checkpoint: the sandbox is paused; resume it first");
		return;
	}
	size_t ncont = 0;
	list_for_each(n, &sb->containers) ncont++;
	if (ncont != 1) {
		rpc_fail(call, "checkpoint: the sandbox holds %zu containers; only one is supported yet",
			 ncont);
		return;
	}
	struct ckpt_job *j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_fail(call, "checkpoint: %s", strerror(ENOMEM));
		return;
	}
	char *spec = read_spec(sb);
	struct ckpt_job_args a = {.cg = &c->cg,
				  .container_id = c->id,
				  .spec_json = spec,
				  .init_pid = c->init->host_pid,
				  .image_fd = rpc_call_file(call, 0),
				  .resume = resume,
				  .seccomp_base = c->init->seccomp_base};
	int r = helper_proc_start(helper_main, &a, &j->helper, &err);
	free(spec);
	if (r < 0) {
		free(j);
		rpc_fail(call, "checkpoint: %s", err.msg);
		return;
	}
	j->resume = resume;
	j->call = call;
	j->sb = sb;
	active = j;
	ev_io_init(&j->pid_w, on_helper_exit, j->helper.pidfd, EV_READ);
	ev_io_start(core_loop(), &j->pid_w);
	rpc_call_set_cancel(call, job_cancel, j);
	LOG(LL_INFO, "checkpoint of %s started (helper pid %d%s)", c->id, j->helper.pid,
	    resume ? ", resume after" : "");
}

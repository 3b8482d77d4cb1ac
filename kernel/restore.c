/* containerManager.Restore (docs/API.md): boot's side. A created sandbox
 * (init waiting for its release) is restored from the state file: a
 * helper (kernel/restore_helper.c) reads and checks its records (a large
 * file's checksums are checked by a thread of the helper while it
 * rebuilds), seizes the init and says so on a pipe; boot then releases the init exactly as
 * StartRoot does, so the exec handshake, the task's state and its exit
 * are the ordinary ones (Wait, Signal, Processes work on the restored
 * container); the helper rebuilds the process at the exec and exits. The
 * call is answered when the helper ends. A file refused before the release
 * leaves the sandbox created with nothing run; a failure after it kills
 * the sandbox. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "kernel/ckpt_procstate.h"
#include "kernel/helper_proc.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/restore_helper.h"
#include "kernel/spawn.h"

struct restore_job {
	ev_io pid_w;    /* the helper's pidfd */
	ev_io report_w; /* its pipe: 'R' when the init may be released */
	struct helper_proc helper;
	bool released;
	struct rpc_call *call; /* NULL once the client went away */
	struct sandbox *sb;
};

static struct restore_job *active;

static void job_free(struct restore_job *j)
{
	ev_io_stop(core_loop(), &j->pid_w);
	ev_io_stop(core_loop(), &j->report_w);
	helper_proc_close(&j->helper);
	if (active == j)
		active = NULL;
	free(j);
}

static void job_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	((struct restore_job *)data)->call = NULL;
}

static void on_report(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct restore_job *j = container_of(w, struct restore_job, report_w);
	char b;
	ssize_t n = read(j->helper.report_fd, &b, 1);
	if (n < 0 && errno == EAGAIN)
		return;
	ev_io_stop(core_loop(), &j->report_w);
	if (n != 1 || b != 'R')
		return; /* the helper failed: its exit answers */
	struct task *init = j->sb->root->init;
	struct cv_error err = {0};
	if (init->state == TASK_CREATED)
		init->seccomp_base = ckpt_seccomp_base(init->host_pid, &j->sb->root->spec);
	if (init->state != TASK_CREATED || spawn_release(init->ctl_fd, &err) < 0) {
		LOG(LL_WARN, "restore: releasing the init: %s", err.msg[0] ? err.msg : "not created");
		return; /* the helper waits for an exec that never comes: its init's exit ends it */
	}
	j->sb->started = true;
	init->state = TASK_STARTING;
	j->released = true;
}

static void on_helper_exit(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct restore_job *j = container_of(w, struct restore_job, pid_w);
	char msg[CV_ERROR_MAX];
	/* The pipe holds the 'R' (if boot has not read it) then the error. */
	int r = helper_proc_reap(&j->helper, 'R', "restore", msg, sizeof(msg));
	if (r > 0)
		return;
	bool ok = r == 0;
	LOG(ok ? LL_INFO : LL_WARN, "restore %s%s", ok ? "done" : "failed: ", ok ? "" : msg);
	if (!ok && j->released) {
		struct task *init = j->sb->root->init;
		if (init->state != TASK_EXITED)
			kill(init->host_pid, SIGKILL);
	}
	if (j->call) {
		if (ok)
			rpc_reply_nil(j->call);
		else
			rpc_fail(j->call, "restore: %s", msg);
	}
	job_free(j);
}

/* In the forked helper: 'R' and then any error share the pipe. */
static int helper_main(void *arg, int report_fd, struct cv_error *err)
{
	struct restore_job_args *a = arg;
	a->report_fd = report_fd;
	return restore_helper_run(a, err);
}

/* RestoreOpts: {"SandboxID": str (optional), "Files": 1} with the state file. */
static int parse_opts(struct rpc_call *call, const msgpack_object *arg, struct cv_error *err)
{
	if (!arg || arg->type != MSGPACK_OBJECT_MAP)
		return cv_errf(err, 0, "RestoreOpts: expected map, got %s",
			       arg ? mpk_type_name(arg->type) : "nothing");
	const msgpack_object *s = mpk_map_get(arg, "SandboxID");
	if (s && s->type != MSGPACK_OBJECT_STR && s->type != MSGPACK_OBJECT_NIL)
		return cv_errf(err, 0, "RestoreOpts.SandboxID: expected string, got %s",
			       mpk_type_name(s->type));
	if (rpc_call_nfiles(call) != 1)
		return cv_errf(err, 0, "RestoreOpts.Files: got %zu files, wanted 1 (the state file)",
			       rpc_call_nfiles(call));
	struct stat st;
	int fd = rpc_call_file(call, 0);
	if (fstat(fd, &st) < 0)
		return cv_errf(err, errno, "RestoreOpts.Files[0]");
	if (S_ISREG(st.st_mode) && st.st_size == 0)
		return cv_errf(err, 0, "statefile cannot be empty");
	return 0;
}

void cm_restore(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err = {0};
	if (parse_opts(call, arg, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	struct task *init = sb->root ? sb->root->init : NULL;
	if (!init || sb->started || init->state != TASK_CREATED || active) {
		rpc_fail(call, "cannot restore a container in state=%s",
			 !init || init->state == TASK_EXITED ? "stopped"
			 : active			      ? "restoring"
							      : "running");
		return;
	}
	struct restore_job *j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_fail(call, "restore: %s", strerror(ENOMEM));
		return;
	}
	struct restore_job_args a = {.image_fd = rpc_call_file(call, 0),
				     .init_pid = init->host_pid,
				     .container_id = sb->root->id,
				     .report_fd = -1};
	if (helper_proc_start(helper_main, &a, &j->helper, &err) < 0) {
		free(j);
		rpc_fail(call, "restore: %s", err.msg);
		return;
	}
	j->call = call;
	j->sb = sb;
	active = j;
	ev_io_init(&j->pid_w, on_helper_exit, j->helper.pidfd, EV_READ);
	ev_io_start(core_loop(), &j->pid_w);
	ev_io_init(&j->report_w, on_report, j->helper.report_fd, EV_READ);
	ev_io_start(core_loop(), &j->report_w);
	rpc_call_set_cancel(call, job_cancel, j);
	LOG(LL_INFO, "restore of %s started (helper pid %d)", sb->root->id, j->helper.pid);
}

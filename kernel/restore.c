/* containerManager.Restore (docs/API.md): boot's side. A created sandbox
 * (init waiting for its release) is restored from the state file: a
 * helper (kernel/restore_helper.c) reads and checks all of it, seizes the
 * init and says so on a pipe; boot then releases the init exactly as
 * StartRoot does, so the exec handshake, the task's state and its exit
 * are the ordinary ones (Wait, Signal, Processes work on the restored
 * container); the helper rebuilds the process at the exec and exits. The
 * call is answered when the helper ends. A file refused before the release
 * leaves the sandbox created with nothing run; a failure after it kills
 * the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/restore_helper.h"
#include "kernel/spawn.h"

struct restore_job {
	ev_io pid_w;    /* the helper's pidfd */
	ev_io report_w; /* its pipe: 'R' when the init may be released */
	int pidfd, report_fd;
	bool released;
	struct rpc_call *call; /* NULL once the client went away */
	struct sandbox *sb;
};

static struct restore_job *active;

static void job_free(struct restore_job *j)
{
	ev_io_stop(core_loop(), &j->pid_w);
	ev_io_stop(core_loop(), &j->report_w);
	close(j->pidfd);
	close(j->report_fd);
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
	ssize_t n = read(j->report_fd, &b, 1);
	if (n < 0 && errno == EAGAIN)
		return;
	ev_io_stop(core_loop(), &j->report_w);
	if (n != 1 || b != 'R')
		return; /* the helper failed: its exit answers */
	struct task *init = j->sb->root->init;
	struct cv_error err = {0};
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
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int r = waitid((idtype_t)P_PIDFD, (id_t)j->pidfd, &si, WEXITED | WNOHANG);
	if (r < 0 && errno == EINTR)
		return;
	if (r == 0 && si.si_pid == 0)
		return;
	char msg[CV_ERROR_MAX] = "";
	/* The pipe holds the 'R' (if boot has not read it) then the error. */
	char buf[CV_ERROR_MAX + 1];
	ssize_t n = read(j->report_fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		snprintf(msg, sizeof(msg), "%s", buf[0] == 'R' ? buf + 1 : buf);
	}
	bool ok = si.si_code == CLD_EXITED && si.si_status == 0;
	if (!ok && !msg[0])
		snprintf(msg, sizeof(msg), "the restore helper ended abnormally (code %d, status %d)",
			 si.si_code, si.si_status);
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

static void __attribute__((noreturn)) helper_main(const struct restore_job_args *a)
{
	struct cv_error err = {0};
	int rc = restore_helper_run(a, &err);
	if (rc < 0) {
		size_t len = strlen(err.msg);
		if (write(a->report_fd, err.msg, len) != (ssize_t)len)
			_exit(2);
	}
	_exit(rc < 0 ? 1 : 0);
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
	int rp[2] = {-1, -1};
	if (!j || pipe2(rp, O_CLOEXEC) < 0) {
		free(j);
		rpc_fail(call, "restore: %s", strerror(j ? errno : ENOMEM));
		return;
	}
	struct restore_job_args a = {.image_fd = rpc_call_file(call, 0),
				     .init_pid = init->host_pid,
				     .container_id = sb->root->id,
				     .report_fd = rp[1]};
	pid_t pid = fork();
	if (pid == 0) {
		close(rp[0]);
		helper_main(&a);
	}
	int e = errno;
	close(rp[1]);
	int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd < 0) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		close(rp[0]);
		free(j);
		rpc_fail(call, "restore: starting the helper: %s", strerror(pid < 0 ? e : errno));
		return;
	}
	fcntl(rp[0], F_SETFL, O_NONBLOCK);
	j->pidfd = pidfd;
	j->report_fd = rp[0];
	j->call = call;
	j->sb = sb;
	active = j;
	ev_io_init(&j->pid_w, on_helper_exit, pidfd, EV_READ);
	ev_io_start(core_loop(), &j->pid_w);
	ev_io_init(&j->report_w, on_report, rp[0], EV_READ);
	ev_io_start(core_loop(), &j->report_w);
	rpc_call_set_cancel(call, job_cancel, j);
	LOG(LL_INFO, "restore of %s started (helper pid %d)", sb->root->id, pid);
}

/* Tasks: host processes the sandbox started (container inits and exec'd
 * processes), advanced by platform events: the report fd (exec handshake)
 * and the pidfd (exit → waitid(P_PIDFD)). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/exit_source.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/seccheck.h"
#include "kernel/spawn.h"

int wait_status_from_siginfo(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_KILLED:
		return si->si_status & 0x7f;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default:
		return 0;
	}
}

static void ctl_close(struct task *t)
{
	if (t->ctl_fd < 0)
		return;
	ev_io_stop(core_loop(), &t->ctl_w);
	close(t->ctl_fd);
	t->ctl_fd = -1;
}

/* The task never started: keep why (only as long as the task lives, and
 * only the bytes of the message) and take it out of the exec registry at
 * once. Its client never learned a pid to wait for, and if that client is
 * gone nobody would ever consume the entry. */
static void set_start_failed(struct task *t, const struct cv_error *err)
{
	t->start_failed = true;
	t->in_registry = false;
	free(t->start_err);
	t->start_err = strdup(err->msg[0] ? err->msg : "the process failed to start (no message)");
}

const char *task_start_err(const struct task *t)
{
	return t->start_err ? t->start_err : "the process failed to start (out of memory for the message)";
}

/* The exec handshake: READY (init set up), EOF (execve happened) or an
 * error report from the child. */
static void on_ctl(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct task *t = container_of(w, struct task, ctl_w);
	struct cv_error err;
	cv_error_reset(&err);
	int listener = -1;
	enum spawn_report_result r = spawn_read_report(t->ctl_fd, &listener, &err);
	if (r == SPAWN_REPORT_AGAIN)
		return;
	if (r == SPAWN_REPORT_LISTENER) {
		/* The process waits on its next armed syscall until this is watched. */
		seccheck_listener_add(t->c, listener);
		return;
	}
	if (r == SPAWN_REPORT_READY) {
		/* READY: the init waits for its release byte (StartRoot, or a
		 * subcontainer's start, parked on `started` until now). */
		t->ready = true;
		waitq_wake_all(&t->started, 0);
		return;
	}
	ctl_close(t);
	if (r == SPAWN_REPORT_EXECED) {
		if (t->state != TASK_EXITED)
			t->state = TASK_RUNNING;
		LOG(LL_DEBUG, "task %d (ns %d) of %s: execve done", t->host_pid, t->ns_pid, t->c->id);
		/* The root container's start is traced at its release (StartRoot);
		 * a subcontainer's once its init has exec'd. */
		if (t->is_init && t->c != t->c->sb->root)
			seccheck_container_start(t->c);
		waitq_wake_all(&t->started, 0);
	} else {
		set_start_failed(t, &err);
		LOG(LL_INFO, "task %d of %s failed to start: %s", t->host_pid, t->c->id, err.msg);
		waitq_wake_all(&t->started, -1);
	}
}

/* Exit statuses of a foreign-parent task may take a moment to become
 * readable (the zombie is being torn down); ask again this often, this
 * many times, before saying it is unknown. */
#define EXIT_RETRY_S 0.005
#define EXIT_RETRIES_MAX 400

/* ---- the exec registry's bound ---------------------------------------- */

static uint64_t exit_seq_next;

/* Forgotten execs, so WaitPID can tell "forgotten" from "never existed".
 * Keyed by a hash of the container id, not its address: a container freed
 * and another allocated at the same place must not inherit the entries. */
static struct forgotten {
	uint32_t cid_hash;
	pid_t ns_pid; /* 0: empty */
} forgotten[TASK_FORGOTTEN_MAX];
static size_t forgotten_next;

static uint32_t cid_hash(const struct container *c)
{
	uint32_t h = 2166136261u;
	for (const char *p = c->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static void forgotten_drop(const struct container *c, pid_t ns_pid)
{
	uint32_t h = cid_hash(c);
	for (size_t i = 0; i < TASK_FORGOTTEN_MAX; i++)
		if (forgotten[i].ns_pid == ns_pid && forgotten[i].cid_hash == h)
			forgotten[i].ns_pid = 0;
}

bool task_was_forgotten(const struct container *c, pid_t ns_pid)
{
	uint32_t h = cid_hash(c);
	for (size_t i = 0; i < TASK_FORGOTTEN_MAX; i++)
		if (forgotten[i].ns_pid == ns_pid && forgotten[i].cid_hash == h)
			return true;
	return false;
}

/* Takes t out of the registry and frees it unless a parked call holds it. */
static void registry_forget(struct task *t)
{
	t->in_registry = false;
	if (t->state == TASK_EXITED) {
		forgotten[forgotten_next].cid_hash = cid_hash(t->c);
		forgotten[forgotten_next].ns_pid = t->ns_pid;
		forgotten_next = (forgotten_next + 1) % TASK_FORGOTTEN_MAX;
	}
	task_release_if_done(t);
}

/* Keeps the newest TASK_REGISTRY_KEEP_EXITED exited, un-waited execs of c:
 * without the bound, a client that never calls WaitPID grows boot's memory
 * by a task per exec forever. Running ones are always kept (they hold a
 * pidfd and a process; the fd budget bounds them). One pass per exit over
 * c's tasks, which the bound itself keeps short. */
static void registry_trim(struct container *c)
{
	for (;;) {
		size_t n = 0;
		struct task *oldest = NULL;
		list_for_each(pos, &c->tasks) {
			struct task *o = container_of(pos, struct task, link);
			if (!o->in_registry || o->state != TASK_EXITED)
				continue;
			n++;
			if (!oldest || o->exit_seq < oldest->exit_seq)
				oldest = o;
		}
		if (n <= TASK_REGISTRY_KEEP_EXITED || !oldest)
			return;
		LOG(LL_DEBUG, "exec registry of %s: forgetting exited pid %d nobody waited for", c->id,
		    oldest->ns_pid);
		registry_forget(oldest);
	}
}

void task_registry_add(struct task *t)
{
	/* Newest last on c->tasks; an older entry with this pid is stale. */
	list_for_each_safe(pos, tmp, &t->c->tasks) {
		struct task *o = container_of(pos, struct task, link);
		if (o != t && o->in_registry && o->ns_pid == t->ns_pid) {
			o->in_registry = false;
			task_release_if_done(o);
		}
	}
	forgotten_drop(t->c, t->ns_pid);
	t->in_registry = true;
}

static void task_exited(struct ev_loop *loop, struct task *t, int status)
{
	ev_io_stop(loop, &t->pid_w);
	ev_timer_stop(loop, &t->exit_retry_w);
	if (t->foreign_parent)
		exit_source_unwatch(t->host_pid);
	close(t->pidfd);
	t->pidfd = -1;
	/* runsc: a sandbox a checkpoint ended exits with status 0. */
	if (t->is_init && t->c == t->c->sb->root && checkpoint_ended_sandbox())
		status = 0;
	t->status = status;
	t->state = TASK_EXITED;
	LOG(LL_DEBUG, "task %d (ns %d) of %s exited, status 0x%x", t->host_pid, t->ns_pid,
	    t->c->id, t->status);
	/* A process that died before its handshake ended has not started. */
	if (t->ctl_fd >= 0) {
		struct cv_error err;
		cv_error_reset(&err);
		enum spawn_report_result r = spawn_read_report(t->ctl_fd, NULL, &err);
		ctl_close(t);
		if (r == SPAWN_REPORT_ERROR) {
			set_start_failed(t, &err);
			waitq_wake_all(&t->started, -1);
		} else {
			waitq_wake_all(&t->started, 0);
		}
	}
	waitq_wake_all(&t->exited, 0);
	if (t->is_init && t->c == t->c->sb->root)
		sandbox_root_exited(t->c->sb, t->status);
	if (t->in_registry) {
		t->exit_seq = ++exit_seq_next;
		registry_trim(t->c);
	}
	task_release_if_done(t);
}

/* A task whose parent is the engine (or the CLI): the status comes from
 * exit_source. Returns true when the task has been completed. */
static bool foreign_exit(struct ev_loop *loop, struct task *t)
{
	struct cv_error err;
	cv_error_reset(&err);
	int status = 0;
	int r = exit_source_status(t->pidfd, t->host_pid, &status, &err);
	if (r == 0 && ++t->exit_retries < EXIT_RETRIES_MAX) {
		/* The pidfd stays readable: wait on the timer instead. */
		ev_io_stop(loop, &t->pid_w);
		ev_timer_start(loop, &t->exit_retry_w);
		return false;
	}
	if (r <= 0) {
		if (r == 0)
			cv_errf(&err, 0, "the exit status of process %d could not be read (%s)",
				t->host_pid, exit_source_name());
		LOG(LL_WARN, "task %d of %s: %s", t->host_pid, t->c->id, err.msg);
		t->status_unknown = true;
		free(t->exit_err);
		t->exit_err = strdup(err.msg);
		/* Nothing better is known: it is gone. */
		status = SIGKILL;
	}
	task_exited(loop, t, status);
	return true;
}

static void on_exit_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct task *t = container_of(w, struct task, exit_retry_w);
	ev_timer_stop(loop, w);
	foreign_exit(loop, t);
}

static void on_pidfd(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct task *t = container_of(w, struct task, pid_w);
	if (t->foreign_parent) {
		foreign_exit(loop, t);
		return;
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)t->pidfd, &si, WEXITED | WNOHANG | __WALL) < 0) {
		int e = errno;
		LOG(LL_WARN, "waitid on task %d: %s", t->host_pid, strerror(e));
		if (e == EINTR)
			return; /* level-triggered: asked again on the next loop turn */
		if (e != ECHILD) {
			/* The pidfd stays readable and waitid would fail the same
			 * way on every loop turn: give up on this process and say
			 * so to its waiters instead of spinning. */
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "the exit status of process %d could not be read: waitid: %s",
				 t->host_pid, strerror(e));
			t->status_unknown = true;
			free(t->exit_err);
			t->exit_err = strdup(msg);
			task_exited(loop, t, SIGKILL); /* stops the watcher, closes the pidfd */
			return;
		}
		si.si_code = CLD_KILLED;
		si.si_status = SIGKILL;
	} else if (si.si_pid == 0) {
		return; /* not yet */
	}
	task_exited(loop, t, wait_status_from_siginfo(&si));
}

struct task *task_new(struct container *c, pid_t host_pid, int pidfd, int ctl_fd, bool is_init)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->c = c;
	t->host_pid = host_pid;
	t->pidfd = pidfd;
	t->ctl_fd = ctl_fd;
	t->is_init = is_init;
	t->state = is_init ? TASK_CREATED : TASK_STARTING;
	t->ns_pid = host_pid > 0 ? pidns_to_root(c->sb, host_pid) : -1;
	ev_timer_init(&t->exit_retry_w, on_exit_retry, EXIT_RETRY_S, 0.);
	waitq_init(&t->started, "exec handshake");
	waitq_init(&t->exited, "task exit");
	list_node_init(&t->link);
	if (!is_init)
		list_add_tail(&c->tasks, &t->link);
	return t;
}

void task_watch(struct task *t)
{
	ev_io_init(&t->pid_w, on_pidfd, t->pidfd, EV_READ);
	ev_io_start(core_loop(), &t->pid_w);
	if (t->ctl_fd >= 0) {
		ev_io_init(&t->ctl_w, on_ctl, t->ctl_fd, EV_READ);
		ev_io_start(core_loop(), &t->ctl_w);
	}
}

/* The exec never ran: nothing to wait for, nothing to keep. */
static void spawn_failed(struct task *t, const struct cv_error *err)
{
	t->spawning = false;
	set_start_failed(t, err);
	t->state = TASK_EXITED;
	t->status = 127 << 8;
	LOG(LL_INFO, "exec in %s failed to start: %s", t->c->id, err->msg);
	waitq_wake_all(&t->started, -1);
	waitq_wake_all(&t->exited, 0);
	task_release_if_done(t);
}

static void on_spawned(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct task *t = container_of(w, struct task, spawn_w);
	struct cv_error err;
	cv_error_reset(&err);
	struct spawned sp;
	int r = spawn_exec_finish(&t->spawn, &sp, &err);
	if (r < 0 && err.code == EAGAIN)
		return;
	ev_io_stop(loop, w);
	if (r < 0) {
		spawn_failed(t, &err);
		return;
	}
	t->spawning = false;
	t->host_pid = sp.pid;
	t->pidfd = sp.pidfd;
	t->ctl_fd = sp.ctl_fd;
	t->ns_pid = pidns_to_root(t->c->sb, sp.pid);
	if (t->in_registry)
		task_registry_add(t);
	LOG(LL_DEBUG, "exec in %s: host pid %d, ns pid %d", t->c->id, t->host_pid, t->ns_pid);
	task_watch(t);
}

/* Handed to an intermediate: wait for it to exit. */
static void spawn_handed(struct task *t, const struct spawn_pending *p)
{
	t->spawn = *p;
	ev_io_init(&t->spawn_w, on_spawned, p->mid_pidfd, EV_READ);
	ev_io_start(core_loop(), &t->spawn_w);
}

static void on_spawn_queued_done(struct spawner_req *r, struct spawn_pending *p,
				 const struct cv_error *err)
{
	struct task *t = container_of(r, struct task, spawn_req);
	if (p)
		spawn_handed(t, p);
	else
		spawn_failed(t, err);
}

struct task *task_new_exec(struct container *c, const struct spawn_exec_args *a,
			   struct cv_error *err)
{
	struct task *t = task_new(c, -1, -1, -1, false);
	if (!t) {
		cv_errf(err, ENOMEM, "tracking the new process");
		return NULL;
	}
	t->spawning = true;
	struct spawn_pending p;
	int r = spawner_submit(&c->spawner, a, &t->spawn_req, on_spawn_queued_done, &p, err);
	if (r < 0) {
		t->spawning = false;
		task_free(t);
		return NULL;
	}
	if (r == 1)
		spawn_handed(t, &p);
	return t;
}

struct task *container_find_task(struct container *c, pid_t ns_pid, bool registry_only)
{
	/* Newest first: when the pid was reused, an older task with it is
	 * stale (its status belongs to a process that no longer has the pid). */
	for (struct list_node *n = c->tasks.n.prev; n != &c->tasks.n; n = n->prev) {
		struct task *t = container_of(n, struct task, link);
		if (t->ns_pid == ns_pid && (!registry_only || t->in_registry))
			return t;
	}
	return NULL;
}

void task_release_if_done(struct task *t)
{
	if (t->is_init || t->state != TASK_EXITED || t->in_registry)
		return;
	if (t->refs > 0)
		return;
	task_free(t);
}

void task_unref(struct task *t)
{
	t->refs--;
	task_release_if_done(t);
}

void task_free(struct task *t)
{
	if (t->spawning) {
		/* Sandbox teardown while the exec is queued, or while its
		 * intermediate (our child) runs. */
		if (t->spawn_req.queued) {
			spawner_cancel(&t->c->spawner, &t->spawn_req);
		} else if (ev_is_active(&t->spawn_w)) {
			ev_io_stop(core_loop(), &t->spawn_w);
			spawn_pending_abort(&t->spawn);
		}
		t->spawning = false;
	}
	ctl_close(t);
	if (t->pidfd >= 0) {
		ev_io_stop(core_loop(), &t->pid_w);
		ev_timer_stop(core_loop(), &t->exit_retry_w);
		if (t->foreign_parent)
			exit_source_unwatch(t->host_pid);
		close(t->pidfd);
		t->pidfd = -1;
	}
	free(t->exit_err);
	free(t->start_err);
	if (list_node_linked(&t->link))
		list_del(&t->link);
	/* Anyone still parked is answered with an error by its owner's cancel
	 * path; the waitqs must be empty by now. */
	free(t);
}

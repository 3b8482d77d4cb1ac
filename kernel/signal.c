/* containerManager.Signal (SEED-REFERENCE §4.8): four delivery modes, PIDs
 * in the sandbox root PID namespace. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mpk.h"
#include "kernel/methods.h"
#include "kernel/park.h"
#include "kernel/procfs.h"

enum signal_mode {
	DELIVER_TO_PROCESS = 0,
	DELIVER_TO_ALL_PROCESSES = 1,
	DELIVER_TO_FOREGROUND_PROCESS_GROUP = 2,
	DELIVER_TO_PROCESS_GROUP = 3,
};

struct signal_args {
	char *cid;
	int32_t signo;
	int32_t pid;
	int32_t mode;
};

static const struct mpk_field signal_fields[] = {
	{ "CID", MPK_STR, offsetof(struct signal_args, cid), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
	{ "Signo", MPK_I32, offsetof(struct signal_args, signo), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
	{ "PID", MPK_I32, offsetof(struct signal_args, pid), MPK_NONE, MPK_NONE, 0, NULL },
	{ "Mode", MPK_I32, offsetof(struct signal_args, mode), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema signal_schema = { "SignalArgs", sizeof(struct signal_args),
						 signal_fields,
						 sizeof(signal_fields) / sizeof(signal_fields[0]) };

static int task_signal(struct task *t, int signo, struct cv_error *err)
{
	if (t->pidfd < 0)
		return cv_errf(err, ESRCH, "process has exited");
	if (syscall(SYS_pidfd_send_signal, t->pidfd, signo, NULL, 0) < 0)
		return cv_errf(err, errno, "sending signal %d", signo);
	return 0;
}

/* Whether the signal's default action ends a process (terminate or dump
 * core), as opposed to ignore, stop or continue. */
static bool default_ends_process(int signo)
{
	switch (signo) {
	case 0:
	case SIGCHLD:
	case SIGCONT:
	case SIGURG:
	case SIGWINCH:
	case SIGSTOP:
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
		return false;
	default:
		return true;
	}
}

/* The init of a created container waits before execve in cvisor's own code
 * with default dispositions: nothing of the workload runs yet, so a signal
 * takes its default action, as the waiting `runc init` dies of it and the
 * container goes to stopped. But the kernel drops every signal except
 * SIGKILL and SIGSTOP sent to a PID namespace's init that has no handler for
 * it, even from the parent namespace: where the default action would end
 * the process, the init of a new PID namespace gets SIGKILL instead (so
 * Wait-ers and the boot's exit status see signal 9). */
static int signal_created_init(struct container *c, int signo, struct cv_error *err)
{
	int sig = signo;
	if (sig != SIGKILL && (c->ns_flags & CLONE_NEWPID) && default_ends_process(sig)) {
		LOG(LL_INFO, "signal %d to the created init of %s: it would be dropped, killing it",
		    signo, c->id);
		sig = SIGKILL;
	}
	return task_signal(c->init, sig, err);
}

/* The container's init in any state: created (waiting before execve),
 * starting, running. */
static int signal_init(struct container *c, int signo, struct cv_error *err)
{
	if (!c->init)
		return cv_errf(err, 0, "container \"%s\" not started", c->id);
	if (c->init->state == TASK_CREATED)
		return signal_created_init(c, signo, err);
	return task_signal(c->init, signo, err);
}

static int signal_process(struct sandbox *sb, struct container *c, const struct signal_args *a,
			  struct cv_error *err)
{
	if (a->pid == 0)
		return signal_init(c, a->signo, err);
	struct task *t = container_find_task(c, a->pid, false);
	if (t && t->state != TASK_EXITED)
		return task_signal(t, a->signo, err);
	if (c->init && c->init->ns_pid == a->pid && c->init->state != TASK_EXITED)
		return signal_init(c, a->signo, err);
	struct container *owner = NULL;
	pid_t host = pidns_find(sb, a->pid, &owner);
	if (host < 0)
		return cv_errf(err, 0, "no such process with PID %d", a->pid);
	if (owner != c)
		return cv_errf(err, 0, "process %d belongs to a different container: \"%s\"", a->pid,
			       owner->id);
	if (kill(host, a->signo) < 0)
		return cv_errf(err, errno, "sending signal %d", a->signo);
	return 0;
}

static int signal_all(struct container *c, int signo, struct cv_error *err)
{
	if (!c->init || !c->cg_made)
		return cv_errf(err, 0, "container \"%s\" not started", c->id);
	/* Before start the init is the only process of its cgroup. */
	if (c->init->state == TASK_CREATED)
		return signal_created_init(c, signo, err);
	if (signo == SIGKILL)
		return cgroup_kill(&c->cg, err); /* kills a paused container too */
	/* Freeze so that no process forks past the signal, as runsc pauses its
	 * kernel; the signals are queued to the frozen processes. A container
	 * that is paused (or being paused) stays frozen: its processes get the
	 * signals on Resume, as with runc. */
	struct cv_error ferr;
	bool paused = c->sb->pause_count > 0;
	if (!paused && cgroup_freeze_requested(&c->cg, &paused, &ferr) < 0)
		paused = false; /* no freezer: then freezing below fails too */
	bool froze = !paused && cgroup_freeze(&c->cg, true, &ferr) == 0;
	int r = cgroup_signal_all(&c->cg, signo, err);
	if (froze && cgroup_freeze(&c->cg, false, &ferr) < 0)
		LOG(LL_WARN, "thawing %s after signalling it: %s", c->id, ferr.msg);
	return r;
}

static int signal_foreground(struct container *c, const struct signal_args *a, struct cv_error *err)
{
	struct task *t;
	if (a->pid == 0) {
		t = c->init;
	} else {
		t = container_find_task(c, a->pid, false);
		if (!t)
			return cv_errf(err, 0, "no thread group found: container \"%s\" not found", c->id);
	}
	if (!t || t->state == TASK_CREATED)
		return cv_errf(err, 0, "container \"%s\" not started", c->id);
	if (!t->has_tty)
		return cv_errf(err, 0, "no TTY attached");
	/* tpgid: the foreground process group of the task's terminal, as a
	 * host PID (we read /proc from the host's namespace). */
	struct proc_stat st;
	long pgrp = -1;
	if (t->state != TASK_EXITED && procfs_read_stat(t->host_pid, &st) == 0)
		pgrp = st.tpgid;
	if (pgrp <= 0) {
		LOG(LL_WARN, "no foreground process group for the TTY of %d; signalling it directly",
		    t->host_pid);
		return task_signal(t, a->signo, err);
	}
	if (kill(-(pid_t)pgrp, a->signo) < 0)
		return cv_errf(err, errno, "signalling foreground process group");
	return 0;
}

static int signal_group(struct sandbox *sb, struct container *c, const struct signal_args *a,
			struct cv_error *err)
{
	if (a->pid == 0)
		return cv_errf(err, 0, "PGID must be set when signaling a process group");
	/* Members of the group: processes whose pgid, translated into the
	 * sandbox root namespace, is the one asked for. */
	bool found = false, ours = false;
	pid_t host_pgid = -1;
	list_for_each(n, &sb->containers) {
		struct container *k = container_of(n, struct container, link);
		pid_t *pids = NULL;
		size_t np = 0;
		struct cv_error e;
		if (!k->cg_made || cgroup_pids(&k->cg, &pids, &np, &e) < 0)
			continue;
		for (size_t i = 0; i < np; i++) {
			struct proc_stat st;
			long pg = procfs_read_stat(pids[i], &st) == 0 ? st.pgrp : -1;
			if (pg <= 0 || pidns_to_root(sb, (pid_t)pg) != a->pid)
				continue;
			found = true;
			if (k == c) {
				ours = true;
				host_pgid = (pid_t)pg;
			}
		}
		free(pids);
	}
	if (!found)
		return cv_errf(err, 0, "no such process group with PGID %d", a->pid);
	if (!ours)
		return cv_errf(err, 0, "process group %d does not belong to container \"%s\"", a->pid,
			       c->id);
	if (kill(-host_pgid, a->signo) < 0)
		return cv_errf(err, errno, "signalling process group %d", a->pid);
	return 0;
}

void cm_signal(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	struct signal_args a;
	if (mpk_decode(arg, &signal_schema, &a, rpc_call_zone(call), &err) < 0)
		goto fail;
	if (a.pid < 0) {
		cv_errf(&err, 0, "PID (%d) must be positive", a.pid);
		goto fail;
	}
	if (a.signo < 0 || a.signo >= NSIG) {
		cv_errf(&err, 0, "SignalArgs.Signo: invalid signal %d", a.signo);
		goto fail;
	}
	struct container *c = sandbox_find_container(sb, a.cid);
	if (!c) {
		cv_errf(&err, 0, "container \"%s\" not found", a.cid);
		goto fail;
	}
	LOG(LL_DEBUG, "signal %d to %s pid %d mode %d", a.signo, a.cid, a.pid, a.mode);
	int r;
	switch ((enum signal_mode)a.mode) {
	case DELIVER_TO_PROCESS:
		r = signal_process(sb, c, &a, &err);
		if (r < 0)
			cv_error_wrap(&err, "signaling process in container \"%s\" PID %d", a.cid, a.pid);
		break;
	case DELIVER_TO_ALL_PROCESSES:
		if (a.pid != 0) {
			r = cv_errf(&err, 0, "PID (%d) cannot be set when signaling all processes", a.pid);
			break;
		}
		r = signal_all(c, a.signo, &err);
		break;
	case DELIVER_TO_FOREGROUND_PROCESS_GROUP:
		r = signal_foreground(c, &a, &err);
		break;
	case DELIVER_TO_PROCESS_GROUP:
		r = signal_group(sb, c, &a, &err);
		break;
	default:
		r = cv_errf(&err, 0, "SignalArgs.Mode: invalid mode %d (want 0-3)", a.mode);
		break;
	}
	if (r < 0)
		goto fail;
	rpc_reply_nil(call);
	return;
fail:
	rpc_fail_err(call, &err);
}

/* containerManager.Signal (docs/API.md): four delivery modes, PIDs
 * in the sandbox root PID namespace.
 *
 * What walks the container's processes (a PID that is not one of boot's
 * tasks, every process for Mode 1, a process group for Mode 3) runs as a
 * pidscan, PIDSCAN_CHUNK processes per turn of the loop with the call
 * parked; the cgroup kill without cgroup.kill is timer-driven. */
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
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/metrics.h"
#include "kernel/park.h"
#include "kernel/pidns.h"
#include "kernel/pidscan.h"
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
						 ARRAY_SIZE(signal_fields) };

static int task_signal(struct task *t, int signo, struct cv_error *err)
{
	if (t->pidfd < 0)
		return cv_errf(err, ESRCH, "process has exited");
	if (syscall(SYS_pidfd_send_signal, t->pidfd, signo, NULL, 0) < 0)
		return cv_errf(err, errno, "sending signal %d", signo);
	metrics_signal_sent();
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

/* A signal delivery that walks processes: what it needs of the request
 * is copied (the server frees the arg when the handler returns). */
struct sig_job {
	struct pidscan s;
	struct container *c;
	int signo;
	int32_t pid;
	bool froze;        /* Mode 1: this job froze the container */
	pid_t host;        /* Mode 3: our group's host pgid */
	bool found, ours;  /* Mode 3 */
	pid_t last_pg, last_ns_pg; /* Mode 3: a group has many members: translate once */
	struct cv_error err;
};

static struct sig_job *sig_job_new(struct container *c, const struct signal_args *a,
				   struct cv_error *err)
{
	struct sig_job *j = calloc(1, sizeof(*j));
	if (!j) {
		cv_errf(err, ENOMEM, "signalling");
		return NULL;
	}
	j->c = c;
	j->signo = a->signo;
	j->pid = a->pid;
	j->host = -1;
	j->last_pg = -1;
	cv_error_reset(&j->err);
	return j;
}

/* Starts the scan; on failure frees j and returns -1 with err set. */
static int sig_job_start(struct sig_job *j, struct rpc_call *call, struct container *only,
			 pidscan_visit_fn visit, pidscan_end_fn end, const char *what,
			 struct cv_error *err)
{
	if (pidscan_start(&j->s, call, j->c->sb, only, visit, end, what, err) < 0) {
		free(j);
		return -1;
	}
	return 0;
}

/* Answers the call from j->err (or nil) and frees j. */
static enum chunk_step sig_job_answer(struct sig_job *j, int r)
{
	if (r < 0)
		rpc_fail_err(j->s.call, &j->err);
	else
		rpc_reply_nil(j->s.call);
	free(j);
	return CHUNK_DONE;
}

/* Mode 0, a PID that is none of boot's tasks, once pidns_find_start found
 * it (or not) among every container's processes. */
static void signal_found(struct rpc_call *call, struct container *c, pid_t pid, pid_t host,
			 struct container *owner, int signo)
{
	struct cv_error err;
	cv_error_reset(&err);
	int r = 0;
	if (host < 0)
		r = cv_errf(&err, 0, "no such process with PID %d", pid);
	else if (owner != c)
		r = cv_errf(&err, 0, "process %d belongs to a different container: \"%s\"", pid,
			    owner->id);
	else if (kill(host, signo) < 0)
		r = cv_errf(&err, errno, "sending signal %d", signo);
	else
		metrics_signal_sent();
	if (r < 0) {
		cv_error_wrap(&err, "signaling process in container \"%s\" PID %d", c->id, pid);
		rpc_fail_err(call, &err);
		return;
	}
	rpc_reply_nil(call);
}

/* Returns 0 when delivered, 1 when the call was parked (a scan answers
 * it), -1 with err set. */
static int signal_process(struct rpc_call *call, struct container *c, const struct signal_args *a,
			  struct cv_error *err)
{
	if (a->pid == 0)
		return signal_init(c, a->signo, err);
	struct task *t = container_find_task(c, a->pid, false);
	if (t && t->state != TASK_EXITED)
		return task_signal(t, a->signo, err);
	if (c->init && c->init->ns_pid == a->pid && c->init->state != TASK_EXITED)
		return signal_init(c, a->signo, err);
	/* Answers the call itself, also when it cannot start. */
	pidns_find_start(call, c->sb, c, a->pid, signal_found, a->signo);
	return 1;
}

/* Mode 1 (not SIGKILL): each process of the frozen container in turn. */
static bool all_visit(struct pidscan *s, struct container *c, pid_t host)
{
	(void)c;
	struct sig_job *j = container_of(s, struct sig_job, s);
	if (kill(host, j->signo) < 0 && errno != ESRCH) {
		cv_errf(&j->err, errno, "sending signal %d to pid %d", j->signo, (int)host);
		return false;
	}
	metrics_signal_sent();
	return true;
}

static enum chunk_step all_end(struct pidscan *s, bool cancelled)
{
	struct sig_job *j = container_of(s, struct sig_job, s);
	/* Thaw what this job froze, unless a Pause came meanwhile: the
	 * container then stays frozen for its Resume. */
	struct cv_error ferr;
	if (j->froze && j->c->sb->pause_count == 0 && cgroup_freeze(&j->c->cg, false, &ferr) < 0)
		LOG(LL_WARN, "thawing %s after signalling it: %s", j->c->id, ferr.msg);
	if (cancelled) {
		free(j);
		return CHUNK_DONE;
	}
	return sig_job_answer(j, j->err.msg[0] ? -1 : 0);
}

/* Mode 1 SIGKILL: the cgroup's kill, timer-driven where it loops. */
struct kill_job {
	struct rpc_call *call;
	struct cgroup_op *op;
};

static void kill_done(void *data, int rc, const struct cv_error *err)
{
	struct kill_job *kj = data;
	if (rc < 0)
		rpc_fail_err(kj->call, err);
	else
		rpc_reply_nil(kj->call);
	free(kj);
}

static void kill_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct kill_job *kj = data;
	cgroup_op_cancel(kj->op);
	free(kj);
}

static int signal_kill_all(struct rpc_call *call, struct container *c, struct cv_error *err)
{
	struct kill_job *kj = calloc(1, sizeof(*kj));
	if (!kj)
		return cv_errf(err, ENOMEM, "killing container \"%s\"", c->id);
	kj->call = call;
	/* kills a paused container too */
	if (!(kj->op = cgroup_kill_start(&c->cg, kill_done, kj, err))) {
		free(kj);
		return -1;
	}
	rpc_call_set_cancel(call, kill_cancel, kj);
	return 1;
}

/* Returns 0 when delivered, 1 when the call was parked, -1 with err set. */
static int signal_all(struct rpc_call *call, struct container *c, const struct signal_args *a,
		      struct cv_error *err)
{
	int signo = a->signo;
	if (!c->init || !c->cg_made)
		return cv_errf(err, 0, "container \"%s\" not started", c->id);
	/* Before start the init is the only process of its cgroup. */
	if (c->init->state == TASK_CREATED)
		return signal_created_init(c, signo, err);
	if (signo == SIGKILL)
		return signal_kill_all(call, c, err);
	/* Freeze so that no process forks past the signal, as runsc pauses its
	 * kernel; the signals are queued to the frozen processes. A container
	 * that is paused (or being paused) stays frozen: its processes get the
	 * signals on Resume, as with runc. The container stays frozen while
	 * the scan runs over several turns of the loop. */
	struct sig_job *j = sig_job_new(c, a, err);
	if (!j)
		return -1;
	struct cv_error ferr;
	bool paused = c->sb->pause_count > 0;
	if (!paused && cgroup_freeze_requested(&c->cg, &paused, &ferr) < 0)
		paused = false; /* no freezer: then freezing below fails too */
	bool froze = !paused && cgroup_freeze(&c->cg, true, &ferr) == 0;
	j->froze = froze;
	if (sig_job_start(j, call, c, all_visit, all_end, "Signal: every process", err) < 0) {
		if (froze && cgroup_freeze(&c->cg, false, &ferr) < 0)
			LOG(LL_WARN, "thawing %s: %s", c->id, ferr.msg);
		return -1;
	}
	return 1;
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
	metrics_signal_sent();
	return 0;
}

/* Mode 3: members of the group are the processes whose pgid, translated
 * into the sandbox root namespace, is the one asked for. */
static bool group_visit(struct pidscan *s, struct container *c, pid_t host)
{
	struct sig_job *j = container_of(s, struct sig_job, s);
	struct proc_stat st;
	pid_t pg = procfs_read_stat(host, &st) == 0 ? st.pgrp : -1;
	if (pg <= 0)
		return true;
	if (pg != j->last_pg) {
		j->last_pg = pg;
		j->last_ns_pg = pidns_to_root(s->sb, pg);
	}
	if (j->last_ns_pg != j->pid)
		return true;
	j->found = true;
	if (c == j->c) {
		j->ours = true;
		j->host = pg;
		return false; /* the group is ours: nothing else to learn */
	}
	return true;
}

static enum chunk_step group_end(struct pidscan *s, bool cancelled)
{
	struct sig_job *j = container_of(s, struct sig_job, s);
	if (cancelled) {
		free(j);
		return CHUNK_DONE;
	}
	int r = 0;
	if (!j->found)
		r = cv_errf(&j->err, 0, "no such process group with PGID %d", j->pid);
	else if (!j->ours)
		r = cv_errf(&j->err, 0, "process group %d does not belong to container \"%s\"", j->pid,
			    j->c->id);
	else if (kill(-j->host, j->signo) < 0)
		r = cv_errf(&j->err, errno, "signalling process group %d", j->pid);
	else
		metrics_signal_sent();
	return sig_job_answer(j, r);
}

static int signal_group(struct rpc_call *call, struct container *c, const struct signal_args *a,
			struct cv_error *err)
{
	if (a->pid == 0)
		return cv_errf(err, 0, "PGID must be set when signaling a process group");
	struct sig_job *j = sig_job_new(c, a, err);
	if (!j || sig_job_start(j, call, NULL, group_visit, group_end, "Signal: process group",
				err) < 0)
		return -1;
	return 1;
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
		r = signal_process(call, c, &a, &err);
		if (r < 0)
			cv_error_wrap(&err, "signaling process in container \"%s\" PID %d", a.cid, a.pid);
		break;
	case DELIVER_TO_ALL_PROCESSES:
		if (a.pid != 0) {
			r = cv_errf(&err, 0, "PID (%d) cannot be set when signaling all processes", a.pid);
			break;
		}
		r = signal_all(call, c, &a, &err);
		break;
	case DELIVER_TO_FOREGROUND_PROCESS_GROUP:
		r = signal_foreground(c, &a, &err);
		break;
	case DELIVER_TO_PROCESS_GROUP:
		r = signal_group(call, c, &a, &err);
		break;
	default:
		r = cv_errf(&err, 0, "SignalArgs.Mode: invalid mode %d (want 0-3)", a.mode);
		break;
	}
	if (r < 0)
		goto fail;
	if (r == 0)
		rpc_reply_nil(call);
	return; /* r == 1: a scan or a cgroup kill answers the call */
fail:
	rpc_fail_err(call, &err);
}

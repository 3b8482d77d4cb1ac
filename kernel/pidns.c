/* PIDs crossing the control API are PIDs in the sandbox root PID namespace
 * (the root container's); the boot process lives outside it, so translate
 * with the NSpid line of /proc/<pid>/status (docs/DESIGN.md, "Processes and pids"). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/model.h"
#include "kernel/pidns.h"
#include "kernel/pidscan.h"

#define NSPID_MAX PROCFS_NSPID_MAX

/* Reads the NSpid line of /proc/<pid>/status; returns the number of
 * entries, or -1. */
static int read_nspid(pid_t pid, pid_t *out, int max)
{
	struct proc_status st;
	if (procfs_read_status(pid, &st) < 0 || st.n_nspid < 0)
		return -1;
	int n = st.n_nspid < max ? st.n_nspid : max;
	memcpy(out, st.nspid, (size_t)n * sizeof(pid_t));
	return n;
}

int pidns_init(struct sandbox *sb, struct cv_error *err)
{
	pid_t ids[NSPID_MAX];
	int n = read_nspid(0, ids, NSPID_MAX);
	if (n <= 0)
		return cv_errf(err, errno, "reading NSpid from /proc/self/status");
	/* The root container's namespace is one level below ours when the spec
	 * asks for a new PID namespace, else it is ours. */
	sb->root_ns_index = (sb->root && (sb->root->ns_flags & CLONE_NEWPID)) ? n : n - 1;
	return 0;
}

int pidns_init_from(struct sandbox *sb, pid_t host_pid, struct cv_error *err)
{
	pid_t ids[NSPID_MAX];
	int n = read_nspid(host_pid, ids, NSPID_MAX);
	if (n <= 0)
		return cv_errf(err, errno, "reading NSpid of the root container's init %d",
			       (int)host_pid);
	sb->root_ns_index = n - 1;
	return 0;
}

pid_t pidns_to_root(const struct sandbox *sb, pid_t host_pid)
{
	pid_t ids[NSPID_MAX];
	int n = read_nspid(host_pid, ids, NSPID_MAX);
	if (n <= sb->root_ns_index)
		return -1;
	return ids[sb->root_ns_index];
}

pid_t pidns_of_status(const struct sandbox *sb, const struct proc_status *st)
{
	if (st->n_nspid <= sb->root_ns_index)
		return -1;
	return st->nspid[sb->root_ns_index];
}

struct find_job {
	struct pidscan s;
	struct container *want, *owner;
	pid_t ns_pid, host;
	pidns_found_fn done;
	int arg;
};

static bool find_visit(struct pidscan *s, struct container *c, pid_t host)
{
	struct find_job *j = container_of(s, struct find_job, s);
	if (pidns_to_root(s->sb, host) != j->ns_pid)
		return true;
	j->host = host;
	j->owner = c;
	return false;
}

static enum chunk_step find_end(struct pidscan *s, bool cancelled)
{
	struct find_job *j = container_of(s, struct find_job, s);
	if (!cancelled)
		j->done(s->call, j->want, j->ns_pid, j->host, j->owner, j->arg);
	free(j);
	return CHUNK_DONE;
}

int pidns_find_start(struct rpc_call *call, struct sandbox *sb, struct container *want,
		     pid_t ns_pid, pidns_found_fn done, int arg)
{
	struct cv_error err;
	cv_error_reset(&err);
	struct find_job *j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_fail(call, "looking up PID %d: out of memory", (int)ns_pid);
		return -1;
	}
	j->want = want;
	j->ns_pid = ns_pid;
	j->host = -1;
	j->done = done;
	j->arg = arg;
	if (pidscan_start(&j->s, call, sb, NULL, find_visit, find_end, "looking up a PID", &err) < 0) {
		free(j);
		rpc_fail_err(call, &err);
		return -1;
	}
	return 0;
}

/* PIDs crossing the control API are PIDs in the sandbox root PID namespace
 * (the root container's); the boot process lives outside it, so translate
 * with the NSpid line of /proc/<pid>/status (DESIGN §1). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/model.h"
#include "kernel/pidns.h"

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

/* Blocking: reads /proc for every process of the sandbox. Only for a
 * caller that cannot park; boot's handlers use a pidscan (signal.c). */
pid_t pidns_find(struct sandbox *sb, pid_t ns_pid, struct container **owner)
{
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		if (!c->cg_made)
			continue;
		pid_t *pids = NULL;
		size_t np = 0;
		struct cv_error err;
		if (cgroup_pids(&c->cg, &pids, &np, &err) < 0)
			continue;
		for (size_t i = 0; i < np; i++) {
			if (pidns_to_root(sb, pids[i]) == ns_pid) {
				pid_t host = pids[i];
				free(pids);
				if (owner)
					*owner = c;
				return host;
			}
		}
		free(pids);
	}
	return -1;
}

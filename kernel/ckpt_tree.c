/* The container's process tree for a checkpoint (kernel/ckpt_tree.h).
 * Run while the cgroup is frozen: nothing forks, exits or is reaped
 * meanwhile, so one walk is a consistent picture. */
#include "kernel/ckpt_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int in_list(const pid_t *a, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == pid)
			return 1;
	return 0;
}

/* The state letter and comm from /proc/PID/stat ('?' if it is gone). */
static char proc_state(pid_t pid, char *comm, size_t cap)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	snprintf(comm, cap, "?");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
	if (!lp || !rp || rp[1] != ' ')
		return '?';
	snprintf(comm, cap, "%.*s", (int)(rp - lp - 1), lp + 1);
	return rp[2];
}

/* Appends pid's children (over all its threads) to the list. */
static int add_children(struct ckpt_node **l, size_t *n, size_t *cap, size_t at,
			struct cv_error *err)
{
	pid_t pid = (*l)[at].pid;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return cv_errf(err, errno, "process %d: listing its threads", pid);
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char cpath[96], buf[4096];
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, de->d_name);
		int fd = open(cpath, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* the thread is gone (it cannot be: frozen) */
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len < 0) {
			rc = cv_errf(err, errno, "process %d: reading %s", pid, cpath);
			break;
		}
		buf[len] = '\0';
		for (char *s = buf, *end; rc == 0 && *s; s = end) {
			long c = strtol(s, &end, 10);
			if (end == s)
				break;
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 16;
				struct ckpt_node *nl = realloc(*l, nc * sizeof(*nl));
				if (!nl) {
					rc = cv_errf(err, ENOMEM, "checkpoint: process list");
					break;
				}
				*l = nl;
				*cap = nc;
			}
			(*l)[(*n)++] = (struct ckpt_node){(pid_t)c, (int)at};
		}
		if (len == sizeof(buf) - 1)
			rc = cv_errf(err, 0, "process %d: too many children to list", pid);
	}
	closedir(d);
	return rc;
}

int ckpt_tree_list(pid_t init, const pid_t *cg_pids, size_t ncg, struct ckpt_node **out,
		   size_t *n, struct cv_error *err)
{
	struct ckpt_node *l = malloc(16 * sizeof(*l));
	size_t cnt = 1, cap = 16;
	if (!l)
		return cv_errf(err, ENOMEM, "checkpoint: process list");
	l[0] = (struct ckpt_node){init, -1};
	int rc = 0;
	/* Breadth first: each process comes after its parent. */
	for (size_t i = 0; rc == 0 && i < cnt; i++) {
		char comm[32];
		char st = proc_state(l[i].pid, comm, sizeof(comm));
		if (st == 'Z' || st == 'X')
			rc = cv_errf(err, EAGAIN,
				     "process %d (%s) has exited and its parent has not reaped it yet "
				     "(kind: zombie); retry the checkpoint",
				     l[i].pid, comm);
		else if (st == '?')
			rc = cv_errf(err, ESRCH, "process %d is gone", l[i].pid);
		else if (!in_list(cg_pids, ncg, l[i].pid))
			rc = cv_errf(err, 0,
				     "process %d (%s) is a child of the container's process %d but not "
				     "in its cgroup",
				     l[i].pid, comm, l[l[i].parent].pid);
		else if (cnt > 4096)
			rc = cv_errf(err, 0, "the container has more than 4096 processes");
		else
			rc = add_children(&l, &cnt, &cap, i, err);
	}
	for (size_t i = 0; rc == 0 && i < ncg; i++) {
		int found = 0;
		for (size_t k = 0; k < cnt && !found; k++)
			found = l[k].pid == cg_pids[i];
		if (!found) {
			char comm[32];
			proc_state(cg_pids[i], comm, sizeof(comm));
			rc = cv_errf(err, 0,
				     "process %d (%s) is in the container's cgroup but not a "
				     "descendant of its init %d; checkpoint cannot restore it",
				     cg_pids[i], comm, init);
		}
	}
	if (rc < 0) {
		free(l);
		return -1;
	}
	*out = l;
	*n = cnt;
	return 0;
}

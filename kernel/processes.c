/* containerManager.Processes (SEED-REFERENCE §4.9): every process of the
 * container, found through its cgroup, with root-namespace PIDs. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "core/mpk.h"
#include "core/utf8.h"
#include "kernel/methods.h"
#include "kernel/park.h"
#include "kernel/procfs.h"

struct proc_info {
	pid_t host_pid, pid, ppid, pgid;
	uint32_t uid;
	char comm[64]; /* valid UTF-8: msgpack str must be (see read_stat) */
	char tty[32];
	unsigned long long utime, stime, starttime; /* clock ticks */
	pid_t *threads;
	size_t nthreads;
};

/* Fills p from /proc/<pid>/stat; returns -1 if the process is gone. */
static int read_stat(pid_t pid, struct proc_info *p, pid_t *host_ppid, pid_t *host_pgid)
{
	struct proc_stat st;
	if (procfs_read_stat(pid, &st) < 0)
		return -1;
	/* A process names itself (prctl, /proc/self/comm) with any bytes, and
	 * comm is cut at 15 bytes, possibly inside a character: send valid
	 * UTF-8, each bad byte as U+FFFD, so strict clients can decode it.
	 * 15 bytes grow to at most 45, which fits. */
	utf8_sanitize(st.comm, strlen(st.comm), p->comm, sizeof(p->comm));
	*host_ppid = st.ppid;
	*host_pgid = st.pgrp;
	p->utime = st.utime;
	p->stime = st.stime;
	p->starttime = st.starttime;
	dev_t tty = (dev_t)st.tty_nr;
	if (st.tty_nr == 0)
		snprintf(p->tty, sizeof(p->tty), "?");
	else if (major(tty) >= 136 && major(tty) <= 143)
		snprintf(p->tty, sizeof(p->tty), "pts/%u", (major(tty) - 136) * 256 + minor(tty));
	else
		snprintf(p->tty, sizeof(p->tty), "tty%u", minor(tty));
	return 0;
}

static uint32_t read_euid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	uint32_t uid = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned r, e;
		if (sscanf(line, "Uid: %u %u", &r, &e) == 2) {
			uid = e;
			break;
		}
	}
	fclose(f);
	return uid;
}

static void read_threads(const struct sandbox *sb, struct proc_info *p)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->host_pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	size_t cap = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		pid_t tid = pidns_to_root(sb, (pid_t)atoi(e->d_name));
		if (tid <= 0)
			continue;
		if (p->nthreads == cap) {
			cap = cap ? cap * 2 : 4;
			pid_t *nt = realloc(p->threads, cap * sizeof(pid_t));
			if (!nt)
				break;
			p->threads = nt;
		}
		p->threads[p->nthreads++] = tid;
	}
	closedir(d);
}

static int cmp_proc(const void *a, const void *b)
{
	const struct proc_info *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Go duration text for a CPU time in clock ticks: "0s", "10ms", "1.5s". */
static void format_duration(unsigned long long ticks, long hz, char *out, size_t n)
{
	unsigned long long ms = ticks * 1000ULL / (unsigned long long)hz;
	if (ms == 0)
		snprintf(out, n, "0s");
	else if (ms < 1000)
		snprintf(out, n, "%llums", ms);
	else if (ms % 1000 == 0)
		snprintf(out, n, "%llus", ms / 1000);
	else {
		char frac[8];
		snprintf(frac, sizeof(frac), "%03llu", ms % 1000);
		for (int i = 2; i > 0 && frac[i] == '0'; i--)
			frac[i] = '\0';
		snprintf(out, n, "%llu.%ss", ms / 1000, frac);
	}
}

static void pack_proc(msgpack_packer *pk, const struct proc_info *p, long hz, time_t now,
		      double boot_time)
{
	double start = boot_time + (double)p->starttime / (double)hz;
	double life = (double)now - start;
	unsigned long long cpu = p->utime + p->stime;
	long c = life > 0 ? (long)(((double)cpu / (double)hz) * 100.0 / life) : 0;
	if (c > 99)
		c = 99;
	char stime[16], tbuf[32];
	time_t st = (time_t)start;
	struct tm tm_start, tm_now;
	gmtime_r(&st, &tm_start);
	gmtime_r(&now, &tm_now);
	if (tm_start.tm_yday == tm_now.tm_yday && tm_start.tm_year == tm_now.tm_year)
		strftime(stime, sizeof(stime), "%H:%M", &tm_start);
	else if (tm_start.tm_year == tm_now.tm_year)
		strftime(stime, sizeof(stime), "%b%d", &tm_start);
	else
		strftime(stime, sizeof(stime), "%Y", &tm_start);
	format_duration(p->stime, hz, tbuf, sizeof(tbuf));

	msgpack_pack_map(pk, 10);
	mpk_pack_key(pk, "uid");
	msgpack_pack_uint32(pk, p->uid);
	mpk_pack_key(pk, "pid");
	msgpack_pack_int32(pk, p->pid);
	mpk_pack_key(pk, "ppid");
	msgpack_pack_int32(pk, p->ppid);
	mpk_pack_key(pk, "pgid");
	msgpack_pack_int32(pk, p->pgid);
	mpk_pack_key(pk, "threads");
	msgpack_pack_array(pk, (uint32_t)p->nthreads);
	for (size_t i = 0; i < p->nthreads; i++)
		msgpack_pack_int32(pk, p->threads[i]);
	mpk_pack_key(pk, "c");
	msgpack_pack_int32(pk, (int32_t)c);
	mpk_pack_key(pk, "tty");
	mpk_pack_str(pk, p->tty);
	mpk_pack_key(pk, "stime");
	mpk_pack_str(pk, stime);
	mpk_pack_key(pk, "time");
	mpk_pack_str(pk, tbuf);
	mpk_pack_key(pk, "cmd");
	mpk_pack_str(pk, p->comm);
}

static double read_boot_time(void)
{
	struct timespec rt, bt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return ((double)rt.tv_sec + (double)rt.tv_nsec / 1e9) -
	       ((double)bt.tv_sec + (double)bt.tv_nsec / 1e9);
}

void cm_processes(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	char *cid = NULL;
	if (arg_string(call, arg, &cid) < 0)
		return;
	/* Never fails on an unknown cid (runsc walks its process table);
	 * an empty cid means every container. */
	size_t n = 0, cap = 0;
	struct proc_info *procs = NULL;
	list_for_each(node, &sb->containers) {
		struct container *c = container_of(node, struct container, link);
		if ((*cid && strcmp(c->id, cid) != 0) || !c->cg_made)
			continue;
		pid_t *pids = NULL;
		size_t np = 0;
		if (cgroup_pids(&c->cg, &pids, &np, &err) < 0)
			continue;
		for (size_t i = 0; i < np; i++) {
			struct proc_info p = { .host_pid = pids[i] };
			pid_t hppid, hpgid;
			if (read_stat(pids[i], &p, &hppid, &hpgid) < 0)
				continue;
			p.pid = pidns_to_root(sb, pids[i]);
			if (p.pid <= 0)
				continue;
			p.ppid = pidns_to_root(sb, hppid);
			if (p.ppid < 0)
				p.ppid = 0; /* parent outside the sandbox (boot) */
			p.pgid = pidns_to_root(sb, hpgid);
			if (p.pgid < 0)
				p.pgid = 0;
			p.uid = read_euid(pids[i]);
			read_threads(sb, &p);
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct proc_info *np2 = realloc(procs, cap * sizeof(*procs));
				if (!np2) {
					free(p.threads);
					break;
				}
				procs = np2;
			}
			procs[n++] = p;
		}
		free(pids);
	}
	if (n > 1)
		qsort(procs, n, sizeof(*procs), cmp_proc);
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	time_t now = time(NULL);
	double boot_time = read_boot_time();
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_array(pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		pack_proc(pk, &procs[i], hz, now, boot_time);
		free(procs[i].threads);
	}
	free(procs);
	rpc_reply_packed(call);
}

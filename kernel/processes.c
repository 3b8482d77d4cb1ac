/* containerManager.Processes (docs/API.md): every process of the
 * container, found through its cgroup, with root-namespace PIDs.
 *
 * Reading /proc for thousands of processes takes tens of milliseconds, so
 * it runs as a pidscan (PIDSCAN_CHUNK processes per turn of the loop, the
 * call parked meanwhile), then the parent and group PIDs are translated
 * in slices of the same size, then the answer is packed. */
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
#include "kernel/pidns.h"
#include "kernel/pidscan.h"
#include "kernel/procfs.h"

struct proc_info {
	pid_t host_pid, pid, ppid, pgid;
	pid_t host_ppid, host_pgid;
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
		pid_t host_tid = (pid_t)atoi(e->d_name);
		/* The main thread's ID is the process's: no second read. */
		pid_t tid = host_tid == p->host_pid ? p->pid : pidns_to_root(sb, host_tid);
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

struct ps_job {
	struct pidscan s;
	struct proc_info *procs;
	size_t n, cap;
	size_t translated; /* procs[0..translated) have ppid and pgid */
	bool sorted;       /* procs sorted by host_pid for the translation */
	bool oom;
};

static void ps_job_free(struct ps_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->procs[i].threads);
	free(j->procs);
	free(j);
}

static bool ps_visit(struct pidscan *s, struct container *c, pid_t host)
{
	(void)c;
	struct ps_job *j = container_of(s, struct ps_job, s);
	struct proc_info p = { .host_pid = host };
	struct proc_status st;
	/* A process that is gone between the snapshot and now is skipped. */
	if (read_stat(host, &p, &p.host_ppid, &p.host_pgid) < 0 ||
	    procfs_read_status(host, &st) < 0)
		return true;
	p.pid = pidns_of_status(s->sb, &st);
	if (p.pid <= 0)
		return true;
	p.uid = st.euid;
	read_threads(s->sb, &p);
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct proc_info *np = realloc(j->procs, cap * sizeof(*np));
		if (!np) {
			free(p.threads);
			j->oom = true;
			return false;
		}
		j->procs = np;
		j->cap = cap;
	}
	j->procs[j->n++] = p;
	return true;
}

static int cmp_host_pid(const void *a, const void *b)
{
	const struct proc_info *x = a, *y = b;
	return (x->host_pid > y->host_pid) - (x->host_pid < y->host_pid);
}

/* A host PID in the sandbox root namespace: from the listing when the
 * process is in it (most parents are), else from /proc; 0 when it is
 * outside the sandbox (the parent of an init is boot or the engine). */
static pid_t ps_translate(const struct ps_job *j, pid_t host)
{
	struct proc_info key = { .host_pid = host };
	const struct proc_info *hit = bsearch(&key, j->procs, j->n, sizeof(key), cmp_host_pid);
	pid_t ns = hit ? hit->pid : pidns_to_root(j->s.sb, host);
	return ns < 0 ? 0 : ns;
}

static void ps_reply(struct ps_job *j)
{
	if (j->n > 1)
		qsort(j->procs, j->n, sizeof(*j->procs), cmp_proc);
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	time_t now = time(NULL);
	double boot_time = read_boot_time();
	msgpack_packer *pk = rpc_result_packer(j->s.call);
	msgpack_pack_array(pk, (uint32_t)j->n);
	for (size_t i = 0; i < j->n; i++)
		pack_proc(pk, &j->procs[i], hz, now, boot_time);
	rpc_reply_packed(j->s.call);
}

static enum chunk_step ps_end(struct pidscan *s, bool cancelled)
{
	struct ps_job *j = container_of(s, struct ps_job, s);
	if (cancelled) {
		ps_job_free(j);
		return CHUNK_DONE;
	}
	if (j->oom) {
		rpc_fail(s->call, "listing processes: out of memory");
		ps_job_free(j);
		return CHUNK_DONE;
	}
	if (!j->sorted) {
		if (j->n > 1)
			qsort(j->procs, j->n, sizeof(*j->procs), cmp_host_pid);
		j->sorted = true;
	}
	size_t end = j->translated + PIDSCAN_CHUNK < j->n ? j->translated + PIDSCAN_CHUNK : j->n;
	for (; j->translated < end; j->translated++) {
		struct proc_info *p = &j->procs[j->translated];
		p->ppid = ps_translate(j, p->host_ppid);
		p->pgid = ps_translate(j, p->host_pgid);
	}
	if (j->translated < j->n)
		return CHUNK_MORE;
	ps_reply(j);
	ps_job_free(j);
	return CHUNK_DONE;
}

void cm_processes(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	char *cid = NULL;
	if (arg_string(call, arg, &cid) < 0)
		return;
	/* Never fails on an unknown cid (runsc walks its process table):
	 * an unknown one lists nothing; an empty cid means every container. */
	struct container *only = NULL;
	if (*cid && !(only = sandbox_find_container(sb, cid))) {
		msgpack_pack_array(rpc_result_packer(call), 0);
		rpc_reply_packed(call);
		return;
	}
	struct ps_job *j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_fail(call, "listing processes: out of memory");
		return;
	}
	if (pidscan_start(&j->s, call, sb, only, ps_visit, ps_end, "Processes: reading /proc",
			  &err) < 0) {
		free(j);
		rpc_fail_err(call, &err);
	}
}

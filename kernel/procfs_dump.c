/* containerManager.ProcfsDump (docs/API.md): for every process of the
 * sandbox's containers, what runsc's ProcfsDump reports (exe, args, env,
 * cwd, root, fdlist, clone_ts, limits, cgroup, status, stat, maps), read
 * from the real process's /proc/<pid>/ entries only (no path inside a
 * container is ever opened), each bounded in size.
 *
 * Runs as a pidscan (kernel/pidscan.h): processes are visited
 * PIDSCAN_CHUNK at a time or 2 ms per turn of the loop, with the call
 * parked; each visit packs one entry into the job's buffer, and the
 * reply is the array of them. A process that exits midway is skipped:
 * a read that fails drops the half-packed entry. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/mpk.h"
#include "core/utf8.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/park.h"
#include "kernel/pidns.h"
#include "kernel/pidscan.h"
#include "kernel/procfs.h"

#define DUMP_TEXT_MAX (64 * 1024)    /* cmdline, environ, status, maps read at most */
#define DUMP_LIST_MAX 1024           /* fds and maps listed per process */
#define DUMP_TOTAL_MAX (12u << 20)   /* the reply stays under the 16 MiB message limit */

struct dump_job {
	struct pidscan s;
	msgpack_sbuffer sb; /* the entries, packed back to back */
	msgpack_packer pk;
	size_t n;
	long hz;
	int64_t boot_ns;    /* CLOCK_REALTIME of boot, for clone_ts */
	char *buf;          /* DUMP_TEXT_MAX + 1 scratch */
	bool too_big;
};

/* Reads /proc/<pid>/<name> into j->buf (NUL-terminated, at most
 * DUMP_TEXT_MAX bytes); length or -1 when the process is gone. */
static ssize_t read_proc(struct dump_job *j, pid_t pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len < DUMP_TEXT_MAX) {
		ssize_t r = read(fd, j->buf + len, DUMP_TEXT_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	j->buf[len] = '\0';
	return (ssize_t)len;
}

/* Packs s (n bytes) as a msgpack str of valid UTF-8 (a process chooses
 * its own argv, env and names). */
static void pack_text(msgpack_packer *pk, const char *s, size_t n)
{
	char small[256];
	size_t cap = n * 3 + 1;
	char *out = cap <= sizeof(small) ? small : malloc(cap);
	if (!out) {
		msgpack_pack_str(pk, 0);
		return;
	}
	utf8_sanitize(s, n, out, cap);
	mpk_pack_str(pk, out);
	if (out != small)
		free(out);
}

static void pack_link(msgpack_packer *pk, pid_t pid, const char *name)
{
	char path[64], target[4096];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	pack_text(pk, target, n < 0 ? 0 : (size_t)n);
}

/* NUL-separated strings (cmdline, environ) → array. */
static int pack_strv(struct dump_job *j, pid_t pid, const char *name)
{
	ssize_t len = read_proc(j, pid, name);
	if (len < 0)
		return -1;
	uint32_t n = 0;
	for (ssize_t i = 0; i < len; i++)
		if (j->buf[i] == '\0' || i == len - 1)
			n++;
	msgpack_pack_array(&j->pk, n);
	const char *p = j->buf, *end = j->buf + len;
	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));
		pack_text(&j->pk, p, l);
		p += l + 1;
	}
	return 0;
}

static void pack_fds(struct dump_job *j, pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	int nums[DUMP_LIST_MAX];
	uint32_t n = 0;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) && n < DUMP_LIST_MAX)
			if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
				nums[n++] = atoi(e->d_name);
		closedir(d);
	}
	msgpack_pack_array(&j->pk, n);
	for (uint32_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "fd/%d", nums[i]);
		msgpack_pack_map(&j->pk, 2);
		mpk_pack_key(&j->pk, "number");
		msgpack_pack_int32(&j->pk, nums[i]);
		mpk_pack_key(&j->pk, "path");
		pack_link(&j->pk, pid, name);
	}
}

static void pack_limits(msgpack_packer *pk, pid_t pid)
{
	static const struct {
		int res;
		const char *name;
	} lim[] = {
		{ RLIMIT_AS, "RLIMIT_AS" },         { RLIMIT_CORE, "RLIMIT_CORE" },
		{ RLIMIT_CPU, "RLIMIT_CPU" },       { RLIMIT_DATA, "RLIMIT_DATA" },
		{ RLIMIT_FSIZE, "RLIMIT_FSIZE" },   { RLIMIT_LOCKS, "RLIMIT_LOCKS" },
		{ RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK" }, { RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE" },
		{ RLIMIT_NICE, "RLIMIT_NICE" },     { RLIMIT_NOFILE, "RLIMIT_NOFILE" },
		{ RLIMIT_NPROC, "RLIMIT_NPROC" },   { RLIMIT_RSS, "RLIMIT_RSS" },
		{ RLIMIT_RTPRIO, "RLIMIT_RTPRIO" }, { RLIMIT_RTTIME, "RLIMIT_RTTIME" },
		{ RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING" }, { RLIMIT_STACK, "RLIMIT_STACK" },
	};
	struct rlimit rl[ARRAY_SIZE(lim)];
	bool ok[ARRAY_SIZE(lim)];
	uint32_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(lim); i++) {
		/* prlimit reads the limit, no file: nothing of the container's. */
		ok[i] = prlimit(pid, (enum __rlimit_resource)lim[i].res, NULL, &rl[i]) == 0;
		n += ok[i];
	}
	msgpack_pack_map(pk, n);
	for (size_t i = 0; i < ARRAY_SIZE(lim); i++) {
		if (!ok[i])
			continue;
		mpk_pack_key(pk, lim[i].name);
		msgpack_pack_map(pk, 2);
		mpk_pack_key(pk, "cur");
		msgpack_pack_uint64(pk, rl[i].rlim_cur);
		mpk_pack_key(pk, "max");
		msgpack_pack_uint64(pk, rl[i].rlim_max);
	}
}

/* /proc/<pid>/cgroup lines "id:controllers:path" → array of maps. */
static int pack_cgroup(struct dump_job *j, pid_t pid)
{
	ssize_t len = read_proc(j, pid, "cgroup");
	if (len < 0)
		return -1;
	uint32_t n = 0;
	for (ssize_t i = 0; i < len; i++)
		n += j->buf[i] == '\n';
	msgpack_pack_array(&j->pk, n);
	char *save = NULL;
	for (char *line = strtok_r(j->buf, "\n", &save); line && n; line = strtok_r(NULL, "\n", &save), n--) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		msgpack_pack_map(&j->pk, 3);
		mpk_pack_key(&j->pk, "hierarchy_id");
		msgpack_pack_int32(&j->pk, atoi(line));
		mpk_pack_key(&j->pk, "controllers");
		pack_text(&j->pk, c1 ? c1 + 1 : "", c1 && c2 ? (size_t)(c2 - c1 - 1) : 0);
		mpk_pack_key(&j->pk, "path");
		pack_text(&j->pk, c2 ? c2 + 1 : "", c2 ? strlen(c2 + 1) : 0);
	}
	/* strtok_r skips empty lines: keep the declared array length anyway. */
	while (n--)
		msgpack_pack_nil(&j->pk);
	return 0;
}

/* The status keys runsc reports, from /proc/<pid>/status. */
static int pack_status(struct dump_job *j, pid_t pid, pid_t ns_pid, pid_t ns_ppid)
{
	ssize_t len = read_proc(j, pid, "status");
	if (len < 0)
		return -1;
	char comm[64] = "", state[32] = "";
	unsigned long ids[2][4] = { { 0 } };
	unsigned long long vm_size = 0, vm_rss = 0, threads = 0;
	char *save = NULL;
	for (char *l = strtok_r(j->buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (sscanf(l, "Name:\t%63[^\n]", comm) == 1 || sscanf(l, "State:\t%31[^\n]", state) == 1)
			continue;
		if (sscanf(l, "Uid:\t%lu\t%lu\t%lu\t%lu", &ids[0][0], &ids[0][1], &ids[0][2], &ids[0][3]) == 4 ||
		    sscanf(l, "Gid:\t%lu\t%lu\t%lu\t%lu", &ids[1][0], &ids[1][1], &ids[1][2], &ids[1][3]) == 4)
			continue;
		if (sscanf(l, "VmSize: %llu", &vm_size) == 1 || sscanf(l, "VmRSS: %llu", &vm_rss) == 1)
			continue;
		sscanf(l, "Threads: %llu", &threads);
	}
	msgpack_packer *pk = &j->pk;
	msgpack_pack_map(pk, 9);
	mpk_pack_key(pk, "comm");
	pack_text(pk, comm, strlen(comm));
	mpk_pack_key(pk, "state");
	pack_text(pk, state, strlen(state));
	mpk_pack_key(pk, "pid");
	msgpack_pack_int32(pk, ns_pid);
	mpk_pack_key(pk, "ppid");
	msgpack_pack_int32(pk, ns_ppid);
	static const char *const idk[4] = { "real", "effective", "saved", "fs" };
	for (int w = 0; w < 2; w++) {
		mpk_pack_key(pk, w ? "gid" : "uid");
		msgpack_pack_map(pk, 4);
		for (int k = 0; k < 4; k++) {
			mpk_pack_key(pk, idk[k]);
			msgpack_pack_uint32(pk, (uint32_t)ids[w][k]);
		}
	}
	mpk_pack_key(pk, "vm_size_kb");
	msgpack_pack_uint64(pk, vm_size);
	mpk_pack_key(pk, "vm_rss_kb");
	msgpack_pack_uint64(pk, vm_rss);
	mpk_pack_key(pk, "threads");
	msgpack_pack_uint64(pk, threads);
	return 0;
}

static void pack_stat(struct dump_job *j, const struct proc_stat *st, pid_t pgid, pid_t sid)
{
	msgpack_packer *pk = &j->pk;
	msgpack_pack_map(pk, 5);
	mpk_pack_key(pk, "pgid");
	msgpack_pack_int32(pk, pgid);
	mpk_pack_key(pk, "sid");
	msgpack_pack_int32(pk, sid);
	mpk_pack_key(pk, "utime_ticks");
	msgpack_pack_uint64(pk, st->utime);
	mpk_pack_key(pk, "stime_ticks");
	msgpack_pack_uint64(pk, st->stime);
	mpk_pack_key(pk, "start_ticks");
	msgpack_pack_uint64(pk, st->starttime);
}

/* /proc/<pid>/maps lines → array of maps (at most DUMP_LIST_MAX). */
static int pack_maps(struct dump_job *j, pid_t pid)
{
	ssize_t len = read_proc(j, pid, "maps");
	if (len < 0)
		return -1;
	uint32_t n = 0;
	for (ssize_t i = 0; i < len && n < DUMP_LIST_MAX; i++)
		n += j->buf[i] == '\n';
	msgpack_pack_array(&j->pk, n);
	char *save = NULL;
	char *l = strtok_r(j->buf, "\n", &save);
	for (uint32_t k = 0; k < n; k++, l = l ? strtok_r(NULL, "\n", &save) : NULL) {
		char addr[64] = "", perms[8] = "", dev[16] = "";
		unsigned long long off = 0, ino = 0;
		int used = 0;
		if (l)
			sscanf(l, "%63s %7s %llx %15s %llu %n", addr, perms, &off, dev, &ino, &used);
		const char *path = l && used > 0 ? l + used : "";
		msgpack_pack_map(&j->pk, 6);
		mpk_pack_key(&j->pk, "address");
		mpk_pack_str(&j->pk, addr);
		mpk_pack_key(&j->pk, "permissions");
		mpk_pack_str(&j->pk, perms);
		mpk_pack_key(&j->pk, "offset");
		msgpack_pack_uint64(&j->pk, off);
		mpk_pack_key(&j->pk, "dev");
		mpk_pack_str(&j->pk, dev);
		mpk_pack_key(&j->pk, "inode");
		msgpack_pack_uint64(&j->pk, ino);
		mpk_pack_key(&j->pk, "pathname");
		pack_text(&j->pk, path, strlen(path));
	}
	return 0;
}

static pid_t to_root_or_zero(const struct sandbox *sb, pid_t host)
{
	pid_t p = host > 0 ? pidns_to_root(sb, host) : -1;
	return p < 0 ? 0 : p;
}

static bool dump_visit(struct pidscan *s, struct container *c, pid_t host)
{
	struct dump_job *j = container_of(s, struct dump_job, s);
	struct proc_stat st;
	struct proc_status pst;
	if (procfs_read_stat(host, &st) < 0 || procfs_read_status(host, &pst) < 0)
		return true; /* gone */
	pid_t ns_pid = pidns_of_status(s->sb, &pst);
	if (ns_pid <= 0)
		return true;
	size_t mark = j->sb.size;
	msgpack_packer *pk = &j->pk;
	msgpack_pack_map(pk, 14);
	mpk_pack_key(pk, "container_id");
	mpk_pack_str(pk, c->id);
	mpk_pack_key(pk, "pid");
	msgpack_pack_int32(pk, ns_pid);
	mpk_pack_key(pk, "exe");
	pack_link(pk, host, "exe");
	mpk_pack_key(pk, "args");
	if (pack_strv(j, host, "cmdline") < 0)
		goto gone;
	mpk_pack_key(pk, "env");
	if (pack_strv(j, host, "environ") < 0)
		goto gone;
	mpk_pack_key(pk, "cwd");
	pack_link(pk, host, "cwd");
	mpk_pack_key(pk, "root");
	pack_link(pk, host, "root");
	mpk_pack_key(pk, "fdlist");
	pack_fds(j, host);
	mpk_pack_key(pk, "clone_ts");
	msgpack_pack_int64(pk, j->boot_ns + (int64_t)(st.starttime * (1000000000ULL / (unsigned long long)j->hz)));
	mpk_pack_key(pk, "limits");
	pack_limits(pk, host);
	mpk_pack_key(pk, "cgroup");
	if (pack_cgroup(j, host) < 0)
		goto gone;
	mpk_pack_key(pk, "status");
	if (pack_status(j, host, ns_pid, to_root_or_zero(s->sb, st.ppid)) < 0)
		goto gone;
	mpk_pack_key(pk, "stat");
	pack_stat(j, &st, to_root_or_zero(s->sb, st.pgrp), to_root_or_zero(s->sb, st.session));
	mpk_pack_key(pk, "maps");
	if (pack_maps(j, host) < 0)
		goto gone;
	/* Gone by now: what was read may belong to a dying process; skip it. */
	if (kill(host, 0) < 0 && errno == ESRCH)
		goto gone;
	j->n++;
	if (j->sb.size > DUMP_TOTAL_MAX) {
		j->too_big = true;
		return false;
	}
	return true;
gone:
	j->sb.size = mark; /* drop the half-packed entry */
	return true;
}

static void dump_job_free(struct dump_job *j)
{
	msgpack_sbuffer_destroy(&j->sb);
	free(j->buf);
	free(j);
}

static enum chunk_step dump_end(struct pidscan *s, bool cancelled)
{
	struct dump_job *j = container_of(s, struct dump_job, s);
	if (!cancelled) {
		if (j->too_big) {
			rpc_fail(s->call, "ProcfsDump: the dump of %zu processes exceeds %u MiB", j->n,
				 DUMP_TOTAL_MAX >> 20);
		} else {
			msgpack_packer *pk = rpc_result_packer(s->call);
			msgpack_pack_array(pk, (uint32_t)j->n);
			pk->callback(pk->data, j->sb.data, j->sb.size);
			rpc_reply_packed(s->call);
		}
	}
	dump_job_free(j);
	return CHUNK_DONE;
}

void cm_procfs_dump(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	/* runsc's takes no argument (every process of the sandbox); a
	 * container ID narrows it to that container. */
	struct container *only = NULL;
	if (arg->type != MSGPACK_OBJECT_NIL) {
		char *cid = NULL;
		if (!(only = arg_container(call, arg, &cid)))
			return;
	}
	struct dump_job *j = calloc(1, sizeof(*j));
	char *buf = malloc(DUMP_TEXT_MAX + 1);
	if (!j || !buf) {
		free(j);
		free(buf);
		rpc_fail(call, "ProcfsDump: out of memory");
		return;
	}
	j->buf = buf;
	msgpack_sbuffer_init(&j->sb);
	msgpack_packer_init(&j->pk, &j->sb, msgpack_sbuffer_write);
	j->hz = sysconf(_SC_CLK_TCK);
	if (j->hz <= 0)
		j->hz = 100;
	struct timespec rt, bt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	j->boot_ns = ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
	struct cv_error err = { 0 };
	if (pidscan_start(&j->s, call, sb, only, dump_visit, dump_end, "ProcfsDump: reading /proc",
			  &err) < 0) {
		dump_job_free(j);
		rpc_fail_err(call, &err);
	}
}

/* Read-only statistics of a container's cgroup (kernel/cgroup.h
 * "statistics"): memory, cpu and pids accounting, from whichever hierarchy
 * holds each controller. Plain file reads: fine for the reactor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/cgroup_internal.h"

/* memory.stat on v1 has ~70 lines; 16 KiB holds it with room. */
#define STAT_BUF 16384

static uint64_t parse_u64(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (strncmp(s, "max", 3) == 0)
		return UINT64_MAX;
	return strtoull(s, NULL, 10);
}

/* The value of "key N" in a flat-keyed file, or 0. */
static uint64_t kv_get(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
			return strtoull(l + kl + 1, NULL, 10);
	}
	return 0;
}

static bool kv_has(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
			return true;
	}
	return false;
}

/* 0 and *v, or -1 with err; a missing optional file leaves *v at 0. */
static int read_u64(const char *dir, const char *file, uint64_t *v, bool optional,
		    struct cv_error *err)
{
	char buf[64];
	*v = 0;
	ssize_t r = read_small(dir, file, buf, sizeof(buf));
	if (r < 0) {
		if (optional)
			return 0;
		return cv_errf(err, (int)-r, "reading %s/%s", dir, file);
	}
	*v = parse_u64(buf);
	return 0;
}

int cgroup_memory_stat(const struct cgroup *cg, struct cgroup_mem_stat *st, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	memset(st, 0, sizeof(*st));
	if (!cg->path)
		return cv_errf(err, 0, "memory statistics: the container has no cgroup");
	if (ctrl_dir(C_MEMORY, cg->path, dir, sizeof(dir), NULL, "memory statistics", err) < 0)
		return -1;
	bool v2 = where(C_MEMORY) == WHERE_V2;
	if (read_u64(dir, v2 ? "memory.current" : "memory.usage_in_bytes", &st->usage, false,
		     err) < 0)
		return -1;
	if (read_u64(dir, v2 ? "memory.max" : "memory.limit_in_bytes", &st->limit, true, err) < 0)
		return -1;
	if (read_u64(dir, v2 ? "memory.peak" : "memory.max_usage_in_bytes", &st->max_usage, true,
		     err) < 0)
		return -1;
	if (!v2 && read_u64(dir, "memory.failcnt", &st->failcnt, true, err) < 0)
		return -1;
	char *text = malloc(STAT_BUF);
	if (!text)
		return cv_errf(err, ENOMEM, "memory statistics");
	ssize_t r = read_small(dir, "memory.stat", text, STAT_BUF);
	if (r < 0) {
		free(text);
		return cv_errf(err, (int)-r, "reading %s/memory.stat", dir);
	}
	if (v2) {
		st->anon = kv_get(text, "anon");
		st->file = kv_get(text, "file");
		st->shmem = kv_get(text, "shmem");
		st->mapped = kv_get(text, "file_mapped");
		st->kernel = kv_has(text, "kernel")
				     ? kv_get(text, "kernel")
				     : kv_get(text, "kernel_stack") + kv_get(text, "pagetables") +
					       kv_get(text, "slab") + kv_get(text, "sock");
		st->has_kernel = true;
	} else {
		/* total_*: the node and its descendants, like usage_in_bytes. */
		st->anon = kv_get(text, "total_rss");
		st->file = kv_get(text, "total_cache");
		st->shmem = kv_get(text, "total_shmem");
		st->mapped = kv_get(text, "total_mapped_file");
	}
	free(text);
	return 0;
}

int cgroup_cpu_stat(const struct cgroup *cg, struct cgroup_cpu_stat *st, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	memset(st, 0, sizeof(*st));
	if (!cg->path)
		return cv_errf(err, 0, "cpu statistics: the container has no cgroup");
	detect();
	int w = where(C_CPUACCT);
	if (w >= 0) {
		node_dir(dir, sizeof(dir), lay.v1[w].mnt, cg->path);
		if (read_u64(dir, "cpuacct.usage", &st->total_ns, false, err) < 0)
			return -1;
		char buf[256];
		ssize_t r = read_small(dir, "cpuacct.stat", buf, sizeof(buf));
		if (r < 0)
			return cv_errf(err, (int)-r, "reading %s/cpuacct.stat", dir);
		long hz = sysconf(_SC_CLK_TCK);
		uint64_t ns_per_tick = hz > 0 ? 1000000000ull / (uint64_t)hz : 10000000ull;
		st->user_ns = kv_get(buf, "user") * ns_per_tick;
		st->kernel_ns = kv_get(buf, "system") * ns_per_tick;
		return 0;
	}
	/* v2: cpu.stat is there with or without the cpu controller. */
	if (!lay.v2[0])
		return cv_errf(err, 0, "cpu statistics: neither cpuacct nor cgroup2 on this host");
	node_dir(dir, sizeof(dir), lay.v2, cg->path);
	char buf[1024];
	ssize_t r = read_small(dir, "cpu.stat", buf, sizeof(buf));
	if (r < 0)
		return cv_errf(err, (int)-r, "reading %s/cpu.stat", dir);
	st->total_ns = kv_get(buf, "usage_usec") * 1000;
	st->user_ns = kv_get(buf, "user_usec") * 1000;
	st->kernel_ns = kv_get(buf, "system_usec") * 1000;
	return 0;
}

int cgroup_pids_stat(const struct cgroup *cg, uint64_t *current, uint64_t *limit,
		     struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	*current = *limit = 0;
	if (!cg->path)
		return cv_errf(err, 0, "pids statistics: the container has no cgroup");
	if (ctrl_dir(C_PIDS, cg->path, dir, sizeof(dir), NULL, "pids statistics", err) < 0)
		return -1;
	if (read_u64(dir, "pids.current", current, false, err) < 0)
		return -1;
	if (read_u64(dir, "pids.max", limit, true, err) < 0)
		return -1;
	if (*limit == UINT64_MAX)
		*limit = 0; /* runc: "max" is 0, no limit */
	return 0;
}

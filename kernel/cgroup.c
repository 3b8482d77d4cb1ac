/* Container cgroups (kernel/cgroup.h) on v2, v1 or hybrid hosts.
 *
 * The layout is detected once from /proc/self/mountinfo: where the unified
 * hierarchy is mounted and which v1 hierarchy (mount point) carries each
 * controller. Membership, freeze, kill and events go through v2 whenever it
 * is mounted; each resource goes to the hierarchy that has its controller
 * (a controller bound to v1 is never listed by v2). The per-hierarchy
 * writes live behind `struct cg_ops` (v1 and v2 variants). */
#include "kernel/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "kernel/cgroup_devices.h"

#define CG_PATH_MAX 4096
#define CG_MAX_HIER 16

enum cg_ctrl { C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_CPUSET, C_FREEZER, C_BLKIO, C_DEVICES, C_N };

static const char *const ctrl_names[C_N] = {
	[C_MEMORY] = "memory", [C_PIDS] = "pids",       [C_CPU] = "cpu",     [C_CPUACCT] = "cpuacct",
	[C_CPUSET] = "cpuset", [C_FREEZER] = "freezer", [C_BLKIO] = "blkio", [C_DEVICES] = "devices",
};

/* Controllers whose v1 nodes every container gets (cpuset only on demand:
 * a v1 cpuset node is unusable until cpus/mems are filled in; devices for
 * linux.resources.devices, kernel/cgroup_devices.h). */
static const enum cg_ctrl always_v1[] = { C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_FREEZER, C_DEVICES };

struct v1_hier {
	char mnt[256];
	unsigned ctrls; /* bit per enum cg_ctrl */
};

struct layout {
	bool detected;
	char v2[256]; /* "" when no unified hierarchy */
	unsigned v2_ctrls; /* controllers the v2 root lists */
	struct v1_hier v1[CG_MAX_HIER];
	int n_v1;
};

static struct layout lay;

/* Where a controller lives: index of a v1 hierarchy, WHERE_V2 or WHERE_NONE. */
#define WHERE_V2 (-1)
#define WHERE_NONE (-2)

static unsigned parse_ctrls(const char *list)
{
	unsigned m = 0;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ", \n", &save); t; t = strtok_r(NULL, ", \n", &save))
		for (int c = 0; c < C_N; c++)
			if (strcmp(t, ctrl_names[c]) == 0)
				m |= 1u << c;
	return m;
}

static void detect(void)
{
	if (lay.detected)
		return;
	lay.detected = true;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char root[1024], mnt[1024];
		if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) != 2)
			continue;
		char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		char fstype[64], src[256], sopts[1024];
		if (sscanf(sep + 3, "%63s %255s %1023s", fstype, src, sopts) != 3)
			continue;
		if (strlen(mnt) >= sizeof(lay.v2))
			continue;
		if (strcmp(fstype, "cgroup2") == 0) {
			/* Prefer the canonical mounts if there are several. */
			if (!lay.v2[0] || strcmp(mnt, "/sys/fs/cgroup") == 0 ||
			    strcmp(mnt, "/sys/fs/cgroup/unified") == 0)
				snprintf(lay.v2, sizeof(lay.v2), "%s", mnt);
		} else if (strcmp(fstype, "cgroup") == 0) {
			unsigned m = parse_ctrls(sopts);
			if (!m || lay.n_v1 >= CG_MAX_HIER)
				continue;
			bool dup = false;
			for (int i = 0; i < lay.n_v1; i++)
				if (lay.v1[i].ctrls & m)
					dup = true; /* the same hierarchy mounted twice: keep the first */
			if (dup)
				continue;
			snprintf(lay.v1[lay.n_v1].mnt, sizeof(lay.v1[0].mnt), "%s", mnt);
			lay.v1[lay.n_v1].ctrls = m;
			lay.n_v1++;
		}
	}
	fclose(f);
	if (lay.v2[0]) {
		char p[512], buf[512];
		snprintf(p, sizeof(p), "%s/cgroup.controllers", lay.v2);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0) {
				buf[n] = '\0';
				lay.v2_ctrls = parse_ctrls(buf);
			}
		}
	}
}

const char *cgroup_v2_root(void)
{
	detect();
	return lay.v2[0] ? lay.v2 : NULL;
}

static int where(enum cg_ctrl c)
{
	detect();
	for (int i = 0; i < lay.n_v1; i++)
		if (lay.v1[i].ctrls & (1u << c))
			return i;
	/* cpuacct has no v2 counterpart; its statistics are part of v2's cpu. */
	if (lay.v2[0] && (lay.v2_ctrls & (1u << c)))
		return WHERE_V2;
	return WHERE_NONE;
}

/* ---- small file helpers ---- */

static int write_str(const char *dir, const char *file, const char *val, struct cv_error *err)
{
	char p[CG_PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "writing \"%s\" to %s", val, p);
	size_t n = strlen(val);
	ssize_t w = write(fd, val, n);
	int e = errno;
	close(fd);
	if (w < 0 || (size_t)w != n)
		return cv_errf(err, w < 0 ? e : EIO, "writing \"%s\" to %s", val, p);
	return 0;
}

static int write_i64(const char *dir, const char *file, int64_t v, struct cv_error *err)
{
	char b[32];
	snprintf(b, sizeof(b), "%" PRId64, v);
	return write_str(dir, file, b, err);
}

/* Reads a small file at dir/file; returns bytes read (NUL-terminated, trailing
 * newline kept) or -errno. */
static ssize_t read_small(const char *dir, const char *file, char *buf, size_t n)
{
	char p[CG_PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	int e = errno;
	close(fd);
	if (r < 0)
		return -e;
	buf[r] = '\0';
	return r;
}

static bool file_exists(const char *dir, const char *file)
{
	char p[CG_PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	return access(p, F_OK) == 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Node paths are relative; refuse ".." so a spec cannot escape the tree. */
static int check_rel(const char *path, struct cv_error *err)
{
	if (!path || !*path)
		return cv_errf(err, 0, "empty cgroup path");
	const char *p = path;
	while (*p) {
		const char *e = strchrnul(p, '/');
		if (e - p == 2 && p[0] == '.' && p[1] == '.')
			return cv_errf(err, 0, "cgroup path \"%s\" must not contain \"..\"", path);
		p = *e ? e + 1 : e;
	}
	if (strlen(path) > 1024)
		return cv_errf(err, 0, "cgroup path \"%s\" is too long", path);
	return 0;
}

static void node_dir(char *out, size_t n, const char *root, const char *rel)
{
	while (*rel == '/')
		rel++;
	snprintf(out, n, "%s/%s", root, rel);
}

/* Directories made by cgroup_create, removed in reverse on failure. */
struct made {
	char **dirs;
	size_t n, cap;
};

static int made_add(struct made *m, const char *d, struct cv_error *err)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		char **nd = realloc(m->dirs, cap * sizeof(char *));
		if (!nd)
			return cv_errf(err, ENOMEM, "creating cgroups");
		m->dirs = nd;
		m->cap = cap;
	}
	if (!(m->dirs[m->n] = strdup(d)))
		return cv_errf(err, ENOMEM, "creating cgroups");
	m->n++;
	return 0;
}

static void made_free(struct made *m, bool remove)
{
	for (size_t i = m->n; i-- > 0;) {
		if (remove && rmdir(m->dirs[i]) < 0 && errno != ENOENT)
			LOG(LL_WARN, "removing %s after a failed cgroup creation: %s", m->dirs[i],
			    strerror(errno));
		free(m->dirs[i]);
	}
	free(m->dirs);
	memset(m, 0, sizeof(*m));
}

/* A v1 cpuset node takes no task until cpus and mems are set: fill empty
 * ones from the parent (what cgroup.clone_children would do). */
static int cpuset_fill(const char *dir, struct cv_error *err)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	char parent[CG_PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char cur[4096], up[4096];
		ssize_t r = read_small(dir, files[i], cur, sizeof(cur));
		if (r < 0)
			return cv_errf(err, (int)-r, "reading %s/%s", dir, files[i]);
		if (r > 0 && cur[0] != '\n')
			continue;
		r = read_small(parent, files[i], up, sizeof(up));
		if (r < 0)
			return cv_errf(err, (int)-r, "reading %s/%s", parent, files[i]);
		if (write_str(dir, files[i], up, err) < 0)
			return -1;
	}
	return 0;
}

/* mkdir -p root/rel, recording what was made. */
static int mkdir_p(const char *root, const char *rel, bool cpuset, struct made *m,
		   struct cv_error *err)
{
	char d[CG_PATH_MAX];
	size_t rootlen = strlen(root);
	node_dir(d, sizeof(d), root, rel);
	for (char *p = d + rootlen + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (p[-1] != '/') {
			if (mkdir(d, 0755) == 0) {
				if (made_add(m, d, err) < 0)
					return -1;
			} else if (errno != EEXIST) {
				return cv_errf(err, errno, "creating cgroup %s", d);
			}
			if (cpuset && cpuset_fill(d, err) < 0)
				return -1;
		}
		*p = saved;
		if (!saved)
			break;
	}
	return 0;
}

/* ---- resources, per hierarchy kind ---- */

struct cg_ops {
	int (*memory)(const char *dir, const struct oci_memory *m, struct cv_error *err);
	int (*pids)(const char *dir, const struct oci_pids *p, struct cv_error *err);
	int (*cpu)(const char *dir, const struct oci_cpu *c, struct cv_error *err);
	int (*cpuset)(const char *dir, const struct oci_cpu *c, struct cv_error *err);
};

static int v1_memory(const char *dir, const struct oci_memory *m, struct cv_error *err)
{
	bool limit = m->has_limit && m->limit != 0;
	bool swap = m->has_swap && m->swap != 0 && file_exists(dir, "memory.memsw.limit_in_bytes");
	if (limit) {
		/* memsw must stay >= limit: when raising the limit past the current
		 * memsw, memsw goes first. */
		struct cv_error e1;
		if (write_i64(dir, "memory.limit_in_bytes", m->limit, &e1) < 0) {
			if (!(swap && e1.code == EINVAL)) {
				if (err)
					*err = e1;
				return -1;
			}
			if (write_i64(dir, "memory.memsw.limit_in_bytes", m->swap, err) < 0 ||
			    write_i64(dir, "memory.limit_in_bytes", m->limit, err) < 0)
				return -1;
			swap = false;
		}
	}
	if (swap && write_i64(dir, "memory.memsw.limit_in_bytes", m->swap, err) < 0)
		return -1;
	if (m->has_reservation && m->reservation != 0 &&
	    write_i64(dir, "memory.soft_limit_in_bytes", m->reservation, err) < 0)
		return -1;
	return 0;
}

static void v2_bytes(char *b, size_t n, int64_t v)
{
	if (v < 0)
		snprintf(b, n, "max");
	else
		snprintf(b, n, "%" PRId64, v);
}

static int v2_memory(const char *dir, const struct oci_memory *m, struct cv_error *err)
{
	char b[32];
	if (m->has_limit && m->limit != 0) {
		v2_bytes(b, sizeof(b), m->limit);
		if (write_str(dir, "memory.max", b, err) < 0)
			return -1;
	}
	if (m->has_reservation && m->reservation != 0) {
		v2_bytes(b, sizeof(b), m->reservation);
		if (write_str(dir, "memory.low", b, err) < 0)
			return -1;
	}
	if (m->has_swap && m->swap != 0 && file_exists(dir, "memory.swap.max")) {
		/* OCI's swap is memory+swap (v1 memsw); v2 counts swap alone. */
		if (m->swap < 0 || !m->has_limit || m->limit <= 0) {
			snprintf(b, sizeof(b), "max");
		} else {
			if (m->swap < m->limit)
				return cv_errf(err, 0,
					       "memory.swap (%" PRId64 ") must not be below memory.limit (%" PRId64 ")",
					       m->swap, m->limit);
			snprintf(b, sizeof(b), "%" PRId64, m->swap - m->limit);
		}
		if (write_str(dir, "memory.swap.max", b, err) < 0)
			return -1;
	}
	return 0;
}

static int pids_common(const char *dir, const struct oci_pids *p, struct cv_error *err)
{
	if (!p->has_limit)
		return 0;
	if (p->limit <= 0)
		return write_str(dir, "pids.max", "max", err);
	return write_i64(dir, "pids.max", p->limit, err);
}

static int v1_cpu(const char *dir, const struct oci_cpu *c, struct cv_error *err)
{
	if (c->has_shares && c->shares != 0 && write_i64(dir, "cpu.shares", (int64_t)c->shares, err) < 0)
		return -1;
	/* Period first: the kernel checks quota against the current period. */
	if (c->has_period && c->period != 0 &&
	    write_i64(dir, "cpu.cfs_period_us", (int64_t)c->period, err) < 0)
		return -1;
	if (c->has_quota && c->quota != 0 && write_i64(dir, "cpu.cfs_quota_us", c->quota, err) < 0)
		return -1;
	return 0;
}

static int v2_cpu(const char *dir, const struct oci_cpu *c, struct cv_error *err)
{
	char b[64];
	if (c->has_shares && c->shares != 0) {
		uint64_t s = c->shares < 2 ? 2 : c->shares > 262144 ? 262144 : c->shares;
		snprintf(b, sizeof(b), "%" PRIu64, 1 + ((s - 2) * 9999) / 262142);
		if (write_str(dir, "cpu.weight", b, err) < 0)
			return -1;
	}
	if ((c->has_quota && c->quota != 0) || (c->has_period && c->period != 0)) {
		uint64_t period = c->has_period && c->period ? c->period : 100000;
		if (c->has_quota && c->quota > 0)
			snprintf(b, sizeof(b), "%" PRId64 " %" PRIu64, c->quota, period);
		else
			snprintf(b, sizeof(b), "max %" PRIu64, period);
		if (write_str(dir, "cpu.max", b, err) < 0)
			return -1;
	}
	return 0;
}

static int cpuset_common(const char *dir, const struct oci_cpu *c, struct cv_error *err)
{
	if (c->cpus && *c->cpus && write_str(dir, "cpuset.cpus", c->cpus, err) < 0)
		return -1;
	if (c->mems && *c->mems && write_str(dir, "cpuset.mems", c->mems, err) < 0)
		return -1;
	return 0;
}

static const struct cg_ops v1_ops = { v1_memory, pids_common, v1_cpu, cpuset_common };
static const struct cg_ops v2_ops = { v2_memory, pids_common, v2_cpu, cpuset_common };

/* The node directory for controller c and the ops of its hierarchy. */
static int ctrl_dir(enum cg_ctrl c, const char *rel, char *dir, size_t n, const struct cg_ops **ops,
		    const char *why, struct cv_error *err)
{
	int w = where(c);
	if (w == WHERE_NONE)
		return cv_errf(err, 0, "the %s cgroup controller is not available on this host (needed for %s)",
			       ctrl_names[c], why);
	node_dir(dir, n, w == WHERE_V2 ? lay.v2 : lay.v1[w].mnt, rel);
	if (ops)
		*ops = w == WHERE_V2 ? &v2_ops : &v1_ops;
	return 0;
}

static bool wants_cpuset(const struct oci_resources *res)
{
	return res && res->has_cpu && ((res->cpu.cpus && *res->cpu.cpus) || (res->cpu.mems && *res->cpu.mems));
}

static bool cpu_set(const struct oci_cpu *c)
{
	return (c->has_shares && c->shares) || (c->has_quota && c->quota) || (c->has_period && c->period);
}

static bool memory_set(const struct oci_memory *m)
{
	return (m->has_limit && m->limit) || (m->has_reservation && m->reservation) ||
	       (m->has_swap && m->swap);
}

static int apply(const char *rel, const struct oci_resources *res, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	const struct cg_ops *ops;
	if (!res)
		return 0;
	if (res->has_memory && memory_set(&res->memory)) {
		if (ctrl_dir(C_MEMORY, rel, dir, sizeof(dir), &ops, "linux.resources.memory", err) < 0 ||
		    ops->memory(dir, &res->memory, err) < 0)
			return -1;
	}
	if (res->has_pids && res->pids.has_limit) {
		if (ctrl_dir(C_PIDS, rel, dir, sizeof(dir), &ops, "linux.resources.pids", err) < 0 ||
		    ops->pids(dir, &res->pids, err) < 0)
			return -1;
	}
	if (res->has_cpu && cpu_set(&res->cpu)) {
		if (ctrl_dir(C_CPU, rel, dir, sizeof(dir), &ops, "linux.resources.cpu", err) < 0 ||
		    ops->cpu(dir, &res->cpu, err) < 0)
			return -1;
	}
	if (wants_cpuset(res)) {
		if (ctrl_dir(C_CPUSET, rel, dir, sizeof(dir), &ops, "linux.resources.cpu.cpus/mems", err) < 0 ||
		    ops->cpuset(dir, &res->cpu, err) < 0)
			return -1;
	}
	return 0;
}

/* linux.resources.devices: the v1 devices node where the host has that
 * hierarchy, else a device program on the v2 node. */
static int apply_devices(const struct cgroup *cg, const struct oci_resources *res,
			 struct cv_error *err)
{
	const struct oci_device_cgroup *rules = res ? res->devices : NULL;
	size_t n = res ? res->n_devices : 0;
	int w = where(C_DEVICES);
	char dir[CG_PATH_MAX];
	if (w >= 0)
		node_dir(dir, sizeof(dir), lay.v1[w].mnt, cg->path);
	if (w < 0 && cg->v2_dirfd < 0 && n == 0) {
		LOG(LL_WARN, "no devices cgroup and no cgroup2 node for %s: device access is not "
			     "restricted", cg->path);
		return 0;
	}
	return cgdev_apply(w >= 0 ? dir : NULL, cg->v2_dirfd, rules, n, err);
}

/* ---- create / open / close ---- */

static void cg_init(struct cgroup *cg)
{
	cg->path = NULL;
	cg->v2_dirfd = -1;
	cg->n_v1 = 0;
	for (int i = 0; i < CGROUP_V1_MAX; i++)
		cg->v1_procs_fd[i] = -1;
}

/* The v1 hierarchies a container joins, deduplicated (cpu and cpuacct may
 * share one). Returns how many indexes went into idx. */
static int v1_used(bool cpuset, int idx[CG_MAX_HIER])
{
	int n = 0;
	for (size_t k = 0; k < ARRAY_SIZE(always_v1) + 1; k++) {
		enum cg_ctrl c = k < ARRAY_SIZE(always_v1) ? always_v1[k] : C_CPUSET;
		if (c == C_CPUSET && !cpuset)
			continue;
		int w = where(c);
		if (w < 0)
			continue;
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= idx[i] == w;
		if (!dup)
			idx[n++] = w;
	}
	return n;
}

static int open_v1_procs(struct cgroup *cg, int h, bool must_exist, struct cv_error *err)
{
	char dir[CG_PATH_MAX], p[CG_PATH_MAX];
	node_dir(dir, sizeof(dir), lay.v1[h].mnt, cg->path);
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	if (cg->n_v1 >= CGROUP_V1_MAX)
		return cv_errf(err, 0, "too many v1 cgroup hierarchies (at most %d)", CGROUP_V1_MAX);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!must_exist && errno == ENOENT)
			return 0;
		return cv_errf(err, errno, "opening %s", p);
	}
	cg->v1_procs_fd[cg->n_v1++] = fd;
	return 0;
}

static int open_v2(struct cgroup *cg, bool must_exist, struct cv_error *err)
{
	if (!lay.v2[0])
		return 0;
	char dir[CG_PATH_MAX];
	node_dir(dir, sizeof(dir), lay.v2, cg->path);
	cg->v2_dirfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (cg->v2_dirfd < 0 && (must_exist || errno != ENOENT))
		return cv_errf(err, errno, "opening cgroup %s", dir);
	return 0;
}

static int set_path(struct cgroup *cg, const char *path, struct cv_error *err)
{
	if (check_rel(path, err) < 0)
		return -1;
	while (*path == '/')
		path++;
	if (!(cg->path = strdup(path)))
		return cv_errf(err, ENOMEM, "cgroup %s", path);
	return 0;
}

int cgroup_open(struct cgroup *cg, const char *path, struct cv_error *err)
{
	cg_init(cg);
	detect();
	if (set_path(cg, path, err) < 0)
		return -1;
	if (open_v2(cg, false, err) < 0)
		goto fail;
	int idx[CG_MAX_HIER];
	int n = v1_used(true, idx);
	for (int i = 0; i < n; i++)
		if (open_v1_procs(cg, idx[i], false, err) < 0)
			goto fail;
	if (cg->v2_dirfd < 0 && cg->n_v1 == 0) {
		cv_errf(err, ENOENT, "cgroup \"%s\" not found", cg->path);
		goto fail;
	}
	return 0;
fail:
	cgroup_close(cg);
	return -1;
}

/* Pure v2: a child sees only the controllers its parent enables. Failures
 * are logged: the later write to the controller file then names the file. */
static void v2_enable(const char *rel, const struct oci_resources *res)
{
	unsigned want = 0;
	const enum cg_ctrl cs[] = { C_MEMORY, C_PIDS, C_CPU };
	for (size_t i = 0; i < ARRAY_SIZE(cs); i++)
		if (where(cs[i]) == WHERE_V2)
			want |= 1u << cs[i];
	if (wants_cpuset(res) && where(C_CPUSET) == WHERE_V2)
		want |= 1u << C_CPUSET;
	if (!want)
		return;
	char d[CG_PATH_MAX];
	node_dir(d, sizeof(d), lay.v2, rel);
	size_t rootlen = strlen(lay.v2);
	/* Every ancestor of the leaf, from the root down. */
	for (size_t end = rootlen;;) {
		char saved = d[end];
		d[end] = '\0';
		struct stat st;
		if (stat(d, &st) == 0) {
			char have[512];
			unsigned avail = read_small(d, "cgroup.controllers", have, sizeof(have)) > 0 ?
						 parse_ctrls(have) : 0;
			for (int c = 0; c < C_N; c++) {
				if (!(want & avail & (1u << c)))
					continue;
				char v[32];
				snprintf(v, sizeof(v), "+%s", ctrl_names[c]);
				struct cv_error e;
				if (write_str(d, "cgroup.subtree_control", v, &e) < 0)
					LOG(LL_WARN, "%s", e.msg);
			}
		}
		d[end] = saved;
		char *next = strchr(d + end + 1, '/');
		if (!next)
			break;
		end = (size_t)(next - d);
	}
}

int cgroup_create(struct cgroup *cg, const char *path, const struct oci_resources *res,
		  struct cv_error *err)
{
	cg_init(cg);
	detect();
	if (!lay.v2[0] && lay.n_v1 == 0)
		return cv_errf(err, 0, "no cgroup hierarchy is mounted on this host");
	if (set_path(cg, path, err) < 0)
		return -1;
	struct made m = { 0 };
	if (lay.v2[0]) {
		/* Enabling controllers needs the ancestors: make the tree first. */
		if (mkdir_p(lay.v2, cg->path, false, &m, err) < 0)
			goto fail;
		v2_enable(cg->path, res);
		if (open_v2(cg, true, err) < 0)
			goto fail;
	}
	int idx[CG_MAX_HIER];
	int n = v1_used(wants_cpuset(res), idx);
	for (int i = 0; i < n; i++) {
		bool cpuset = lay.v1[idx[i]].ctrls & (1u << C_CPUSET);
		if (mkdir_p(lay.v1[idx[i]].mnt, cg->path, cpuset, &m, err) < 0 ||
		    open_v1_procs(cg, idx[i], true, err) < 0)
			goto fail;
	}
	if (apply(cg->path, res, err) < 0 || apply_devices(cg, res, err) < 0)
		goto fail;
	made_free(&m, false);
	return 0;
fail:
	cgroup_close(cg);
	made_free(&m, true);
	return -1;
}

int cgroup_update(const struct cgroup *cg, const struct oci_resources *res, struct cv_error *err)
{
	detect();
	int w = where(C_CPUSET);
	if (wants_cpuset(res) && w >= 0) {
		/* cpuset nodes are made on demand: a container created without
		 * cpus/mems has none yet. Make it and move the processes in. */
		char dir[CG_PATH_MAX];
		node_dir(dir, sizeof(dir), lay.v1[w].mnt, cg->path);
		if (access(dir, F_OK) < 0) {
			struct made m = { 0 };
			int r = mkdir_p(lay.v1[w].mnt, cg->path, true, &m, err);
			made_free(&m, r < 0);
			if (r < 0)
				return -1;
			pid_t *pids = NULL;
			size_t np = 0;
			if (cgroup_pids(cg, &pids, &np, err) < 0)
				return -1;
			for (size_t i = 0; i < np; i++) {
				char b[24];
				snprintf(b, sizeof(b), "%d", (int)pids[i]);
				struct cv_error e;
				if (write_str(dir, "cgroup.procs", b, &e) < 0 && e.code != ESRCH) {
					free(pids);
					if (err)
						*err = e;
					return -1;
				}
			}
			free(pids);
		}
	}
	if (apply(cg->path, res, err) < 0)
		return -1;
	/* Devices only when the update names them: the rules replace the
	 * container's whole list. */
	return res && res->n_devices ? apply_devices(cg, res, err) : 0;
}

void cgroup_close(struct cgroup *cg)
{
	if (cg->v2_dirfd >= 0)
		close(cg->v2_dirfd);
	for (int i = 0; i < cg->n_v1; i++)
		if (cg->v1_procs_fd[i] >= 0)
			close(cg->v1_procs_fd[i]);
	free(cg->path);
	cg_init(cg);
}

int cgroup_join_self_v1(const struct cgroup *cg)
{
	for (int i = 0; i < cg->n_v1; i++)
		if (write(cg->v1_procs_fd[i], "0", 1) < 0)
			return -errno;
	return 0;
}

int cgroup_place_v1(const struct cgroup *cg, pid_t pid, struct cv_error *err)
{
	char buf[24];
	int len = snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (int i = 0; i < cg->n_v1; i++)
		if (write(cg->v1_procs_fd[i], buf, (size_t)len) < 0)
			return cv_errf(err, errno, "moving process %d into the v1 cgroups of %s",
				       (int)pid, cg->path ? cg->path : "?");
	return 0;
}

/* ---- processes ---- */

/* The directory whose cgroup.procs lists the members: v2, else the first
 * v1 hierarchy that has the node. */
static int procs_dir(const char *rel, char *dir, size_t n, struct cv_error *err)
{
	detect();
	if (lay.v2[0]) {
		node_dir(dir, n, lay.v2, rel);
		return 0;
	}
	int idx[CG_MAX_HIER];
	int k = v1_used(true, idx);
	for (int i = 0; i < k; i++) {
		node_dir(dir, n, lay.v1[idx[i]].mnt, rel);
		if (access(dir, F_OK) == 0)
			return 0;
	}
	return cv_errf(err, ENOENT, "cgroup \"%s\" not found", rel);
}

static int read_pids(const char *dir, pid_t **pids, size_t *n, struct cv_error *err)
{
	*pids = NULL;
	*n = 0;
	char p[CG_PATH_MAX];
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	FILE *f = fopen(p, "re");
	if (!f)
		return cv_errf(err, errno, "reading %s", p);
	size_t cap = 0;
	long v;
	while (fscanf(f, "%ld", &v) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 32;
			pid_t *np = realloc(*pids, cap * sizeof(pid_t));
			if (!np) {
				fclose(f);
				free(*pids);
				*pids = NULL;
				*n = 0;
				return cv_errf(err, ENOMEM, "reading %s", p);
			}
			*pids = np;
		}
		(*pids)[(*n)++] = (pid_t)v;
	}
	fclose(f);
	return 0;
}

int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	*pids = NULL;
	*n = 0;
	if (procs_dir(cg->path, dir, sizeof(dir), err) < 0)
		return -1;
	return read_pids(dir, pids, n, err);
}

int cgroup_signal_all(const struct cgroup *cg, int signo, struct cv_error *err)
{
	pid_t *pids;
	size_t n;
	if (cgroup_pids(cg, &pids, &n, err) < 0)
		return -1;
	int r = 0;
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], signo) < 0 && errno != ESRCH) {
			r = cv_errf(err, errno, "sending signal %d to pid %d", signo, (int)pids[i]);
			break;
		}
	free(pids);
	return r;
}

/* One round of the kill loop: SIGKILL every member listed now. Returns
 * how many there were (0: empty or gone), or -1. */
static int kill_round(const char *dir, struct cv_error *err)
{
	pid_t *pids;
	size_t n;
	if (read_pids(dir, &pids, &n, err) < 0)
		return errno == ENOENT ? 0 : -1;
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	free(pids);
	return n > INT_MAX ? INT_MAX : (int)n;
}

#define KILL_ROUNDS 100

static int kill_rounds_exceeded(const char *dir, struct cv_error *err)
{
	return cv_errf(err, 0, "processes of cgroup %s kept appearing while being killed", dir);
}

/* SIGKILL each member until none is left (no cgroup.kill). Bounded: a
 * fork bomb outrunning us ends with an error, not a hang. Blocking: for
 * the CLI; boot uses cgroup_kill_start(). */
static int kill_loop(const char *dir, struct cv_error *err)
{
	for (int round = 0; round < KILL_ROUNDS; round++) {
		int n = kill_round(dir, err);
		if (n <= 0)
			return n;
		sleep_ms(1);
	}
	return kill_rounds_exceeded(dir, err);
}

/* v2 cgroup.kill (Linux 5.14+) kills atomically, forks included. */
static bool has_cgroup_kill(const char *dir)
{
	return lay.v2[0] && file_exists(dir, "cgroup.kill") && strncmp(dir, lay.v2, strlen(lay.v2)) == 0;
}

static int kill_dir(const char *dir, struct cv_error *err)
{
	if (has_cgroup_kill(dir))
		return write_str(dir, "cgroup.kill", "1", err);
	return kill_loop(dir, err);
}

/* Where the node's freezer is: v2 cgroup.freeze when the unified hierarchy
 * has it, else the v1 freezer hierarchy (freezer.state). */
static int freezer_dir(const struct cgroup *cg, char *dir, size_t n, bool *v2, const char *what,
		       struct cv_error *err)
{
	detect();
	if (lay.v2[0]) {
		node_dir(dir, n, lay.v2, cg->path);
		if (file_exists(dir, "cgroup.freeze")) {
			*v2 = true;
			return 0;
		}
	}
	int w = where(C_FREEZER);
	if (w < 0)
		return cv_errf(err, 0, "cannot %s cgroup \"%s\": no freezer on this host", what,
			       cg->path);
	node_dir(dir, n, w == WHERE_V2 ? lay.v2 : lay.v1[w].mnt, cg->path);
	*v2 = false;
	return 0;
}

int cgroup_freeze_requested(const struct cgroup *cg, bool *frozen, struct cv_error *err)
{
	char dir[CG_PATH_MAX], buf[32];
	bool v2;
	*frozen = false;
	if (freezer_dir(cg, dir, sizeof(dir), &v2, "inspect", err) < 0)
		return -1;
	const char *file = v2 ? "cgroup.freeze" : "freezer.state";
	ssize_t r = read_small(dir, file, buf, sizeof(buf));
	if (r < 0)
		return cv_errf(err, (int)-r, "reading %s/%s", dir, file);
	/* v1 says FREEZING while the freeze is under way: asked for all the same. */
	*frozen = v2 ? buf[0] == '1' : strncmp(buf, "THAWED", 6) != 0;
	return 0;
}

/* A v1-frozen task does not act on SIGKILL until thawed (the v2 freezer
 * lets fatal signals through): queue SIGKILL to every member while the
 * node stays frozen, so nothing forks past it, then thaw, as runc does.
 * The members die before running any of their own code again. */
static int kill_v1_frozen(const struct cgroup *cg, const char *dir, struct cv_error *err)
{
	char fdir[CG_PATH_MAX];
	bool v2 = false, frozen = false;
	struct cv_error ferr;
	if (freezer_dir(cg, fdir, sizeof(fdir), &v2, "kill", &ferr) == 0 && !v2 &&
	    cgroup_freeze_requested(cg, &frozen, &ferr) == 0 && frozen) {
		if (kill_round(dir, err) < 0)
			return -1;
		if (write_str(fdir, "freezer.state", "THAWED", err) < 0)
			return -1;
	}
	return 0;
}

int cgroup_kill(const struct cgroup *cg, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	if (procs_dir(cg->path, dir, sizeof(dir), err) < 0)
		return -1;
	if (has_cgroup_kill(dir))
		return write_str(dir, "cgroup.kill", "1", err); /* passes a v2 freeze */
	if (kill_v1_frozen(cg, dir, err) < 0)
		return -1;
	return kill_loop(dir, err);
}

int cgroup_freeze(const struct cgroup *cg, bool frozen, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	bool v2;
	if (freezer_dir(cg, dir, sizeof(dir), &v2, frozen ? "freeze" : "thaw", err) < 0)
		return -1;
	if (v2)
		return write_str(dir, "cgroup.freeze", frozen ? "1" : "0", err);
	return write_str(dir, "freezer.state", frozen ? "FROZEN" : "THAWED", err);
}

int cgroup_events_fd(const struct cgroup *cg, struct cv_error *err)
{
	detect();
	if (!lay.v2[0])
		return cv_errf(err, 0, "no cgroup2 hierarchy on this host: cgroup.events is unavailable");
	char dir[CG_PATH_MAX], p[CG_PATH_MAX];
	node_dir(dir, sizeof(dir), lay.v2, cg->path);
	snprintf(p, sizeof(p), "%s/cgroup.events", dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC); /* the caller owns it */
	if (fd < 0)
		return cv_errf(err, errno, "opening %s", p);
	return fd;
}

int cgroup_memory_usage(const struct cgroup *cg, uint64_t *bytes, struct cv_error *err)
{
	char dir[CG_PATH_MAX], buf[64];
	*bytes = 0;
	if (ctrl_dir(C_MEMORY, cg->path, dir, sizeof(dir), NULL, "memory usage", err) < 0)
		return -1;
	const char *file = where(C_MEMORY) == WHERE_V2 ? "memory.current" : "memory.usage_in_bytes";
	ssize_t r = read_small(dir, file, buf, sizeof(buf));
	if (r < 0)
		return cv_errf(err, (int)-r, "reading %s/%s", dir, file);
	*bytes = strtoull(buf, NULL, 10);
	return 0;
}

/* ---- removal ---- */

/* 0 removed (or already gone), 1 busy (members still exiting), -1. */
static int rmdir_try(const char *dir, struct cv_error *err)
{
	if (rmdir(dir) == 0 || errno == ENOENT)
		return 0;
	if (errno == EBUSY)
		return 1;
	return cv_errf(err, errno, "removing cgroup %s", dir);
}

#define RMDIR_TRIES 50

static int rmdir_retry(const char *dir, struct cv_error *err)
{
	for (int i = 0;; i++) {
		int r = rmdir_try(dir, err);
		if (r <= 0)
			return r;
		if (i >= RMDIR_TRIES)
			return cv_errf(err, EBUSY, "removing cgroup %s", dir);
		sleep_ms(1);
	}
}

/* Every hierarchy root a node may live in (v2 first). */
static int all_roots(const char *roots[CG_MAX_HIER + 1])
{
	detect();
	int n = 0;
	if (lay.v2[0])
		roots[n++] = lay.v2;
	for (int i = 0; i < lay.n_v1; i++)
		roots[n++] = lay.v1[i].mnt;
	return n;
}

int cgroup_destroy(struct cgroup *cg, struct cv_error *err)
{
	const char *roots[CG_MAX_HIER + 1];
	int n = all_roots(roots), r = 0;
	/* The fds pin nothing, but close them first all the same. */
	char *path = cg->path;
	cg->path = NULL;
	cgroup_close(cg);
	for (int i = 0; i < n && path; i++) {
		char dir[CG_PATH_MAX];
		node_dir(dir, sizeof(dir), roots[i], path);
		if (rmdir_retry(dir, r < 0 ? NULL : err) < 0)
			r = -1;
	}
	free(path);
	return r;
}

/* Depth-first rmdir of dir and its child nodes. With block, a busy node
 * is retried briefly (sleeping); without, 1 says "busy, try again". */
static int rmdir_tree(const char *dir, int depth, bool block, struct cv_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : cv_errf(err, errno, "opening cgroup %s", dir);
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[CG_PATH_MAX];
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= sizeof(sub) || depth > 64) {
			r = cv_errf(err, ENAMETOOLONG, "removing cgroup %s", dir);
			break;
		}
		if ((r = rmdir_tree(sub, depth + 1, block, err)) != 0)
			break;
	}
	closedir(d);
	if (r != 0)
		return r;
	return block ? rmdir_retry(dir, err) : rmdir_try(dir, err);
}

/* Whether a v2 node's cgroup.events says "populated 0" (or is gone). */
static bool is_empty(const char *dir)
{
	char buf[256];
	return read_small(dir, "cgroup.events", buf, sizeof(buf)) < 0 || strstr(buf, "populated 0");
}

#define EMPTY_TICKS 1000 /* ~1 s at 1 ms */

/* Waits (bounded, ~1 s) for "populated 0" in a v2 node's cgroup.events. */
static void wait_empty(const char *dir)
{
	for (int i = 0; i < EMPTY_TICKS && !is_empty(dir); i++)
		sleep_ms(1);
}

int cgroup_remove_path(const char *path, struct cv_error *err)
{
	if (check_rel(path, err) < 0)
		return -1;
	const char *roots[CG_MAX_HIER + 1];
	int n = all_roots(roots);
	char dir[CG_PATH_MAX];
	if (lay.v2[0]) {
		node_dir(dir, sizeof(dir), lay.v2, path);
		if (access(dir, F_OK) == 0) {
			struct cv_error e;
			if (kill_dir(dir, &e) < 0)
				LOG(LL_WARN, "killing what is left in %s: %s", dir, e.msg);
			wait_empty(dir);
		}
	} else {
		/* No v2: kill through each v1 node (one holds every member). */
		for (int i = 0; i < n; i++) {
			node_dir(dir, sizeof(dir), roots[i], path);
			if (access(dir, F_OK) == 0) {
				struct cv_error e;
				if (kill_loop(dir, &e) < 0)
					LOG(LL_WARN, "%s", e.msg);
			}
		}
	}
	for (int i = 0; i < n; i++) {
		node_dir(dir, sizeof(dir), roots[i], path);
		if (rmdir_tree(dir, 0, true, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- timer-driven kill and removal (boot's loop) ----
 *
 * The same steps as cgroup_kill() and cgroup_remove_path(), each sleep
 * replaced by a 1 ms ev_timer: one bounded step per tick. */

#define OP_TICK_S 0.001

enum op_phase {
	OP_KILL,       /* kill rounds on dirs[i] until it is empty */
	OP_WAIT_EMPTY, /* v2: until cgroup.events says "populated 0" */
	OP_RMDIR,      /* rmdir_tree of dirs[i], retried while busy */
	OP_END,
};

struct cgroup_op {
	ev_timer tick;
	enum op_phase phase;
	char dirs[CG_MAX_HIER + 1][CG_PATH_MAX]; /* the node in each hierarchy */
	int ndirs, i;
	bool remove;  /* removal: kill, wait, rmdir; else kill only */
	bool v2_kill; /* the kill phase is one cgroup.kill write */
	int ticks;    /* in the current phase */
	int rc;
	struct cv_error err;
	cgroup_op_done_fn done;
	void *data;
};

static void op_finish(struct cgroup_op *op)
{
	ev_timer_stop(core_loop(), &op->tick);
	cgroup_op_done_fn done = op->done;
	void *data = op->data;
	int rc = op->rc;
	struct cv_error err = op->err;
	free(op);
	done(data, rc, &err);
}

static void op_next_phase(struct cgroup_op *op)
{
	op->ticks = 0;
	op->i = 0;
	if (op->phase == OP_KILL && op->remove && op->v2_kill)
		op->phase = OP_WAIT_EMPTY;
	else if ((op->phase == OP_KILL || op->phase == OP_WAIT_EMPTY) && op->remove)
		op->phase = OP_RMDIR;
	else
		op->phase = OP_END;
}

/* One bounded step; returns true when the op has ended. */
static bool op_step(struct cgroup_op *op)
{
	switch (op->phase) {
	case OP_KILL: {
		const char *dir = op->dirs[op->i];
		int n;
		if (op->v2_kill) {
			n = 0;
			if (access(dir, F_OK) == 0 && write_str(dir, "cgroup.kill", "1", &op->err) < 0)
				n = -1;
		} else {
			n = kill_round(dir, &op->err);
			if (n > 0 && ++op->ticks >= KILL_ROUNDS)
				n = kill_rounds_exceeded(dir, &op->err);
		}
		if (n < 0) {
			if (!op->remove) {
				op->rc = -1;
				return true;
			}
			LOG(LL_WARN, "killing what is left in %s: %s", dir, op->err.msg);
			cv_error_reset(&op->err);
			n = 0;
		}
		if (n > 0)
			return false;
		/* v2 holds every member: one node is enough; v1 nodes in turn. */
		op->ticks = 0;
		if (op->v2_kill || ++op->i >= op->ndirs || (!op->remove && op->i >= 1))
			op_next_phase(op);
		return op->phase == OP_END;
	}
	case OP_WAIT_EMPTY:
		if (is_empty(op->dirs[0]) || ++op->ticks >= EMPTY_TICKS)
			op_next_phase(op);
		return false;
	case OP_RMDIR: {
		int r = rmdir_tree(op->dirs[op->i], 0, false, &op->err);
		if (r < 0) {
			op->rc = -1;
			return true;
		}
		if (r > 0) {
			if (++op->ticks > RMDIR_TRIES) {
				op->rc = cv_errf(&op->err, EBUSY, "removing cgroup %s", op->dirs[op->i]);
				return true;
			}
			return false;
		}
		op->ticks = 0;
		if (++op->i >= op->ndirs)
			op_next_phase(op);
		return op->phase == OP_END;
	}
	case OP_END:
		return true;
	}
	return true;
}

static void on_op_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct cgroup_op *op = container_of(w, struct cgroup_op, tick);
	if (op_step(op))
		op_finish(op);
}

static struct cgroup_op *op_new(bool remove, cgroup_op_done_fn done, void *data,
				struct cv_error *err)
{
	struct cgroup_op *op = calloc(1, sizeof(*op));
	if (!op) {
		cv_errf(err, ENOMEM, "starting a cgroup %s", remove ? "removal" : "kill");
		return NULL;
	}
	op->remove = remove;
	op->done = done;
	op->data = data;
	cv_error_reset(&op->err);
	/* The first step runs on the first tick: done is never called inline. */
	ev_timer_init(&op->tick, on_op_tick, 0, OP_TICK_S);
	ev_timer_start(core_loop(), &op->tick);
	return op;
}

struct cgroup_op *cgroup_kill_start(const struct cgroup *cg, cgroup_op_done_fn done, void *data,
				    struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	if (procs_dir(cg->path, dir, sizeof(dir), err) < 0)
		return NULL;
	bool v2 = has_cgroup_kill(dir);
	/* One pass of SIGKILL then a thaw: bounded like a kill round. */
	if (!v2 && kill_v1_frozen(cg, dir, err) < 0)
		return NULL;
	struct cgroup_op *op = op_new(false, done, data, err);
	if (!op)
		return NULL;
	snprintf(op->dirs[0], sizeof(op->dirs[0]), "%s", dir);
	op->ndirs = 1;
	op->v2_kill = v2;
	op->phase = OP_KILL;
	return op;
}

struct cgroup_op *cgroup_remove_start(const char *path, cgroup_op_done_fn done, void *data,
				      struct cv_error *err)
{
	if (check_rel(path, err) < 0)
		return NULL;
	const char *roots[CG_MAX_HIER + 1];
	int n = all_roots(roots);
	struct cgroup_op *op = op_new(true, done, data, err);
	if (!op)
		return NULL;
	for (int i = 0; i < n; i++)
		node_dir(op->dirs[i], sizeof(op->dirs[i]), roots[i], path);
	op->ndirs = n;
	/* With v2, the v2 node holds every member (kill it, wait until it is
	 * empty); without, kill through each v1 node in turn. */
	op->v2_kill = lay.v2[0] && has_cgroup_kill(op->dirs[0]);
	op->phase = OP_KILL;
	if (n == 0)
		op->phase = OP_END;
	return op;
}

void cgroup_op_cancel(struct cgroup_op *op)
{
	if (!op)
		return;
	ev_timer_stop(core_loop(), &op->tick);
	free(op);
}

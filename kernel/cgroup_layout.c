/* The host's cgroup layout (kernel/cgroup_internal.h): detected once from
 * /proc/self/mountinfo, where the unified hierarchy is mounted and which v1
 * hierarchy (mount point) carries each controller; plus the small node file
 * helpers every cgroup file uses. */
#include "kernel/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const ctrl_names[C_N] = {
	[C_MEMORY] = "memory",   [C_PIDS] = "pids",         [C_CPU] = "cpu",
	[C_CPUACCT] = "cpuacct", [C_CPUSET] = "cpuset",     [C_FREEZER] = "freezer",
	[C_BLKIO] = "blkio",     [C_DEVICES] = "devices",   [C_HUGETLB] = "hugetlb",
	[C_NET_CLS] = "net_cls", [C_NET_PRIO] = "net_prio", [C_PERF_EVENT] = "perf_event",
	[C_RDMA] = "rdma",       [C_MISC] = "misc",         [C_IO] = "io",
};

struct layout lay;

unsigned parse_ctrls(const char *list)
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

void detect(void)
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

int where(enum cg_ctrl c)
{
	detect();
	for (int i = 0; i < lay.n_v1; i++)
		if (lay.v1[i].ctrls & (1u << c))
			return i;
	/* cpuacct has no v2 counterpart; its statistics are part of v2's cpu. */
	if (c == C_BLKIO)
		c = C_IO; /* v2's name for it */
	if (lay.v2[0] && (lay.v2_ctrls & (1u << c)))
		return WHERE_V2;
	return WHERE_NONE;
}

/* ---- small file helpers ---- */

int write_str(const char *dir, const char *file, const char *val, struct cv_error *err)
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

int write_i64(const char *dir, const char *file, int64_t v, struct cv_error *err)
{
	char b[32];
	snprintf(b, sizeof(b), "%" PRId64, v);
	return write_str(dir, file, b, err);
}

/* Reads a small file at dir/file; returns bytes read (NUL-terminated, trailing
 * newline kept) or -errno. */
ssize_t read_small(const char *dir, const char *file, char *buf, size_t n)
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

bool file_exists(const char *dir, const char *file)
{
	char p[CG_PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	return access(p, F_OK) == 0;
}

void node_dir(char *out, size_t n, const char *root, const char *rel)
{
	while (*rel == '/')
		rel++;
	snprintf(out, n, "%s/%s", root, rel);
}

int cgroup_node_dirfd(const struct cgroup *cg, const char *controller, struct cv_error *err)
{
	detect();
	if (!cg->path)
		return cv_errf(err, ENOENT, "path: the container has no cgroup");
	char dir[CG_PATH_MAX];
	const char *root = NULL;
	if (lay.n_v1 == 0 || !controller || !controller[0]) {
		if (!lay.v2[0])
			return cv_errf(err, EINVAL,
				       "controller: required on this host (no unified hierarchy)");
		root = lay.v2;
	} else {
		int c;
		for (c = 0; c < C_N; c++)
			if (strcmp(controller, ctrl_names[c]) == 0)
				break;
		if (c == C_N)
			return cv_errf(err, EINVAL, "controller: unknown controller \"%s\"",
				       controller);
		int w = where((enum cg_ctrl)c);
		if (w == WHERE_NONE)
			return cv_errf(err, ENOENT, "controller: \"%s\" is not mounted on this host",
				       controller);
		root = w == WHERE_V2 ? lay.v2 : lay.v1[w].mnt;
	}
	node_dir(dir, sizeof(dir), root, cg->path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "path: opening %s", dir);
	return fd;
}

/* Container cgroups (kernel/cgroup.h) on v2, v1 or hybrid hosts: node
 * creation and placement, kill, freeze and removal. Membership, freeze,
 * kill and events go through v2 whenever it is mounted. The host's layout
 * is found by kernel/cgroup_layout.c, the limits are written by
 * kernel/cgroup_res.c. */
#include "kernel/cgroup_internal.h"

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

/* Controllers whose v1 nodes every container gets: every mounted v1
 * hierarchy cvisor knows, as runc joins them all (a process left in the
 * root of one would escape its limits there). cpuset is added by
 * v1_used(); mkdir_p() fills a new cpuset node's cpus/mems from its parent,
 * without which it takes no task. */
static const enum cg_ctrl always_v1[] = { C_MEMORY,  C_PIDS,    C_CPU,     C_CPUACCT,
					  C_FREEZER, C_DEVICES, C_BLKIO,   C_HUGETLB,
					  C_NET_CLS, C_NET_PRIO, C_PERF_EVENT, C_RDMA, C_MISC };

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

int cgroup_name(struct cgroup *cg, const char *path, struct cv_error *err)
{
	cg_init(cg);
	detect();
	if (set_path(cg, path, err) < 0) {
		cgroup_close(cg);
		return -1;
	}
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
	int n = v1_used(true, idx); /* every v1 hierarchy, cpuset included */
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

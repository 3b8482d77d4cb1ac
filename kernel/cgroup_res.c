/* The spec's resource limits (kernel/cgroup_internal.h): each written to
 * the hierarchy that has its controller (a controller bound to v1 is never
 * listed by v2), behind `struct cg_ops` (v1 and v2 variants). */
#include "kernel/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/util.h"
#include "kernel/cgroup_devices.h"

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
int ctrl_dir(enum cg_ctrl c, const char *rel, char *dir, size_t n, const struct cg_ops **ops,
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

bool wants_cpuset(const struct oci_resources *res)
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

int apply(const char *rel, const struct oci_resources *res, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	const struct cg_ops *ops = NULL;
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
int apply_devices(const struct cgroup *cg, const struct oci_resources *res,
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

/* Pure v2: a child sees only the controllers its parent enables. Failures
 * are logged: the later write to the controller file then names the file. */
void v2_enable(const char *rel, const struct oci_resources *res)
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

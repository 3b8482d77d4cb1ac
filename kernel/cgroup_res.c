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

/* Every write names the spec field it serves: a host that cannot take a
 * value (no controller, no such file, the kernel refuses it) fails the
 * operation with that name, never skips it. */
#define FIELD_PREFIX "linux.resources."

/* Writes val to dir/file for `field`; a missing file is the host lacking
 * the feature (ENOENT), anything else is the kernel refusing the value. */
static int put(const char *dir, const char *file, const char *val, const char *field,
	       struct cv_error *err)
{
	if (!file_exists(dir, file))
		return cv_errf(err, ENOENT, FIELD_PREFIX "%s: this host's cgroup has no %s (in %s)", field,
			       file, dir);
	if (write_str(dir, file, val, err) < 0)
		return cv_error_wrap(err, FIELD_PREFIX "%s", field);
	return 0;
}

static int put_i64(const char *dir, const char *file, int64_t v, const char *field,
		   struct cv_error *err)
{
	char b[32];
	snprintf(b, sizeof(b), "%" PRId64, v);
	return put(dir, file, b, field, err);
}

static int put_u64(const char *dir, const char *file, uint64_t v, const char *field,
		   struct cv_error *err)
{
	char b[32];
	snprintf(b, sizeof(b), "%" PRIu64, v);
	return put(dir, file, b, field, err);
}

/* A field this kind of hierarchy has no file for at all. */
static int no_such(const char *field, const char *why, struct cv_error *err)
{
	return cv_errf(err, 0, FIELD_PREFIX "%s: %s", field, why);
}

/* ---- conversions (runc's, also used by the unit tests) ---- */

uint64_t cgroup_res_shares_to_weight(uint64_t shares)
{
	/* The linear map of [2, 262144] onto [1, 10000] that runc and crun
	 * use; 0 is "unset". */
	if (shares == 0)
		return 0;
	uint64_t s = shares < 2 ? 2 : shares > 262144 ? 262144 : shares;
	return 1 + ((s - 2) * 9999) / 262142;
}

uint64_t cgroup_res_blkio_weight_to_io(uint64_t weight)
{
	/* runc's ConvertBlkIOToIOWeightValue: [10, 1000] onto [1, 10000]. */
	if (weight == 0)
		return 0;
	if (weight < 10)
		weight = 10;
	return 1 + ((weight - 10) * 9999) / 990;
}

static const char *const io_max_keys[4] = { "rbps", "wbps", "riops", "wiops" };
static const char *const v1_throttle_files[4] = {
	"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
	"blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"
};
static const char *const throttle_fields[4] = {
	"blockIO.throttleReadBpsDevice", "blockIO.throttleWriteBpsDevice",
	"blockIO.throttleReadIOPSDevice", "blockIO.throttleWriteIOPSDevice"
};

int cgroup_res_io_max_line(char *out, size_t n, int kind, const struct oci_blkio_throttle *t)
{
	if (kind < 0 || kind > 3)
		return -1;
	int len = snprintf(out, n, "%" PRId64 ":%" PRId64 " %s=%" PRIu64, t->major, t->minor,
			   io_max_keys[kind], t->rate);
	return len < 0 || (size_t)len >= n ? -1 : len;
}

/* ---- per hierarchy kind ---- */

struct cg_ops {
	int (*memory)(const char *dir, const struct oci_memory *m, struct cv_error *err);
	int (*pids)(const char *dir, const struct oci_pids *p, struct cv_error *err);
	int (*cpu)(const char *dir, const struct oci_cpu *c, struct cv_error *err);
	int (*cpuset)(const char *dir, const struct oci_cpu *c, struct cv_error *err);
	int (*blkio)(const char *dir, const struct oci_blkio *b, struct cv_error *err);
	/* "limit_in_bytes" (v1) or "max" (v2) after hugetlb.<size>. */
	const char *hugetlb_suffix;
};

static int v1_memory(const char *dir, const struct oci_memory *m, struct cv_error *err)
{
	bool limit = m->has_limit && m->limit != 0;
	bool swap = m->has_swap && m->swap != 0;
	if (swap && !file_exists(dir, "memory.memsw.limit_in_bytes"))
		return cv_errf(err, ENOENT,
			       FIELD_PREFIX "memory.swap: the host has no swap accounting "
			       "(memory.memsw.limit_in_bytes is missing; boot with swapaccount=1)");
	if (limit) {
		/* memsw must stay >= limit: when raising the limit past the current
		 * memsw, memsw goes first. */
		struct cv_error e1;
		if (write_i64(dir, "memory.limit_in_bytes", m->limit, &e1) < 0) {
			if (!(swap && e1.code == EINVAL)) {
				if (err)
					*err = e1;
				return cv_error_wrap(err, FIELD_PREFIX "memory.limit");
			}
			if (put_i64(dir, "memory.memsw.limit_in_bytes", m->swap, "memory.swap", err) < 0 ||
			    put_i64(dir, "memory.limit_in_bytes", m->limit, "memory.limit", err) < 0)
				return -1;
			swap = false;
		}
	}
	if (swap && put_i64(dir, "memory.memsw.limit_in_bytes", m->swap, "memory.swap", err) < 0)
		return -1;
	if (m->has_reservation && m->reservation != 0 &&
	    put_i64(dir, "memory.soft_limit_in_bytes", m->reservation, "memory.reservation", err) < 0)
		return -1;
	if (m->has_swappiness &&
	    put_u64(dir, "memory.swappiness", m->swappiness, "memory.swappiness", err) < 0)
		return -1;
	if (m->has_disable_oom_killer &&
	    put(dir, "memory.oom_control", m->disable_oom_killer ? "1" : "0", "memory.disableOOMKiller",
		err) < 0)
		return -1;
	if (m->has_use_hierarchy &&
	    put(dir, "memory.use_hierarchy", m->use_hierarchy ? "1" : "0", "memory.useHierarchy", err) < 0)
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
		if (put(dir, "memory.max", b, "memory.limit", err) < 0)
			return -1;
	}
	if (m->has_reservation && m->reservation != 0) {
		v2_bytes(b, sizeof(b), m->reservation);
		if (put(dir, "memory.low", b, "memory.reservation", err) < 0)
			return -1;
	}
	if (m->has_swap && m->swap != 0) {
		/* OCI's swap is memory+swap (v1 memsw); v2 counts swap alone. */
		if (m->swap < 0 || !m->has_limit || m->limit <= 0) {
			snprintf(b, sizeof(b), "max");
		} else {
			if (m->swap < m->limit)
				return cv_errf(err, 0,
					       FIELD_PREFIX "memory.swap (%" PRId64 ") must not be below memory.limit (%" PRId64 ")",
					       m->swap, m->limit);
			snprintf(b, sizeof(b), "%" PRId64, m->swap - m->limit);
		}
		if (put(dir, "memory.swap.max", b, "memory.swap", err) < 0)
			return -1;
	}
	/* runc refuses these on v2 too: the unified hierarchy has no file for
	 * them. The values that change nothing pass. */
	if (m->has_swappiness)
		return no_such("memory.swappiness", "cgroup v2 has no per-cgroup swappiness", err);
	if (m->has_disable_oom_killer && m->disable_oom_killer)
		return no_such("memory.disableOOMKiller", "cgroup v2 cannot disable the OOM killer", err);
	if (m->has_use_hierarchy && !m->use_hierarchy)
		return no_such("memory.useHierarchy", "cgroup v2 is always hierarchical", err);
	return 0;
}

static int pids_common(const char *dir, const struct oci_pids *p, struct cv_error *err)
{
	if (!p->has_limit)
		return 0;
	if (p->limit <= 0)
		return put(dir, "pids.max", "max", "pids.limit", err);
	return put_i64(dir, "pids.max", p->limit, "pids.limit", err);
}

static int v1_cpu(const char *dir, const struct oci_cpu *c, struct cv_error *err)
{
	if (c->has_shares && c->shares != 0 &&
	    put_u64(dir, "cpu.shares", c->shares, "cpu.shares", err) < 0)
		return -1;
	/* Period first: the kernel checks quota against the current period. */
	if (c->has_period && c->period != 0 &&
	    put_u64(dir, "cpu.cfs_period_us", c->period, "cpu.period", err) < 0)
		return -1;
	if (c->has_quota && c->quota != 0 && put_i64(dir, "cpu.cfs_quota_us", c->quota, "cpu.quota", err) < 0)
		return -1;
	/* The burst is bounded by the quota: after it. */
	if (c->has_burst && put_u64(dir, "cpu.cfs_burst_us", c->burst, "cpu.burst", err) < 0)
		return -1;
	if (c->has_realtime_period && c->realtime_period != 0 &&
	    put_u64(dir, "cpu.rt_period_us", c->realtime_period, "cpu.realtimePeriod", err) < 0)
		return -1;
	if (c->has_realtime_runtime && c->realtime_runtime != 0 &&
	    put_i64(dir, "cpu.rt_runtime_us", c->realtime_runtime, "cpu.realtimeRuntime", err) < 0)
		return -1;
	if (c->has_idle && put_i64(dir, "cpu.idle", c->idle, "cpu.idle", err) < 0)
		return -1;
	return 0;
}

static int v2_cpu(const char *dir, const struct oci_cpu *c, struct cv_error *err)
{
	char b[64];
	if (c->has_shares && c->shares != 0 &&
	    put_u64(dir, "cpu.weight", cgroup_res_shares_to_weight(c->shares), "cpu.shares", err) < 0)
		return -1;
	if ((c->has_quota && c->quota != 0) || (c->has_period && c->period != 0)) {
		uint64_t period = c->has_period && c->period ? c->period : 100000;
		if (c->has_quota && c->quota > 0)
			snprintf(b, sizeof(b), "%" PRId64 " %" PRIu64, c->quota, period);
		else
			snprintf(b, sizeof(b), "max %" PRIu64, period);
		if (put(dir, "cpu.max", b, c->has_quota && c->quota ? "cpu.quota" : "cpu.period", err) < 0)
			return -1;
	}
	if (c->has_burst && put_u64(dir, "cpu.max.burst", c->burst, "cpu.burst", err) < 0)
		return -1;
	if ((c->has_realtime_period && c->realtime_period) || (c->has_realtime_runtime && c->realtime_runtime))
		return no_such(c->has_realtime_runtime && c->realtime_runtime ? "cpu.realtimeRuntime" :
										 "cpu.realtimePeriod",
			       "cgroup v2 has no realtime CPU controller", err);
	if (c->has_idle && put_i64(dir, "cpu.idle", c->idle, "cpu.idle", err) < 0)
		return -1;
	return 0;
}

static int cpuset_common(const char *dir, const struct oci_cpu *c, struct cv_error *err)
{
	if (c->cpus && *c->cpus && put(dir, "cpuset.cpus", c->cpus, "cpu.cpus", err) < 0)
		return -1;
	if (c->mems && *c->mems && put(dir, "cpuset.mems", c->mems, "cpu.mems", err) < 0)
		return -1;
	return 0;
}

static int v1_blkio(const char *dir, const struct oci_blkio *b, struct cv_error *err)
{
	char v[96];
	/* CFQ's blkio.weight, else BFQ's blkio.bfq.weight (runc's order). */
	const char *wfile = file_exists(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
	const char *wdfile = file_exists(dir, "blkio.weight_device") ? "blkio.weight_device" :
								       "blkio.bfq.weight_device";
	if (b->has_weight && b->weight && put_u64(dir, wfile, b->weight, "blockIO.weight", err) < 0)
		return -1;
	if (b->has_leaf_weight && b->leaf_weight &&
	    put_u64(dir, "blkio.leaf_weight", b->leaf_weight, "blockIO.leafWeight", err) < 0)
		return -1;
	for (size_t i = 0; i < b->n_weight_device; i++) {
		const struct oci_blkio_weight_device *d = &b->weight_device[i];
		if (d->has_weight && d->weight) {
			snprintf(v, sizeof(v), "%" PRId64 ":%" PRId64 " %u", d->major, d->minor, d->weight);
			if (put(dir, wdfile, v, "blockIO.weightDevice", err) < 0)
				return -1;
		}
		if (d->has_leaf_weight && d->leaf_weight) {
			snprintf(v, sizeof(v), "%" PRId64 ":%" PRId64 " %u", d->major, d->minor, d->leaf_weight);
			if (put(dir, "blkio.leaf_weight_device", v, "blockIO.weightDevice.leafWeight", err) < 0)
				return -1;
		}
	}
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < b->n_throttle[k]; i++) {
			const struct oci_blkio_throttle *t = &b->throttle[k][i];
			snprintf(v, sizeof(v), "%" PRId64 ":%" PRId64 " %" PRIu64, t->major, t->minor, t->rate);
			if (put(dir, v1_throttle_files[k], v, throttle_fields[k], err) < 0)
				return -1;
		}
	return 0;
}

/* runc's fs2 io: BFQ's io.bfq.weight takes the blkio weight as it is,
 * else io.weight gets it converted; throttles become io.max lines. */
static int v2_blkio(const char *dir, const struct oci_blkio *b, struct cv_error *err)
{
	char v[96];
	bool bfq = file_exists(dir, "io.bfq.weight");
	if (b->has_weight && b->weight) {
		if (bfq ? put_u64(dir, "io.bfq.weight", b->weight, "blockIO.weight", err) < 0 :
			  (snprintf(v, sizeof(v), "default %" PRIu64, cgroup_res_blkio_weight_to_io(b->weight)),
			   put(dir, "io.weight", v, "blockIO.weight", err) < 0))
			return -1;
	}
	if (b->has_leaf_weight && b->leaf_weight)
		return no_such("blockIO.leafWeight", "cgroup v2 has no leaf weight", err);
	for (size_t i = 0; i < b->n_weight_device; i++) {
		const struct oci_blkio_weight_device *d = &b->weight_device[i];
		if (d->has_leaf_weight && d->leaf_weight)
			return no_such("blockIO.weightDevice.leafWeight", "cgroup v2 has no leaf weight", err);
		if (!(d->has_weight && d->weight))
			continue;
		if (bfq)
			snprintf(v, sizeof(v), "%" PRId64 ":%" PRId64 " %u", d->major, d->minor, d->weight);
		else
			snprintf(v, sizeof(v), "%" PRId64 ":%" PRId64 " %" PRIu64, d->major, d->minor,
				 cgroup_res_blkio_weight_to_io(d->weight));
		if (put(dir, bfq ? "io.bfq.weight" : "io.weight", v, "blockIO.weightDevice", err) < 0)
			return -1;
	}
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < b->n_throttle[k]; i++) {
			if (cgroup_res_io_max_line(v, sizeof(v), k, &b->throttle[k][i]) < 0 ||
			    put(dir, "io.max", v, throttle_fields[k], err) < 0)
				return -1;
		}
	return 0;
}

static const struct cg_ops v1_ops = { v1_memory, pids_common, v1_cpu, cpuset_common, v1_blkio,
				      "limit_in_bytes" };
static const struct cg_ops v2_ops = { v2_memory, pids_common, v2_cpu, cpuset_common, v2_blkio,
				      "max" };

/* The node directory for controller c and the ops of its hierarchy. */
int ctrl_dir(enum cg_ctrl c, const char *rel, char *dir, size_t n, const struct cg_ops **ops,
		    const char *why, struct cv_error *err)
{
	int w = where(c);
	if (w == WHERE_NONE)
		return cv_errf(err, 0, "%s: the %s cgroup controller is not available on this host", why,
			       ctrl_names[c]);
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
	return (c->has_shares && c->shares) || (c->has_quota && c->quota) || (c->has_period && c->period) ||
	       c->has_burst || (c->has_realtime_period && c->realtime_period) ||
	       (c->has_realtime_runtime && c->realtime_runtime) || c->has_idle;
}

static bool memory_set(const struct oci_memory *m)
{
	return (m->has_limit && m->limit) || (m->has_reservation && m->reservation) ||
	       (m->has_swap && m->swap) || m->has_swappiness || m->has_disable_oom_killer ||
	       m->has_use_hierarchy;
}

static bool blkio_set(const struct oci_blkio *b)
{
	size_t n = b->n_weight_device;
	for (int k = 0; k < 4; k++)
		n += b->n_throttle[k];
	return (b->has_weight && b->weight) || (b->has_leaf_weight && b->leaf_weight) || n;
}

/* Kernel memory limits: deprecated by the kernel (5.4) and gone from v2;
 * runc ignores them with a warning since 1.1, and so does cvisor. */
static void warn_kmem(const struct oci_memory *m)
{
	if (m->has_kernel && m->kernel)
		LOG(LL_WARN, FIELD_PREFIX "memory.kernel is ignored: kernel memory limits are "
			     "deprecated (as in runc)");
	if (m->has_kernel_tcp && m->kernel_tcp)
		LOG(LL_WARN, FIELD_PREFIX "memory.kernelTCP is ignored: kernel memory limits are "
			     "deprecated (as in runc)");
}

static int apply_hugetlb(const char *rel, const struct oci_resources *res, struct cv_error *err)
{
	char dir[CG_PATH_MAX], file[64], field[48];
	const struct cg_ops *ops = NULL;
	if (res->n_hugepage_limits == 0)
		return 0;
	if (ctrl_dir(C_HUGETLB, rel, dir, sizeof(dir), &ops, FIELD_PREFIX "hugepageLimits", err) < 0)
		return -1;
	for (size_t i = 0; i < res->n_hugepage_limits; i++) {
		const struct oci_hugepage_limit *h = &res->hugepage_limits[i];
		/* pageSize was checked by the decoder: digits and a unit. */
		snprintf(file, sizeof(file), "hugetlb.%s.%s", h->page_size, ops->hugetlb_suffix);
		snprintf(field, sizeof(field), "hugepageLimits[%zu]", i);
		if (!file_exists(dir, file))
			return cv_errf(err, ENOENT,
				       FIELD_PREFIX "%s.pageSize: this host has no %s huge pages (no %s in %s)",
				       field, h->page_size, file, dir);
		if (put_u64(dir, file, h->limit, field, err) < 0)
			return -1;
	}
	return 0;
}

static int apply_network(const char *rel, const struct oci_network *n, struct cv_error *err)
{
	char dir[CG_PATH_MAX], v[64];
	/* net_cls and net_prio exist in v1 only: v2 leaves packet tagging to
	 * BPF programs, so where() never finds them there. */
	if (n->has_class_id) {
		if (ctrl_dir(C_NET_CLS, rel, dir, sizeof(dir), NULL, FIELD_PREFIX "network.classID", err) < 0 ||
		    put_u64(dir, "net_cls.classid", n->class_id, "network.classID", err) < 0)
			return -1;
	}
	if (n->n_priorities == 0)
		return 0;
	if (ctrl_dir(C_NET_PRIO, rel, dir, sizeof(dir), NULL, FIELD_PREFIX "network.priorities", err) < 0)
		return -1;
	for (size_t i = 0; i < n->n_priorities; i++) {
		snprintf(v, sizeof(v), "%s %u", n->priorities[i].name, n->priorities[i].priority);
		if (put(dir, "net_prio.ifpriomap", v, "network.priorities", err) < 0)
			return -1;
	}
	return 0;
}

/* rdma.max lines: "<device> hca_handle=N hca_object=M" (the decoder
 * checked the map's shape). */
static int apply_rdma(const char *rel, const msgpack_object *m, struct cv_error *err)
{
	char dir[CG_PATH_MAX], v[160];
	if (!m || m->via.map.size == 0)
		return 0;
	if (ctrl_dir(C_RDMA, rel, dir, sizeof(dir), NULL, FIELD_PREFIX "rdma", err) < 0)
		return -1;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_str *dev = &m->via.map.ptr[i].key.via.str;
		const msgpack_object *lim = &m->via.map.ptr[i].val;
		int len = snprintf(v, sizeof(v), "%.*s", (int)dev->size, dev->ptr);
		for (uint32_t j = 0; j < lim->via.map.size; j++) {
			const msgpack_object *fv = &lim->via.map.ptr[j].val;
			if (fv->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				continue; /* nil: not limited */
			bool handles = lim->via.map.ptr[j].key.via.str.ptr[3] == 'H'; /* hcaHandles */
			len += snprintf(v + len, sizeof(v) - (size_t)len, " %s=%" PRIu64,
					handles ? "hca_handle" : "hca_object", fv->via.u64);
		}
		if (put(dir, "rdma.max", v, "rdma", err) < 0)
			return -1;
	}
	return 0;
}

/* linux.resources.unified: file → value in the container's v2 node. The
 * decoder refused keys with "/" or ".."; here a key must name an existing
 * regular file of the node, and cgroup.* files stay the runtime's
 * (membership, freezing, killing, subtree control). */
static int apply_unified(const char *rel, const msgpack_object *m, struct cv_error *err)
{
	if (!m || m->via.map.size == 0)
		return 0;
	if (!lay.v2[0])
		return no_such("unified", "this host has no cgroup v2 hierarchy", err);
	char dir[CG_PATH_MAX], key[256], val[4096];
	node_dir(dir, sizeof(dir), lay.v2, rel);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_str *k = &m->via.map.ptr[i].key.via.str;
		const msgpack_object_str *v = &m->via.map.ptr[i].val.via.str;
		snprintf(key, sizeof(key), "%.*s", (int)k->size, k->ptr);
		if (strncmp(key, "cgroup.", 7) == 0)
			return cv_errf(err, 0,
				       FIELD_PREFIX "unified[\"%s\"]: cgroup.* files are the runtime's to write", key);
		if (v->size >= sizeof(val))
			return cv_errf(err, 0, FIELD_PREFIX "unified[\"%s\"]: value too long", key);
		memcpy(val, v->ptr, v->size);
		val[v->size] = '\0';
		char p[CG_PATH_MAX];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, key);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
			return cv_errf(err, ENOENT,
				       FIELD_PREFIX "unified[\"%s\"]: not a file of the container's cgroup %s "
				       "(is its controller enabled on this host?)", key, dir);
		char field[300];
		snprintf(field, sizeof(field), "unified[\"%s\"]", key);
		if (put(dir, key, val, field, err) < 0)
			return -1;
	}
	return 0;
}

/* memory.checkBeforeUpdate (runc): refuse a limit below what the cgroup
 * uses now, instead of letting the kernel reclaim or OOM-kill to meet it. */
static int check_before_update(const char *dir, const struct cg_ops *ops, const struct oci_memory *m,
			       struct cv_error *err)
{
	if (!m->check_before_update || !m->has_limit || m->limit <= 0)
		return 0;
	const char *file = ops == &v2_ops ? "memory.current" : "memory.usage_in_bytes";
	char buf[64];
	ssize_t r = read_small(dir, file, buf, sizeof(buf));
	if (r < 0)
		return cv_errf(err, (int)-r, FIELD_PREFIX "memory.checkBeforeUpdate: reading %s/%s", dir,
			       file);
	unsigned long long used = strtoull(buf, NULL, 10);
	if ((unsigned long long)m->limit < used)
		return cv_errf(err, 0,
			       FIELD_PREFIX "memory.checkBeforeUpdate: the new memory.limit (%" PRId64
			       ") is below the current usage (%llu)",
			       m->limit, used);
	return 0;
}

int apply(const char *rel, const struct oci_resources *res, struct cv_error *err)
{
	char dir[CG_PATH_MAX];
	const struct cg_ops *ops = NULL;
	if (!res)
		return 0;
	if (res->has_memory)
		warn_kmem(&res->memory);
	if (res->has_memory && memory_set(&res->memory)) {
		if (ctrl_dir(C_MEMORY, rel, dir, sizeof(dir), &ops, FIELD_PREFIX "memory", err) < 0 ||
		    check_before_update(dir, ops, &res->memory, err) < 0 ||
		    ops->memory(dir, &res->memory, err) < 0)
			return -1;
	}
	if (res->has_pids && res->pids.has_limit) {
		if (ctrl_dir(C_PIDS, rel, dir, sizeof(dir), &ops, FIELD_PREFIX "pids", err) < 0 ||
		    ops->pids(dir, &res->pids, err) < 0)
			return -1;
	}
	if (res->has_cpu && cpu_set(&res->cpu)) {
		if (ctrl_dir(C_CPU, rel, dir, sizeof(dir), &ops, FIELD_PREFIX "cpu", err) < 0 ||
		    ops->cpu(dir, &res->cpu, err) < 0)
			return -1;
	}
	if (wants_cpuset(res)) {
		if (ctrl_dir(C_CPUSET, rel, dir, sizeof(dir), &ops, FIELD_PREFIX "cpu.cpus/mems", err) < 0 ||
		    ops->cpuset(dir, &res->cpu, err) < 0)
			return -1;
	}
	if (res->has_blkio && blkio_set(&res->blkio)) {
		if (ctrl_dir(C_BLKIO, rel, dir, sizeof(dir), &ops, FIELD_PREFIX "blockIO", err) < 0 ||
		    ops->blkio(dir, &res->blkio, err) < 0)
			return -1;
	}
	if (apply_hugetlb(rel, res, err) < 0 ||
	    (res->has_network && apply_network(rel, &res->network, err) < 0) ||
	    apply_rdma(rel, res->rdma, err) < 0)
		return -1;
	/* Last, as in runc: the raw map has the final word. */
	return apply_unified(rel, res->unified, err);
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
	/* Every v2 controller a resource may be written to, whether or not
	 * this spec sets it: `update` may set it later (runc enables them all
	 * too). A controller bound to v1 is never listed by v2. */
	(void)res;
	const enum cg_ctrl cs[] = { C_MEMORY, C_PIDS, C_CPU, C_CPUSET, C_IO, C_HUGETLB, C_RDMA, C_MISC };
	unsigned want = 0;
	for (size_t i = 0; i < ARRAY_SIZE(cs); i++)
		want |= lay.v2_ctrls & (1u << cs[i]);
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

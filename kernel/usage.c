/* Usage.Collect, Usage.UsageFD and containerManager.Event (docs/API.md):
 * the root container's cgroup accounting, as the seed's MemoryUsage, a
 * shared memfd kept current, and runc's stats.
 *
 * The memfd: boot makes one on the first UsageFD (MFD_ALLOW_SEALING, 16
 * bytes, sealed against shrink, grow and further sealing), maps it shared
 * and keeps the fd; each UsageFD hands out a dup. From then on a 100 ms
 * ev_timer (unref'd: it never keeps the loop alive) and every Collect
 * rewrite it. The module owns the fd, the mapping and the timer for the
 * life of boot. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/procfs.h"
#include "kernel/park.h"

#define USAGE_FD_SIZE 16
#define USAGE_FD_TICK 0.1

static struct {
	int fd;                  /* -1 until the first UsageFD */
	_Atomic uint64_t *words; /* [0] Total, [1] Mapped */
	ev_timer tick;
	struct sandbox *sb;
} ufd = { .fd = -1 };

struct mem_usage {
	uint64_t unknown, system, anonymous, page_cache, mapped, tmpfs, ramdiskfs, total;
};

static int collect(struct sandbox *sb, bool full, struct mem_usage *u, struct cv_error *err)
{
	memset(u, 0, sizeof(*u));
	if (!sb->root)
		return cv_errf(err, 0, "memory usage: the sandbox has no root container");
	struct cgroup_mem_stat st;
	if (cgroup_memory_stat(&sb->root->cg, &st, err) < 0)
		return -1;
	u->total = st.usage;
	u->mapped = st.mapped;
	if (!full) {
		u->unknown = u->total > u->mapped ? u->total - u->mapped : 0;
		return 0;
	}
	/* The categories partition Total (Mapped overlaps PageCache/Tmpfs):
	 * PageCache is file pages that are not shmem, System the rest
	 * (kernel memory and whatever memory.stat does not name). */
	u->anonymous = st.anon;
	u->tmpfs = st.shmem;
	u->page_cache = st.file > st.shmem ? st.file - st.shmem : 0;
	uint64_t named = u->anonymous + u->tmpfs + u->page_cache;
	u->system = u->total > named ? u->total - named : 0;
	return 0;
}

static void ufd_store(const struct mem_usage *u)
{
	if (!ufd.words)
		return;
	/* Little-endian hosts only (x86-64, arm64): the layout is LE u64s. */
	atomic_store_explicit(&ufd.words[0], u->total, memory_order_relaxed);
	atomic_store_explicit(&ufd.words[1], u->mapped, memory_order_relaxed);
}

static void ufd_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	struct mem_usage u;
	struct cv_error err = { 0 };
	if (collect(ufd.sb, false, &u, &err) == 0)
		ufd_store(&u); /* else keep the last value (the cgroup may be going away) */
}

static int ufd_setup(struct sandbox *sb, struct cv_error *err)
{
	if (ufd.fd >= 0)
		return 0;
	int fd = memfd_create("memory-usage", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return cv_errf(err, errno, "UsageFD: memfd_create");
	if (ftruncate(fd, USAGE_FD_SIZE) < 0) {
		cv_errf(err, errno, "UsageFD: sizing the memfd");
		close(fd);
		return -1;
	}
	void *p = mmap(NULL, USAGE_FD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		cv_errf(err, errno, "UsageFD: mapping the memfd");
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		cv_errf(err, errno, "UsageFD: sealing the memfd");
		munmap(p, USAGE_FD_SIZE);
		close(fd);
		return -1;
	}
	ufd.fd = fd;
	ufd.words = p;
	ufd.sb = sb;
	ev_timer_init(&ufd.tick, ufd_tick, USAGE_FD_TICK, USAGE_FD_TICK);
	ev_timer_start(core_loop(), &ufd.tick);
	ev_unref(core_loop());
	return 0;
}

struct collect_opts {
	bool full;
};
static const struct mpk_field collect_fields[] = {
	{ "Full", MPK_BOOL, offsetof(struct collect_opts, full), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema collect_schema = { "MemoryUsageOpts", sizeof(struct collect_opts),
						  collect_fields, ARRAY_SIZE(collect_fields) };

static void pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
	mpk_pack_key(pk, key);
	msgpack_pack_uint64(pk, v);
}

void usage_collect(struct rpc_call *call, const msgpack_object *arg)
{
	struct collect_opts o = { 0 };
	struct cv_error err = { 0 };
	if (arg->type != MSGPACK_OBJECT_NIL &&
	    mpk_decode(arg, &collect_schema, &o, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	struct mem_usage u;
	if (collect(rpc_call_ctx(call), o.full, &u, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	if (!o.full)
		ufd_store(&u);
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 8);
	pack_u64(pk, "Unknown", u.unknown);
	pack_u64(pk, "System", u.system);
	pack_u64(pk, "Anonymous", u.anonymous);
	pack_u64(pk, "PageCache", u.page_cache);
	pack_u64(pk, "Mapped", u.mapped);
	pack_u64(pk, "Tmpfs", u.tmpfs);
	pack_u64(pk, "Ramdiskfs", u.ramdiskfs);
	pack_u64(pk, "Total", u.total);
	rpc_reply_packed(call);
}

struct usage_fd_opts {
	int64_t version;
};
static const struct mpk_field usage_fd_fields[] = {
	{ "Version", MPK_I64, offsetof(struct usage_fd_opts, version), MPK_NONE, MPK_NONE,
	  MPK_REQUIRED, NULL },
};
static const struct mpk_schema usage_fd_schema = { "MemoryUsageFileOpts",
						   sizeof(struct usage_fd_opts), usage_fd_fields,
						   ARRAY_SIZE(usage_fd_fields) };

void usage_fd(struct rpc_call *call, const msgpack_object *arg)
{
	struct usage_fd_opts o = { 0 };
	struct cv_error err = { 0 };
	if (mpk_decode(arg, &usage_fd_schema, &o, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	if (o.version != 1) {
		rpc_fail(call, "MemoryUsageFileOpts.Version: unsupported version requested: %lld "
			       "(supported: 1)",
			 (long long)o.version);
		return;
	}
	struct sandbox *sb = rpc_call_ctx(call);
	struct mem_usage u;
	if (collect(sb, false, &u, &err) < 0 || ufd_setup(sb, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	ufd_store(&u);
	int fd = fcntl(ufd.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		cv_errf(&err, errno, "UsageFD: duplicating the memfd");
		rpc_fail_err(call, &err);
		return;
	}
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 1);
	mpk_pack_key(pk, "Files");
	msgpack_pack_uint32(pk, 1);
	rpc_reply_packed_fds(call, &fd, 1);
}

void cm_event(struct rpc_call *call, const msgpack_object *arg)
{
	char *cid = NULL;
	struct container *c = arg_container(call, arg, &cid);
	if (!c)
		return;
	struct cv_error err = { 0 };
	struct cgroup_cpu_stat cpu;
	struct cgroup_mem_stat mem;
	uint64_t pids = 0, pids_limit = 0;
	if (cgroup_cpu_stat(&c->cg, &cpu, &err) < 0 || cgroup_memory_stat(&c->cg, &mem, &err) < 0 ||
	    cgroup_pids_stat(&c->cg, &pids, &pids_limit, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 2);
	mpk_pack_key(pk, "event");
	msgpack_pack_map(pk, 3);
	mpk_pack_key(pk, "type");
	mpk_pack_str(pk, "stats");
	mpk_pack_key(pk, "id");
	mpk_pack_str(pk, cid);
	mpk_pack_key(pk, "data");
	msgpack_pack_map(pk, 4);

	mpk_pack_key(pk, "cpu");
	msgpack_pack_map(pk, 1);
	mpk_pack_key(pk, "usage");
	msgpack_pack_map(pk, 3);
	pack_u64(pk, "total", cpu.total_ns);
	pack_u64(pk, "kernel", cpu.kernel_ns);
	pack_u64(pk, "user", cpu.user_ns);

	mpk_pack_key(pk, "memory");
	msgpack_pack_map(pk, mem.file ? 5 : 4);
	if (mem.file)
		pack_u64(pk, "cache", mem.file);
	mpk_pack_key(pk, "usage");
	msgpack_pack_map(pk, mem.max_usage ? 4 : 3);
	pack_u64(pk, "limit", mem.limit);
	pack_u64(pk, "usage", mem.usage);
	if (mem.max_usage)
		pack_u64(pk, "max", mem.max_usage);
	pack_u64(pk, "failcnt", mem.failcnt);
	static const char *const empty_entries[] = { "swap", "kernel", "kernelTCP" };
	for (size_t i = 0; i < ARRAY_SIZE(empty_entries); i++) {
		mpk_pack_key(pk, empty_entries[i]);
		msgpack_pack_map(pk, 2);
		pack_u64(pk, "limit", 0);
		pack_u64(pk, "failcnt", 0);
	}

	mpk_pack_key(pk, "pids");
	msgpack_pack_map(pk, 2);
	pack_u64(pk, "current", pids);
	pack_u64(pk, "limit", pids_limit);

	/* The interfaces of the container's network namespace (runc reports
	 * its configured ones; cvisor configures none, so every one but lo). */
	struct proc_netdev nd[PROCFS_NETDEV_MAX];
	size_t n_nd = 0;
	if (!c->init || c->init->host_pid <= 0 || procfs_read_netdev(c->init->host_pid, nd, &n_nd) < 0)
		n_nd = 0;
	mpk_pack_key(pk, "network_interfaces");
	msgpack_pack_array(pk, (uint32_t)n_nd);
	for (size_t i = 0; i < n_nd; i++) {
		msgpack_pack_map(pk, 9);
		mpk_pack_key(pk, "name");
		mpk_pack_str(pk, nd[i].name);
		pack_u64(pk, "rx_bytes", nd[i].rx_bytes);
		pack_u64(pk, "rx_packets", nd[i].rx_packets);
		pack_u64(pk, "rx_errors", nd[i].rx_errors);
		pack_u64(pk, "rx_dropped", nd[i].rx_dropped);
		pack_u64(pk, "tx_bytes", nd[i].tx_bytes);
		pack_u64(pk, "tx_packets", nd[i].tx_packets);
		pack_u64(pk, "tx_errors", nd[i].tx_errors);
		pack_u64(pk, "tx_dropped", nd[i].tx_dropped);
	}

	mpk_pack_key(pk, "containerUsage");
	msgpack_pack_map(pk, 1);
	mpk_pack_key(pk, cid);
	msgpack_pack_uint64(pk, cpu.total_ns);
	rpc_reply_packed(call);
}

void usage_shutdown(void)
{
	if (ufd.fd < 0)
		return;
	ev_ref(core_loop()); /* balances the ev_unref of ufd_setup */
	ev_timer_stop(core_loop(), &ufd.tick);
	munmap((void *)ufd.words, USAGE_FD_SIZE);
	close(ufd.fd);
	ufd.fd = -1;
	ufd.words = NULL;
	ufd.sb = NULL;
}

void usage_describe(FILE *out)
{
	if (ufd.fd < 0)
		return;
	fprintf(out, "  watcher usage memfd refresh (timer 100 ms, memfd fd %d): %s\n", ufd.fd,
		ev_is_active(&ufd.tick) ? "active" : "stopped");
}

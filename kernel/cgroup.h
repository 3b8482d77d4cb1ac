#pragma once
/* One cgroup per container. Membership, freeze, kill and events through the
 * unified (v2) hierarchy, which works even where every controller lives in
 * v1 (these hybrid hosts); the spec's resource limits on whichever hierarchy
 * has the controller (v2 if it lists it in cgroup.controllers, else v1).
 * Paths are relative to each hierarchy's root ("k8s.io/web"). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"

/* Every v1 controller cvisor knows, each on its own hierarchy at most. */
#define CGROUP_V1_MAX 16

struct cgroup {
	char *path;                       /* relative path, owned */
	int v2_dirfd;                     /* O_DIRECTORY of the v2 node (CLONE_INTO_CGROUP), or -1 */
	int v1_procs_fd[CGROUP_V1_MAX];   /* O_WRONLY|O_CLOEXEC cgroup.procs of each v1 node we made */
	int n_v1;
};

/* Where the unified hierarchy is mounted ("/sys/fs/cgroup/unified" on hybrid
 * hosts, "/sys/fs/cgroup" on pure v2), or NULL if none. */
const char *cgroup_v2_root(void);

/* The container's cgroup, relative to each hierarchy's root, from the
 * spec's linux.cgroupsPath as runc resolves it (kernel/cgroup_path.c):
 * - absolute "/a/b": "a/b" in every hierarchy;
 * - relative "a/b", or none (the container id): under the parent of the
 *   caller's own unified cgroup (runc's fs2 rule; without a unified
 *   hierarchy, under the caller's memory cgroup, runc's fs rule);
 * - "slice:prefix:name": the nodes systemd gives the transient scope,
 *   "<expanded slice>/<prefix>-<name>.scope" (runc's fs driver reads the
 *   same path).
 * systemd true (--systemd-cgroup): the same scope path, which systemd makes
 * (kernel/cgroup_systemd.h); the path must then be the systemd form, or
 * none for ":cvisor:<id>" (runc's default scope, with cvisor's prefix).
 * "." and ".." components are refused, naming the field. */
int cgroup_resolve_path(const char *cgroups_path, const char *id, bool systemd, char *out,
			size_t n, struct cv_error *err);
/* The systemd slice ("machine.slice") and scope unit ("libpod-ID.scope")
 * that "slice:prefix:name" (or none: ":cvisor:<id>") names. */
int cgroup_systemd_names(const char *cgroups_path, const char *id, char *slice, size_t sn,
			 char *unit, size_t un, struct cv_error *err);

/* Opens an existing node (no mkdir, no limits), e.g. for `cvisor update`. */
int cgroup_open(struct cgroup *cg, const char *path, struct cv_error *err);
/* Names a node by its path and opens nothing: enough for what goes by path
 * (cgroup_freeze_requested), where cgroup_open would open a fd per
 * hierarchy. cgroup_close frees it. */
int cgroup_name(struct cgroup *cg, const char *path, struct cv_error *err);

/* mkdir -p the node in the v2 hierarchy and in every mounted v1 hierarchy
 * of a controller cvisor knows (memory, pids, cpu, cpuacct, cpuset,
 * freezer, devices, blkio, hugetlb, net_cls, net_prio, perf_event, rdma,
 * misc), apply the resources (may be NULL; the device rules always, see
 * kernel/cgroup_devices.h), open the fds. On failure nothing is left behind. */
int cgroup_create(struct cgroup *cg, const char *path, const struct oci_resources *res,
		  struct cv_error *err);
/* Applies resources to an existing cgroup (`cvisor update`); device rules
 * only when res lists some (they then replace the container's list). */
int cgroup_update(const struct cgroup *cg, const struct oci_resources *res, struct cv_error *err);

/* In a freshly cloned child before it drops privileges: writes "0" to every
 * v1 cgroup.procs fd, joining the v1 nodes (CLONE_INTO_CGROUP only placed it
 * in v2). Async-signal-safe; returns 0 or -errno. Used for exec; a new init is
 * placed from outside with cgroup_place_v1(). */
int cgroup_join_self_v1(const struct cgroup *cg);

/* From outside: moves pid into every v1 node. A v1 migration waits for an
 * RCU grace period (5-15 ms on these VMs), so boot does it while the new
 * init sets up its mounts, instead of the init doing it first. */
int cgroup_place_v1(const struct cgroup *cg, pid_t pid, struct cv_error *err);

/* Host PIDs of every process in the node (v2 cgroup.procs). *pids is
 * malloc'd, the caller frees it. */
int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n, struct cv_error *err);
/* SIGKILL everything in the node (v2 cgroup.kill; falls back to signalling
 * each pid of cgroup.procs when cgroup.kill is missing). Works on a frozen
 * node: the v2 freezer lets SIGKILL through; a v1-frozen node is thawed once
 * SIGKILL is queued to every member, or the members would never die. */
int cgroup_kill(const struct cgroup *cg, struct cv_error *err);
/* Signals every process of the node. In a frozen node the signals stay
 * queued until the node is thawed. */
int cgroup_signal_all(const struct cgroup *cg, int signo, struct cv_error *err);
/* Freezes or thaws the node: v2 cgroup.freeze where it exists, else the v1
 * freezer. Asynchronous on v2: cgroup.events says when it is done. */
int cgroup_freeze(const struct cgroup *cg, bool frozen, struct cv_error *err);
/* *frozen = whether a freeze is asked for (cgroup.freeze is 1, or the v1
 * freezer.state is FROZEN or FREEZING), done or under way. */
int cgroup_freeze_requested(const struct cgroup *cg, bool *frozen, struct cv_error *err);
/* Opens cgroup.events of the v2 node (for an inotify/ev watcher), or -1. */
int cgroup_events_fd(const struct cgroup *cg, struct cv_error *err);
/* Memory usage in bytes (v1 memory.usage_in_bytes or v2 memory.current). */
int cgroup_memory_usage(const struct cgroup *cg, uint64_t *bytes, struct cv_error *err);

/* Statistics (kernel/cgroup_stats.c), read from whichever hierarchy holds
 * each controller. Sizes in bytes; UINT64_MAX is "max" (no limit). */
struct cgroup_mem_stat {
	uint64_t usage;     /* v1 memory.usage_in_bytes, v2 memory.current */
	uint64_t limit;     /* v1 memory.limit_in_bytes, v2 memory.max */
	uint64_t max_usage; /* v1 memory.max_usage_in_bytes, v2 memory.peak (0 if missing) */
	uint64_t failcnt;   /* v1 memory.failcnt, 0 on v2 */
	/* memory.stat (v1 total_rss, total_cache, total_shmem, total_mapped_file;
	 * v2 anon, file, shmem, file_mapped, kernel) */
	uint64_t anon, file, shmem, mapped, kernel;
	bool has_kernel;    /* v2 only: v1 has no single kernel figure */
};
int cgroup_memory_stat(const struct cgroup *cg, struct cgroup_mem_stat *st, struct cv_error *err);
/* CPU time in ns: v1 cpuacct.usage and cpuacct.stat (ticks scaled), v2
 * cpu.stat usage_usec, user_usec, system_usec. */
struct cgroup_cpu_stat {
	uint64_t total_ns, user_ns, kernel_ns;
};
int cgroup_cpu_stat(const struct cgroup *cg, struct cgroup_cpu_stat *st, struct cv_error *err);
/* pids.current and pids.max ("max" gives 0, as runc reports it). */
int cgroup_pids_stat(const struct cgroup *cg, uint64_t *current, uint64_t *limit,
		     struct cv_error *err);

/* Closes the fds and frees the path; leaves the nodes in place. */
void cgroup_close(struct cgroup *cg);
/* rmdir the node in every hierarchy (processes must be gone; retries briefly
 * on EBUSY), then cgroup_close(). */
int cgroup_destroy(struct cgroup *cg, struct cv_error *err);
/* rmdir by relative path in every hierarchy, deepest first, for `cvisor
 * delete` when boot is gone. Kills what is left (v2 cgroup.kill) first.
 * Missing nodes are not an error. Blocking (it sleeps while members exit):
 * for the CLI; boot's loop uses cgroup_remove_start(). */
int cgroup_remove_path(const char *path, struct cv_error *err);

/* Non-blocking variants for boot's loop: the same steps as cgroup_kill()
 * and cgroup_remove_path(), each wait a 1 ms ev_timer tick on core_loop()
 * instead of a sleep, with the same bounds (100 kill rounds, ~1 s for the
 * members to exit, 50 tries of a busy rmdir). done runs exactly once, from
 * the loop and never inline, unless the op is cancelled first; the op is
 * freed before done runs. NULL (err set, done never called) if it cannot
 * start. */
struct cgroup_op;
typedef void (*cgroup_op_done_fn)(void *data, int rc, const struct cv_error *err);
struct cgroup_op *cgroup_kill_start(const struct cgroup *cg, cgroup_op_done_fn done, void *data,
				    struct cv_error *err);
struct cgroup_op *cgroup_remove_start(const char *path, cgroup_op_done_fn done, void *data,
				      struct cv_error *err);
/* Stops and frees an op whose done has not run; done will not run. */
void cgroup_op_cancel(struct cgroup_op *op);

/* An O_RDONLY|O_DIRECTORY fd of the container's node in the hierarchy
 * `controller` picks (Cgroups.ReadControlFiles, docs/API.md): on a host
 * without v1 hierarchies the unified node, whatever controller says; else
 * the v1 hierarchy carrying controller, or the unified node when it lists
 * it (or controller is empty and there is a unified hierarchy). The caller
 * closes it. Errors name the controller. */
int cgroup_node_dirfd(const struct cgroup *cg, const char *controller, struct cv_error *err);

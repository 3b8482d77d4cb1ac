#pragma once
/* Visiting the processes of the sandbox's containers without blocking the
 * loop: the host PIDs are snapshotted from the cgroups (one read of each
 * cgroup.procs), then visited PIDSCAN_CHUNK at a time (fewer when a slice
 * has taken PIDSCAN_SLICE_NS), one slice per turn
 * of the loop (core/chunk.h), with the RPC call that asked parked
 * meanwhile. If the client goes away, the scan stops and frees everything
 * (the rpc cancel hook). Containers are only freed after the loop has
 * ended (sandbox_free), so the snapshot's container pointers stay valid. */
#include <stdbool.h>
#include <sys/types.h>

#include "core/chunk.h"
#include "kernel/model.h"
#include "rpc/server.h"

#define PIDSCAN_CHUNK 64
#define PIDSCAN_SLICE_NS 2000000LL /* 2 ms */

struct pidscan;
/* Visits one process; returns false to stop the scan there. */
typedef bool (*pidscan_visit_fn)(struct pidscan *s, struct container *c, pid_t host_pid);
/* After the last visit: runs once per turn of the loop while it returns
 * CHUNK_MORE (for bounded follow-up work). It must answer s->call before
 * returning CHUNK_DONE, and free the object holding s then. With cancelled
 * (the client went away) it runs once: it must not answer, only free. */
typedef enum chunk_step (*pidscan_end_fn)(struct pidscan *s, bool cancelled);

struct pidscan {
	struct chunk ch;
	struct rpc_call *call;
	struct sandbox *sb;
	pid_t *pids;                /* host PIDs, snapshot */
	struct container **owners;  /* the container of each */
	size_t n, next;
	bool visited;               /* every visit done (or stopped) */
	pidscan_visit_fn visit;
	pidscan_end_fn end;
};

/* Snapshots the processes of `only` (every container with a cgroup when
 * NULL), parks the call and schedules the first slice; never visits inline.
 * Returns 0, or -1 with err set and nothing parked (the caller answers). */
int pidscan_start(struct pidscan *s, struct rpc_call *call, struct sandbox *sb,
		  struct container *only, pidscan_visit_fn visit, pidscan_end_fn end,
		  const char *what, struct cv_error *err);

#pragma once
/* The exec spawner: a small process, forked from boot once per container
 * (at its first exec), that forks exec intermediates so that boot never
 * forks while it serves clients (docs/DESIGN.md, "Exec without forking
 * boot").
 *
 * Forking boot stalls its loop for the copy of its page tables, and
 * every page boot writes afterwards takes a copy-on-write fault with a
 * TLB flush; under an exec loop that put 1-1.5 ms into other clients'
 * round trips. The spawner is forked while boot is still small, and its
 * intermediates are forked ahead of need:
 *
 *   boot ──"one more"──▶ spawner ──clone3(CLONE_PARENT)──▶ intermediate
 *   boot ◀──{pid, pidfd, request socket}── spawner      (a child of boot)
 *   boot ──{packed args (memfd), report socket, fds}──▶ intermediate
 *   intermediate: joins the container's cgroups and namespaces,
 *                 clone3(CLONE_PARENT) the target, sends its pid, exits
 *
 * Both intermediate and target are children of boot (CLONE_PARENT), which
 * reaps them through pidfds as before. The container's init pidfd, cgroup
 * fds and spec are the spawner's copies from its fork; everything per exec
 * is packed by kernel/spawn_wire.h. An intermediate that never gets a
 * request exits when its request socket closes. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ev.h>

#include "core/err.h"
#include "core/list.h"
#include "kernel/spawn.h"

/* What every exec of one container shares. Borrowed: the spawner process
 * holds its own copies from the fork. */
struct spawner_conf {
	int init_pidfd;
	int ns_flags;
	const struct cgroup *cg;
	const struct oci_spec *spec;
};

/* A forked intermediate waiting for its exec. */
struct spawner_mid {
	pid_t pid;
	int pidfd;  /* boot is its parent: reap through this */
	int req_fd; /* SOCK_SEQPACKET: the request goes in, the target's pid comes back */
};

/* --- The processes (blocking where said; used by the queue below and by
 * spawn_exec for callers without a loop). --- */

struct spawner_proc {
	pid_t pid;
	int pidfd;
	int sock; /* non-blocking SOCK_SEQPACKET to the spawner */
};

/* Forks the spawner; it keeps only the fds conf names and its socket. */
int spawner_proc_start(const struct spawner_conf *conf, struct spawner_proc *out,
		       struct cv_error *err);
/* Asks for one more intermediate. 0, or -1 (EAGAIN: the spawner has
 * enough requests queued; ask again after its next answer). */
int spawner_proc_ask(struct spawner_proc *sp, struct cv_error *err);
/* Takes one answer without blocking: 1 with *mid filled, 0 when none is
 * there yet, -1 with err (the spawner failed to fork, or it is gone:
 * err->code ECHILD). */
int spawner_proc_recv(struct spawner_proc *sp, struct spawner_mid *mid, struct cv_error *err);
/* Ends the spawner: closes its socket, kills and reaps it. */
void spawner_proc_stop(struct spawner_proc *sp);

/* An exec's arguments ready to travel: the packed bytes (spawn_wire_pack)
 * and the fds that go beside them. Borrowed by spawner_mid_send. */
struct spawner_packed {
	int memfd;
	const int *fds; /* become guest fds, in the order of the packed table */
	size_t nfds;
	int exec_fd;    /* -1, or the file to run */
};

/* Hands an exec to *mid. On success *p is the spawn in flight (what
 * spawn_exec_finish takes: mid's pidfd and socket, plus a new report
 * channel) and *mid is consumed; on failure *mid is killed and reaped.
 * Never blocks. */
int spawner_mid_send(struct spawner_mid *mid, const struct spawner_packed *pk,
		     struct spawn_pending *p, struct cv_error *err);
/* Kills and reaps an intermediate that will not be used. */
void spawner_mid_discard(struct spawner_mid *mid);

/* The whole exec, blocking, for callers without a loop (tests): starts a
 * spawner for this one exec, hands the exec to its intermediate, waits for
 * the intermediate and fills *out as spawn_exec_finish does. */
int spawn_exec(const struct spawn_exec_args *a, struct spawned *out, struct cv_error *err);

/* --- The queue on boot's loop --- */

struct spawner_req;
/* Called from the loop once a queued exec is handed to an intermediate (p
 * set, err NULL) or cannot be (p NULL). */
typedef void (*spawner_done_fn)(struct spawner_req *r, struct spawn_pending *p,
				const struct cv_error *err);

/* One exec waiting for an intermediate: its own copies of the packed
 * arguments and of the fds, so the RPC request it came from may be freed. */
struct spawner_req {
	struct list_node link;
	int memfd;
	int *fds;    /* dup'd guest fds (malloc'd array) */
	size_t nfds;
	int exec_fd; /* dup'd, or -1 */
	spawner_done_fn done;
	bool queued;
};

struct spawner {
	struct spawner_conf conf;
	struct spawner_proc proc;
	bool running;
	ev_io sock_w;
	struct spawner_mid ready;
	bool has_ready;
	int asked;                /* intermediates asked for, not yet answered */
	size_t n_waiting;
	struct list_head waiting; /* spawner_req, oldest first */
};

/* Most intermediates asked for at once: a burst of execs is served as
 * they come, without a fork storm. */
#define SPAWNER_MAX_ASKED 16

void spawner_init(struct spawner *s, const struct spawner_conf *conf);
/* Hands an exec to a spare intermediate (returns 1, *p set), or queues
 * it in r (returns 0; r->done runs later from the loop); starts the
 * spawner process on first use. -1 with err when neither is possible (r
 * then owns nothing). */
int spawner_submit(struct spawner *s, const struct spawn_exec_args *a, struct spawner_req *r,
		   spawner_done_fn done, struct spawn_pending *p, struct cv_error *err);
/* Drops a queued request (its owner is going away); done is not called. */
void spawner_cancel(struct spawner *s, struct spawner_req *r);
/* Stops the process and any spare intermediate. No request may be queued. */
void spawner_destroy(struct spawner *s);

#pragma once
/* pidns.c helpers beyond model.h's: translating what procfs already read. */
#include "kernel/model.h"
#include "kernel/procfs.h"
#include "rpc/server.h"

/* The PID in the sandbox root namespace from a status already read, or -1
 * when the process is not in that namespace. */
pid_t pidns_of_status(const struct sandbox *sb, const struct proc_status *st);

/* Finds a live process of the sandbox by root-namespace PID without
 * blocking the loop: the lookup runs as a pidscan
 * (kernel/pidscan.h) with the call parked; done runs from the loop with
 * the host PID (-1 when no process of the sandbox has ns_pid) and the
 * container holding it, and must answer the call. `want` and `arg` (a
 * caller's value, e.g. a signal number) are handed back as they are. If
 * the client goes away first, done never runs. Returns 0, or -1 after
 * answering the call with the error. */
typedef void (*pidns_found_fn)(struct rpc_call *call, struct container *want, pid_t ns_pid,
			       pid_t host, struct container *owner, int arg);
int pidns_find_start(struct rpc_call *call, struct sandbox *sb, struct container *want,
		     pid_t ns_pid, pidns_found_fn done, int arg);

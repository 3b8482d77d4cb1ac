#pragma once
/* The per-exec part of struct spawn_exec_args as bytes, so that boot can
 * hand an exec to an intermediate it did not fork itself (kernel/spawner.h).
 * What belongs to the container (init pidfd, namespaces, cgroup, spec) is
 * not carried: the intermediate has it from the spawner's fork.
 *
 * The bytes travel in a memfd: an argv or environment of any size costs
 * one write and one fd, never a partial send on a non-blocking socket.
 * The fds themselves travel beside it (SCM_RIGHTS), in the order
 * spawn_wire_fds_order documents. */
#include <stddef.h>

#include "core/err.h"
#include "kernel/spawn.h"

/* Largest packed exec the intermediate accepts (argv + env + fd table). */
#define SPAWN_WIRE_MAX (64u << 20)

/* Writes the per-exec fields of *a (argv, envv, filename, cwd, user,
 * groups, capabilities, no_new_privs, guest fd numbers, whether exec_fd
 * and stdio_is_pty are set) into a new memfd; *memfd is the caller's. */
int spawn_wire_pack(const struct spawn_exec_args *a, int *memfd, struct cv_error *err);

/* The intermediate's side: reads memfd and fills the same fields of *a,
 * pointing into *storage (malloc'd; the caller frees it, or simply exits).
 * a->fds, a->exec_fd and the container fields are left for the caller.
 * Every length is checked against the size read before it is used. */
int spawn_wire_unpack(int memfd, struct spawn_exec_args *a, void **storage,
		      struct cv_error *err);

/* Same, from bytes already in memory (the fuzz target and unit tests). */
int spawn_wire_decode(const void *buf, size_t len, struct spawn_exec_args *a, void **storage,
		      struct cv_error *err);

#pragma once
/* The sandbox: the boot process's model of its containers and tasks. */
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

struct oci_spec;

/* Everything `cvisor boot` is handed by `cvisor create`. */
struct boot_args {
	const char *id;         /* sandbox ID = root container ID */
	const char *bundle;     /* absolute bundle path */
	int ctl_fd;             /* bound, not listening control socket; taken */
	int sync_fd;            /* write end of the sync pipe; taken (one byte when created) */
	const void *spec;       /* msgpack form of config.json */
	size_t spec_len;
	int stdio[3];           /* the root container's stdio (borrowed; boot keeps them) */
	int console_fd;         /* -1, or the console socket (connected) for process.terminal; taken */
	/* -1, or the root as a detached mount cloned by `create`, followed by
	 * n_bind_fds fds (root_tree + 1 ...), one detached mount per bind
	 * mount of the spec in its order; all taken (closed once the init has
	 * them). */
	int root_tree;
	size_t n_bind_fds;
	/* OCI hooks, at the init's hook point (kernel/hooks.h; cmd/boot.c):
	 * runs prestart and createRuntime for the init at host pid init_pid
	 * and makes the state files its createContainer and startContainer
	 * hooks read (state_fds[0], [1]; -1 when that list is empty; the
	 * caller closes them). NULL: a spec with hooks is refused. */
	int (*hook_point)(void *ctx, const struct oci_spec *spec, pid_t init_pid, int state_fds[2],
			  struct cv_error *err);
	void *hook_ctx;
	int net_mode;           /* enum net_mode: --network (kernel/network_mode.h) */
};

/* Creates the root container, writes the sync byte, serves the control
 * socket until the root container's init ends. Returns the init's wait
 * status (>= 0), or -1 with err set if the sandbox could not be created
 * (then no sync byte was written). */
int sandbox_boot(const struct boot_args *a, struct cv_error *err);

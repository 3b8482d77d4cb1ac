#pragma once
/* Talking to a sandbox's control socket from the CLI. */
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmd/cli.h"
#include "core/err.h"
#include "core/mpk.h"
#include "rpc/client.h"

/* Connects to $ROOT/<id>/control.sock (through /proc/self/fd when the path
 * does not fit in sun_path). The caller closes the client. */
struct rpc_client *cli_connect(const char *id, struct cv_error *err);

/* containerManager.ContainerRuntimeState(id) → 0..3. */
int cli_runtime_state(struct rpc_client *c, const char *id, int64_t *state,
		      struct cv_error *err);

/* How long a sandbox that stopped listening may take to exit. */
#define CLI_BOOT_EXIT_WAIT_MS 5000

/* Waits up to ms for the boot process to be gone; true when it is. */
bool cli_wait_boot_gone(pid_t pid, const char *id, int ms);

/* Loads state.json and asks the sandbox for the container's state. When the
 * control socket cannot be reached and the boot process is gone, the
 * container is stopped (state 3, *status "stopped"). */
int cli_status(const char *id, struct cli_state *st, int64_t *state, const char **status,
	       struct cv_error *err);

/* An integer result (either msgpack integer kind) → int64. */
int cli_result_int(const msgpack_object *o, const char *what, int64_t *out,
		   struct cv_error *err);

/* Signal modes of containerManager.Signal (SEED-REFERENCE §4.8). */
enum { SIGNAL_PROCESS = 0, SIGNAL_ALL = 1, SIGNAL_FOREGROUND = 2, SIGNAL_GROUP = 3 };

/* containerManager.Signal {CID, Signo, PID, Mode}; the server's error
 * comes back verbatim. */
int cli_signal(struct rpc_client *c, const char *id, int signo, int32_t pid, int mode,
	       struct cv_error *err);

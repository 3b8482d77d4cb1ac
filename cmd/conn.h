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

/* Every CLI connection is time-bound so that a stuck sandbox (a stopped or
 * wedged boot) cannot hang the CLI: the connect and each call must finish
 * within this, except the calls that wait for a process to exit
 * (containerManager.Wait and WaitPID), which wait as long as it runs. A
 * healthy boot answers in microseconds. */
#define CLI_RPC_TIMEOUT_MS 5000
/* `list` asks every sandbox in turn: a shorter bound per sandbox keeps a
 * few stuck ones from stalling the whole listing. */
#define CLI_LIST_TIMEOUT_MS 2000

/* Connects to $ROOT/<id>/control.sock (through /proc/self/fd when the path
 * does not fit in sun_path) with CLI_RPC_TIMEOUT_MS as above. A timeout
 * fails with err->code ETIMEDOUT. The caller closes the client. */
struct rpc_client *cli_connect(const char *id, struct cv_error *err);
/* The same with another bound (ms >= 0). */
struct rpc_client *cli_connect_timeout(const char *id, int ms, struct cv_error *err);

/* containerManager.ContainerRuntimeState(id) → enum runtime_state. */
int cli_runtime_state(struct rpc_client *c, const char *id, int64_t *state,
		      struct cv_error *err);

/* How long a sandbox that stopped listening may take to exit. */
#define CLI_BOOT_EXIT_WAIT_MS 5000

/* Waits up to ms for the boot process to be gone; true when it is. */
bool cli_wait_boot_gone(pid_t pid, const char *id, int ms);

/* Loads state.json and asks the sandbox for the container's state, within
 * timeout_ms for the connect and for the call. When the control socket
 * cannot be reached and the boot process is gone, the container is stopped
 * (state 3, *status "stopped"). A sandbox that does not answer in time fails
 * with err->code ETIMEDOUT. */
int cli_status_within(const char *id, int timeout_ms, struct cli_state *st, int64_t *state,
		      const char **status, struct cv_error *err);
/* cli_status_within(CLI_RPC_TIMEOUT_MS). */
int cli_status(const char *id, struct cli_state *st, int64_t *state, const char **status,
	       struct cv_error *err);

/* An integer result (either msgpack integer kind) → int64. */
int cli_result_int(const msgpack_object *o, const char *what, int64_t *out,
		   struct cv_error *err);

/* Signal modes of containerManager.Signal (docs/API.md). */
enum { SIGNAL_PROCESS = 0, SIGNAL_ALL = 1, SIGNAL_FOREGROUND = 2, SIGNAL_GROUP = 3 };

/* containerManager.Signal {CID, Signo, PID, Mode}; the server's error
 * comes back verbatim. */
int cli_signal(struct rpc_client *c, const char *id, int signo, int32_t pid, int mode,
	       struct cv_error *err);

/* Whether the container's cgroup is frozen, or asked to be: a sandbox
 * paused through its socket (Lifecycle.Pause) is paused too, not only one
 * paused with `cvisor pause`. The record's value (state.json "paused")
 * when the cgroup cannot be read. */
bool cli_paused(const struct cli_state *st);

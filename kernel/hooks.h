#pragma once
/* Running OCI hooks (spec.hooks): one hook at a time, fork and execve with
 * the state JSON on stdin, stdout and stderr captured (their tail goes into
 * the error), the hook's timeout enforced with SIGKILL of its process
 * group. Used by the CLI and boot for the hooks of the runtime namespace,
 * and by the container's init for createContainer and startContainer.
 *
 * The hook point of the init (between its mounts and pivot_root, the point
 * runc syncs on for prestart and createRuntime) is a short exchange on the
 * init's set-up socket (kernel/spawn.h):
 *   init → boot: struct spawn_report {SPAWN_HOOKS}
 *   boot: runs prestart and createRuntime
 *   boot → init: one byte HOOKS_GO with SCM_RIGHTS [creating state, created state]
 *                (each -1 = absent when there are no createContainer / startContainer hooks)
 *   init: runs createContainer; later, once released, startContainer. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"

/* Most bytes of a failed hook's stderr (or stdout) quoted in the error. */
#define HOOKS_TAIL_MAX 400

/* Runs hooks[0..n) in order and stops at the first failure: exit status
 * not 0, killed, not executable, or past its timeout (then it and its
 * process group are SIGKILLed). kind names the list in errors:
 * "spec.hooks.createRuntime[0]: /x exited with status 3: <stderr tail>".
 * state_fd is read from offset 0 by each hook as its stdin (a file, so a
 * hook that does not read cannot block us). default_env is the
 * environment of a hook whose env is absent (NULL: ours), as runc gives
 * its own. The hook's cwd is ours. */
int hooks_run(const struct oci_hook *hooks, size_t n, const char *kind, int state_fd,
	      char *const *default_env, struct cv_error *err);

/* Runs hooks[i] alone, named by its index in the list ("spec.hooks.<kind>[i]"
 * in errors): for the lists whose failures are only warnings and do not stop
 * the hooks after them (poststart, poststop). */
int hooks_run_at(const struct oci_hook *hooks, size_t i, const char *kind, int state_fd,
		 char *const *default_env, struct cv_error *err);

/* A sealed memfd (close-on-exec) holding json[0..len): the stdin of hooks. */
int hooks_state_fd(const char *json, size_t len, struct cv_error *err);

/* Whether the init stops at the hook point: the spec has prestart,
 * createRuntime, createContainer or startContainer hooks (startContainer
 * needs the state boot hands over there). Init and boot decide alike. */
bool hooks_init_stops(const struct oci_spec *spec);

/* boot → init: the go-ahead with the two state fds (each may be -1).
 * ctl_fd is boot's end of the set-up socket. */
int hooks_send_go(int ctl_fd, const int state_fds[2], struct cv_error *err);
/* In the init: waits for the go-ahead and receives the state fds
 * (close-on-exec; -1 when absent). EOF (boot gone, or it refused the hooks
 * and kills us) ends the process quietly. */
int hooks_recv_go(int ctl_fd, int state_fds[2], struct cv_error *err);

/* Milliseconds hooks[0..n) may take in all (the sum of their timeouts), -1
 * when one has none: boot's set-up wait grows by it. */
int hooks_budget_ms(const struct oci_hook *hooks, size_t n);

#pragma once
/* OCI hooks on the CLI's side (kernel/hooks.h runs them): the state
 * document they read, the hooks a container keeps in its state.json for
 * `start` (poststart) and `delete` (poststop), and boot's hook point
 * (prestart, createRuntime). */
#include <json-c/json.h>
#include <msgpack.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"

/* The state a hook reads on stdin: the document `cvisor state` prints,
 * with the status of that moment (creating, created, running, stopped). */
struct cli_hook_state {
	const char *id, *status, *bundle, *rootfs, *created;
	pid_t pid;                /* 0 once stopped, as `cvisor state` prints it */
	json_object *annotations; /* borrowed; NULL when none */
};

/* A sealed memfd holding the state JSON (kernel/hooks.h). */
int cli_hooks_state_fd(const struct cli_hook_state *s, struct cv_error *err);

/* config.json's "hooks" object, decoded and checked (core/spec.h). */
struct cli_hooks {
	msgpack_zone *zone;
	struct oci_hooks h; /* all lists empty when there is no "hooks" */
};
/* j may be NULL (no hooks). cli_hooks_free after success or failure. */
int cli_hooks_load(json_object *j, struct cli_hooks *out, struct cv_error *err);
void cli_hooks_free(struct cli_hooks *h);

/* Runs poststart or poststop: a failure is a warning on stderr (the
 * runtime spec's rule for those two), never the verb's failure. */
void cli_hooks_run_warn(const struct oci_hook *hooks, size_t n, const char *kind,
			const struct cli_hook_state *s);

/* Boot's struct boot_args.hook_point (kernel/sandbox.h); ctx is a
 * struct cli_hook_point. */
struct cli_hook_point {
	const char *id, *bundle, *created;
};
int cli_hooks_boot_point(void *ctx, const struct oci_spec *spec, pid_t init_pid, int state_fds[2],
			 struct cv_error *err);

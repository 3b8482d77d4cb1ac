/* containerManager.ExecuteAsync (docs/API.md): run a new process in
 * a running container and answer with its PID in the sandbox root PID
 * namespace once execve succeeded (or with the child's error). */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/metrics.h"
#include "kernel/park.h"
#include "kernel/spawn.h"

/* Guest fds are small numbers in a fresh fd table; bound them so a hostile
 * request cannot make the child dup2 into a huge table. */
#define EXEC_MAX_GUEST_FD 1023

struct exec_caps {
	uint64_t permitted, inheritable, effective, bounding, ambient;
};

struct exec_args {
	char *filename;
	char **argv;
	size_t argc;
	char **envv;
	size_t envc;
	char *wd;
	uint32_t kuid, kgid;
	uint32_t *extra_gids;
	size_t n_extra_gids;
	bool no_new_privs;
	struct exec_caps caps;
	bool has_caps;
	bool stdio_is_pty;
	/* The seed's flag for its sentry's TTY emulation. Decoded so a wrong
	 * type is refused as before, and otherwise ignored: a terminal here is
	 * the host pty passed with StdioIsPty, there is nothing to switch. */
	bool support_ttys;
	int32_t *guest_fds;
	size_t n_guest_fds;
	char *cid;
};

#define F(key, kind, field) \
	{ key, kind, offsetof(struct exec_args, field), MPK_NONE, MPK_NONE, 0, NULL }
#define FV(key, kind, field, count) \
	{ key, kind, offsetof(struct exec_args, field), offsetof(struct exec_args, count), MPK_NONE, 0, NULL }

static const struct mpk_field caps_fields[] = {
	{ "PermittedCaps", MPK_U64, offsetof(struct exec_caps, permitted), MPK_NONE, MPK_NONE, 0, NULL },
	{ "InheritableCaps", MPK_U64, offsetof(struct exec_caps, inheritable), MPK_NONE, MPK_NONE, 0, NULL },
	{ "EffectiveCaps", MPK_U64, offsetof(struct exec_caps, effective), MPK_NONE, MPK_NONE, 0, NULL },
	{ "BoundingCaps", MPK_U64, offsetof(struct exec_caps, bounding), MPK_NONE, MPK_NONE, 0, NULL },
	{ "AmbientCaps", MPK_U64, offsetof(struct exec_caps, ambient), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema caps_schema = { "Capabilities", sizeof(struct exec_caps), caps_fields,
					       ARRAY_SIZE(caps_fields) };

static const struct mpk_field exec_fields[] = {
	F("filename", MPK_STR, filename),
	FV("argv", MPK_STRV, argv, argc),
	FV("envv", MPK_STRV, envv, envc),
	F("wd", MPK_STR, wd),
	F("KUID", MPK_U32, kuid),
	F("KGID", MPK_U32, kgid),
	FV("ExtraKGIDs", MPK_U32V, extra_gids, n_extra_gids),
	F("NoNewPrivileges", MPK_BOOL, no_new_privs),
	{ "Capabilities", MPK_STRUCT, offsetof(struct exec_args, caps), MPK_NONE,
	  offsetof(struct exec_args, has_caps), 0, &caps_schema },
	F("StdioIsPty", MPK_BOOL, stdio_is_pty),
	F("SupportTTYs", MPK_BOOL, support_ttys),
	FV("GuestFDs", MPK_I32V, guest_fds, n_guest_fds),
	{ "ContainerID", MPK_STR, offsetof(struct exec_args, cid), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
};
static const struct mpk_schema exec_schema = { "ExecArgs", sizeof(struct exec_args), exec_fields,
					       ARRAY_SIZE(exec_fields) };

/* FNV-1a over an env key (the bytes before '='), its basis mixed with random
 * bytes (once per process) so that a client cannot precompute
 * keys that all collide and make the dedupe quadratic again. */
static uint32_t env_key_hash(const char *s, size_t len)
{
	static uint32_t seed;
	static bool seeded;
	if (!seeded) {
		if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
			seed = 0; /* still correct, only predictable */
		seeded = true;
	}
	uint32_t h = 2166136261u ^ seed;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* Env: every entry needs '='; duplicates removed, the last one wins and
 * keeps its place (docs/API.md). Result in the call's zone,
 * NULL-terminated. Linear: one backward pass over an open-addressing set
 * of the keys seen so far; an entry is kept when its key was not seen
 * later. (Comparing every pair took 8 s of the reactor for 80k entries.) */
static int dedupe_env(char **in, size_t n, msgpack_zone *zone, char ***out, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(in[i], '=');
		if (!eq || eq == in[i])
			return cv_errf(err, 0, "resolving env: invalid variable: %s", in[i]);
	}
	char **env = msgpack_zone_malloc(zone, (n + 1) * sizeof(char *));
	bool *keep = msgpack_zone_malloc(zone, n ? n : 1);
	size_t cap = 16;
	while (cap < 2 * n) /* load factor <= 1/2; n is bounded by the decoder */
		cap *= 2;
	uint32_t *slots = calloc(cap, sizeof(uint32_t)); /* index + 1; 0 is empty */
	if (!env || !keep || !slots) {
		free(slots);
		return cv_errf(err, ENOMEM, "resolving env");
	}
	for (size_t i = n; i-- > 0;) {
		size_t klen = (size_t)(strchr(in[i], '=') - in[i]);
		size_t s = env_key_hash(in[i], klen) & (cap - 1);
		keep[i] = true;
		for (; slots[s]; s = (s + 1) & (cap - 1)) {
			const char *o = in[slots[s] - 1];
			if (strncmp(o, in[i], klen + 1) == 0) { /* same key and '=' */
				keep[i] = false;
				break;
			}
		}
		if (keep[i])
			slots[s] = (uint32_t)i + 1;
	}
	free(slots);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (keep[i])
			env[m++] = in[i];
	env[m] = NULL;
	*out = env;
	return 0;
}

static int check_fds(const struct exec_args *ea, size_t nfiles, int *exec_fd_index,
		     struct cv_error *err)
{
	*exec_fd_index = -1;
	if (nfiles == ea->n_guest_fds + 1) {
		if (ea->filename && *ea->filename)
			return cv_errf(err, 0, "process must either be started from a file or a filename, not both");
		*exec_fd_index = (int)ea->n_guest_fds;
	} else if (nfiles != ea->n_guest_fds) {
		return cv_errf(err, 0, "length of payload files does not match length of file descriptor array");
	}
	for (size_t i = 0; i < ea->n_guest_fds; i++) {
		if (ea->guest_fds[i] < 0)
			return cv_errf(err, 0, "guest file descriptors must be 0 or greater");
		if (ea->guest_fds[i] > EXEC_MAX_GUEST_FD)
			return cv_errf(err, 0, "guest file descriptor %d is too large (limit %d)",
				       ea->guest_fds[i], EXEC_MAX_GUEST_FD);
		for (size_t j = 0; j < i; j++)
			if (ea->guest_fds[j] == ea->guest_fds[i])
				return cv_errf(err, 0, "guest file descriptor %d appears twice",
					       ea->guest_fds[i]);
	}
	return 0;
}

static void exec_done(struct rpc_call *call, struct task *t, int err)
{
	(void)err;
	if (t->start_failed) {
		/* Already out of the registry (task.c): never started. */
		metrics_exec_done(false);
		rpc_fail(call, "%s", task_start_err(t));
		return;
	}
	metrics_exec_done(true);
	rpc_reply_int(call, t->ns_pid);
}

void cm_execute_async(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	msgpack_zone *zone = rpc_call_zone(call);
	struct cv_error err;
	cv_error_reset(&err);
	struct exec_args ea;
	if (mpk_decode(arg, &exec_schema, &ea, zone, &err) < 0)
		goto fail;

	struct container *c = sandbox_find_container(sb, ea.cid);
	if (!c) {
		cv_errf(&err, 0, "container \"%s\" not found", ea.cid);
		goto fail;
	}
	struct task *init = c->init;
	if (!init || init->state == TASK_CREATED || init->state == TASK_STARTING) {
		cv_errf(&err, 0, "container \"%s\" not started", ea.cid);
		goto fail;
	}
	if (init->state == TASK_EXITED || init->pidfd < 0) {
		cv_errf(&err, 0, "container \"%s\" has stopped", ea.cid);
		goto fail;
	}
	int exec_fd_index;
	size_t nfiles = rpc_call_nfiles(call);
	if (check_fds(&ea, nfiles, &exec_fd_index, &err) < 0)
		goto fail;
	if (ea.argc == 0) {
		if (!ea.filename || !*ea.filename) {
			cv_errf(&err, 0, "ExecArgs.argv: must not be empty");
			goto fail;
		}
		char **argv = msgpack_zone_malloc(zone, 2 * sizeof(char *));
		if (!argv) {
			cv_errf(&err, ENOMEM, "ExecArgs.argv");
			goto fail;
		}
		argv[0] = ea.filename;
		argv[1] = NULL;
		ea.argv = argv;
		ea.argc = 1;
	}
	if (ea.wd && *ea.wd && ea.wd[0] != '/') {
		cv_errf(&err, 0, "ExecArgs.wd: must be an absolute path, got \"%s\"", ea.wd);
		goto fail;
	}
	char **envv = NULL;
	if (dedupe_env(ea.envv, ea.envc, zone, &envv, &err) < 0)
		goto fail;

	int fds[EXEC_MAX_GUEST_FD + 1];
	int guest[EXEC_MAX_GUEST_FD + 1];
	for (size_t i = 0; i < ea.n_guest_fds; i++) {
		fds[i] = rpc_call_file(call, i);
		guest[i] = ea.guest_fds[i];
	}
	struct spawn_exec_args sa = {
		.init_pidfd = init->pidfd,
		.ns_flags = c->join_flags,
		.cg = &c->cg,
		.spec = &sb->root->spec, /* rlimits from the root spec, as runsc */
		.filename = ea.filename,
		.argv = ea.argv,
		.envv = envv,
		.cwd = (ea.wd && *ea.wd) ? ea.wd : "/",
		.uid = ea.kuid,
		.gid = ea.kgid,
		.extra_gids = ea.extra_gids,
		.n_extra_gids = ea.n_extra_gids,
		.has_caps = ea.has_caps,
		.caps = { .bounding = ea.caps.bounding, .effective = ea.caps.effective,
			  .inheritable = ea.caps.inheritable, .permitted = ea.caps.permitted,
			  .ambient = ea.caps.ambient },
		.no_new_privs = ea.no_new_privs,
		.fds = fds,
		.guest_fds = guest,
		.nfds = ea.n_guest_fds,
		.exec_fd = exec_fd_index >= 0 ? rpc_call_file(call, (size_t)exec_fd_index) : -1,
		.stdio_is_pty = ea.stdio_is_pty,
	};
	/* The intermediate needs a few ms (setns, clone, report): the call
	 * parks meanwhile and the loop serves everyone else. The task has its
	 * own copies of the fds and of the arguments from here on. */
	struct task *t = task_new_exec(c, &sa, &err);
	if (!t)
		goto fail;
	/* In the registry from now on; its pid (and so which older entry it
	 * replaces) is known once the intermediate has reported it. */
	t->in_registry = true;
	t->has_tty = ea.stdio_is_pty;
	park_call(call, t, &t->started, exec_done, "ExecuteAsync: execve");
	return;
fail:
	rpc_fail_err(call, &err);
}

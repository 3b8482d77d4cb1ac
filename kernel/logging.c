/* Logging.Change (docs/API.md): the sandbox's log level, changed at once
 * (core/log.c's level is read by every LOG), and strace of the armed
 * syscalls (kernel/strace.h), checked before anything changes. */
#include <stddef.h>

#include "core/log.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/strace.h"

struct logging_args {
	bool set_level;
	uint32_t level;
	bool set_strace, enable_strace;
	char **strace_allowlist;
	size_t n_allowlist;
	bool has_set_strace, has_enable_strace, has_allowlist;
};

#define LF(key, kind, field, has)                                                   \
	{ key, kind, offsetof(struct logging_args, field), MPK_NONE, has, 0, NULL }
static const struct mpk_field logging_fields[] = {
	LF("SetLevel", MPK_BOOL, set_level, MPK_NONE),
	LF("Level", MPK_U32, level, MPK_NONE),
	LF("SetStrace", MPK_BOOL, set_strace, offsetof(struct logging_args, has_set_strace)),
	LF("EnableStrace", MPK_BOOL, enable_strace,
	   offsetof(struct logging_args, has_enable_strace)),
	{ "StraceAllowlist", MPK_STRV, offsetof(struct logging_args, strace_allowlist),
	  offsetof(struct logging_args, n_allowlist), offsetof(struct logging_args, has_allowlist), 0,
	  NULL },
};
static const struct mpk_schema logging_schema = { "LoggingArgs", sizeof(struct logging_args),
						  logging_fields, ARRAY_SIZE(logging_fields) };

/* The seed's levels: 0 warning, 1 info, 2 debug. */
static const enum log_level wire_levels[] = { LL_WARN, LL_INFO, LL_DEBUG };

void logging_change(struct rpc_call *call, const msgpack_object *arg)
{
	struct logging_args a;
	struct cv_error err = { 0 };
	if (mpk_decode(arg, &logging_schema, &a, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	/* Both checked before either changes. */
	if (a.set_level && a.level >= ARRAY_SIZE(wire_levels)) {
		rpc_fail(call, "LoggingArgs.Level: invalid level %u (want 0 warning, 1 info, 2 debug)",
			 a.level);
		return;
	}
	/* A Go client sends every field, false and nil included: the
	 * allowlist and EnableStrace count only with SetStrace, as runsc. */
	if (a.set_strace) {
		if (strace_configure(a.enable_strace, a.strace_allowlist, a.n_allowlist, &err) < 0) {
			rpc_fail_err(call, &err);
			return;
		}
		LOG(LL_WARN, "strace %s%s", a.enable_strace ? "enabled" : "disabled",
		    a.enable_strace && a.n_allowlist ? " for the allowlist" : "");
	}
	if (a.set_level) {
		enum log_level old = log_current_level;
		log_set_level(wire_levels[a.level]);
		/* At warning so the change itself is always on record. */
		LOG(LL_WARN, "log level changed from %s to %s", log_level_name(old),
		    log_level_name(log_current_level));
	}
	rpc_reply_nil(call);
}

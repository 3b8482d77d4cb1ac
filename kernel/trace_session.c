/* containerManager.CreateTraceSession, DeleteTraceSession and
 * ListTraceSessions (docs/API.md): one session, "Default", whose points
 * are checked against what this sandbox can report (the armed syscalls,
 * kernel/trace_arm.h) before anything changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/model.h"
#include "kernel/seccheck.h"
#include "kernel/seccheck_internal.h"
#include "rpc/server.h"

struct sc_session sc_session;
struct sandbox *sc_sandbox;

struct point_cfg {
	char *name;
	char **optional_fields;
	size_t n_optional;
	char **context_fields;
	size_t n_context;
};
struct sink_cfg {
	char *name;
	const msgpack_object *config;
	bool ignore_setup_error;
};
struct session_cfg {
	char *name;
	struct point_cfg *points;
	size_t n_points;
	bool ignore_missing;
	struct sink_cfg *sinks;
	size_t n_sinks;
};
struct create_args {
	struct session_cfg config;
	bool force;
};

#define F(st, key, kind, field) { key, kind, offsetof(st, field), MPK_NONE, MPK_NONE, 0, NULL }
#define FV(st, key, kind, field, count, sub) \
	{ key, kind, offsetof(st, field), offsetof(st, count), MPK_NONE, 0, sub }
static const struct mpk_field point_fields[] = {
	F(struct point_cfg, "name", MPK_STR, name),
	FV(struct point_cfg, "optional_fields", MPK_STRV, optional_fields, n_optional, NULL),
	FV(struct point_cfg, "context_fields", MPK_STRV, context_fields, n_context, NULL),
};
static const struct mpk_schema point_schema = { "PointConfig", sizeof(struct point_cfg),
						point_fields, ARRAY_SIZE(point_fields) };
static const struct mpk_field sink_fields[] = {
	F(struct sink_cfg, "name", MPK_STR, name),
	F(struct sink_cfg, "config", MPK_OBJ, config),
	F(struct sink_cfg, "ignore_setup_error", MPK_BOOL, ignore_setup_error),
};
static const struct mpk_schema sink_schema = { "SinkConfig", sizeof(struct sink_cfg),
					       sink_fields, ARRAY_SIZE(sink_fields) };
static const struct mpk_field session_fields[] = {
	F(struct session_cfg, "name", MPK_STR, name),
	FV(struct session_cfg, "points", MPK_STRUCTV, points, n_points, &point_schema),
	F(struct session_cfg, "ignore_missing", MPK_BOOL, ignore_missing),
	FV(struct session_cfg, "sinks", MPK_STRUCTV, sinks, n_sinks, &sink_schema),
};
static const struct mpk_schema session_schema = { "SessionConfig", sizeof(struct session_cfg),
						  session_fields, ARRAY_SIZE(session_fields) };
static const struct mpk_field create_fields[] = {
	{ "Config", MPK_STRUCT, offsetof(struct create_args, config), MPK_NONE, MPK_NONE,
	  MPK_REQUIRED, &session_schema },
	F(struct create_args, "Force", MPK_BOOL, force),
};
static const struct mpk_schema create_schema = { "CreateTraceSessionArgs",
						 sizeof(struct create_args), create_fields,
						 ARRAY_SIZE(create_fields) };

static const char *const fixed_names[SC_P_FIXED] = {
	[SC_P_CLONE] = "sentry/clone",
	[SC_P_START] = "container/start",
	[SC_P_EXECVE] = "sentry/execve",
	[SC_P_EXIT_NOTIFY] = "sentry/exit_notify_parent",
	[SC_P_TASK_EXIT] = "sentry/task_exit",
};

/* The point's slot in s, or NULL with err saying why it cannot be had
 * (a point that ignore_missing skips). */
static struct sc_point_cfg *find_point(struct sc_session *s, const char *name,
				       struct cv_error *err)
{
	for (int i = 0; i < SC_P_FIXED; i++) {
		if (strcmp(name, fixed_names[i]) != 0)
			continue;
		/* Built from the execve notifications: nothing without them. */
		if (i == SC_P_EXECVE && trace_arm_count() == 0) {
			cv_errf(err, 0, "point \"%s\" not found: execve is not armed (cvisor "
					"--trace-syscalls)", name);
			return NULL;
		}
		return &s->fixed[i];
	}
	char sys[64];
	int n = 0;
	unsigned nr;
	if (sscanf(name, "syscall/sysno/%u/enter%n", &nr, &n) == 1 && name[n] == '\0') {
		if (nr >= TRACE_SYSNO_MAX || !trace_arm_has((int)nr)) {
			cv_errf(err, 0, "point \"%s\" not found: syscall %u is not armed "
					"(cvisor --trace-syscalls)", name, nr);
			return NULL;
		}
		return &s->sys_raw[nr];
	}
	if (sscanf(name, "syscall/%63[a-z0-9_]/enter%n", sys, &n) == 1 && name[n] == '\0') {
		const size_t na = trace_arm_count();
		for (size_t i = 0; i < na; i++) {
			int nr2 = trace_arm_list()[i];
			if (strcmp(trace_arm_name(nr2), sys) != 0)
				continue;
			if (!sc_syscall_msg_type(nr2))
				break; /* armed, but the reference has no schema for it */
			return &s->sys[nr2];
		}
		cv_errf(err, 0, "point \"%s\" not found: syscall %s is not armed with a schematised "
				"point (cvisor --trace-syscalls; syscall/sysno/N/enter for the raw form)",
			name, sys);
		return NULL;
	}
	if (strncmp(name, "syscall/", 8) == 0 && strlen(name) > 5 &&
	    strcmp(name + strlen(name) - 5, "/exit") == 0) {
		cv_errf(err, 0, "point \"%s\" not found: exit points need the syscall's result, which "
				"a seccomp CONTINUE answer never sees", name);
		return NULL;
	}
	cv_errf(err, 0, "point \"%s\" not found", name);
	return NULL;
}

static int set_point(struct sc_session *s, const struct point_cfg *p, bool ignore_missing,
		     struct cv_error *err)
{
	if (!p->name)
		return cv_errf(err, 0, "SessionConfig.points: a point has no name");
	struct sc_point_cfg *pc = find_point(s, p->name, err);
	if (!pc) {
		if (ignore_missing) {
			cv_error_reset(err);
			return 0;
		}
		return -1;
	}
	memset(pc, 0, sizeof(*pc));
	pc->on = true;
	for (size_t i = 0; i < p->n_context; i++) {
		int f = -1;
		for (int k = 0; k < SC_F_N; k++)
			if (strcmp(p->context_fields[i], sc_field_names[k]) == 0)
				f = k;
		if (f < 0 && !ignore_missing)
			return cv_errf(err, 0, "point \"%s\": context field \"%s\" not found", p->name,
				       p->context_fields[i]);
		if (f >= 0)
			pc->ctx |= 1ull << f;
	}
	for (size_t i = 0; i < p->n_optional; i++) {
		if (pc == &s->fixed[SC_P_START] && strcmp(p->optional_fields[i], "env") == 0)
			pc->env = true;
		else if (!ignore_missing)
			return cv_errf(err, 0, "point \"%s\": optional field \"%s\" not found",
				       p->name, p->optional_fields[i]);
	}
	return 0;
}

static void sinks_close(struct sc_session *s)
{
	for (size_t i = 0; i < s->nsinks; i++)
		if (s->sinks[i].fd >= 0)
			close(s->sinks[i].fd);
	s->nsinks = 0;
}

/* Sinks take the call's fds in order, one per remote sink. */
static int set_sinks(struct sc_session *s, const struct session_cfg *cfg, struct rpc_call *call,
		     struct cv_error *err)
{
	size_t nfiles = rpc_call_nfiles(call), used = 0;
	if (cfg->n_sinks > SC_SINKS_MAX)
		return cv_errf(err, 0, "SessionConfig.sinks: %zu sinks (at most %d)",
			       cfg->n_sinks, SC_SINKS_MAX);
	for (size_t i = 0; i < cfg->n_sinks; i++) {
		const char *name = cfg->sinks[i].name ? cfg->sinks[i].name : "";
		struct sc_sink *k = &s->sinks[i];
		k->fd = -1;
		k->dropped = 0;
		if (strcmp(name, "null") == 0) {
			k->kind = SC_SINK_NULL;
		} else if (strcmp(name, "remote") == 0) {
			k->kind = SC_SINK_REMOTE;
			if (used >= nfiles)
				return cv_errf(err, 0, "SessionConfig.sinks[%zu]: the remote sink needs an "
						       "fd (one per remote sink, in order; %zu given)",
					       i, nfiles);
			int fd = rpc_call_file(call, used);
			int type = 0;
			socklen_t tl = sizeof(type);
			if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
			    type != SOCK_SEQPACKET)
				return cv_errf(err, 0, "SessionConfig.sinks[%zu]: the remote sink's fd is "
						       "not a SOCK_SEQPACKET socket", i);
			/* Unconnected, every message would be dropped: say so now. */
			struct sockaddr_storage peer;
			socklen_t pl = sizeof(peer);
			if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
				return cv_errf(err, 0, "SessionConfig.sinks[%zu]: the remote sink's socket "
						       "is not connected", i);
			used++;
		} else {
			return cv_errf(err, 0, "sink \"%s\" not found", name);
		}
		s->nsinks = i + 1;
	}
	if (used != nfiles)
		return cv_errf(err, 0, "CreateTraceSession: %zu fds for %zu remote sinks", nfiles,
			       used);
	/* Everything checked: take the fds. */
	used = 0;
	for (size_t i = 0; i < s->nsinks; i++)
		if (s->sinks[i].kind == SC_SINK_REMOTE)
			s->sinks[i].fd = rpc_call_take_file(call, used++);
	return 0;
}

static void session_clear(void)
{
	sinks_close(&sc_session);
	memset(&sc_session, 0, sizeof(sc_session));
	sc_proc_close();
}

void cm_create_trace_session(struct rpc_call *call, const msgpack_object *arg)
{
	struct create_args a;
	struct cv_error err = { 0 };
	if (mpk_decode(arg, &create_schema, &a, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	const char *name = a.config.name ? a.config.name : "";
	if (strcmp(name, "Default") != 0) {
		rpc_fail(call, "SessionConfig.name: only a single \"Default\" session is supported "
			       "(got \"%s\")", name);
		return;
	}
	if (sc_session.active && !a.force) {
		rpc_fail(call, "session \"Default\" already exists");
		return;
	}
	/* Built aside: a refused config leaves the running session as it was. */
	struct sc_session *s = calloc(1, sizeof(*s));
	if (!s) {
		rpc_fail(call, "CreateTraceSession: out of memory");
		return;
	}
	int r = 0;
	for (size_t i = 0; r == 0 && i < a.config.n_points; i++)
		r = set_point(s, &a.config.points[i], a.config.ignore_missing, &err);
	if (r == 0)
		r = set_sinks(s, &a.config, call, &err);
	if (r < 0) {
		/* The fds are still the call's: nothing was taken. */
		s->nsinks = 0;
		free(s);
		rpc_fail_err(call, &err);
		return;
	}
	session_clear();
	sc_session = *s;
	free(s);
	sc_session.active = true;
	sc_sandbox = rpc_call_ctx(call);
	if (sc_proc_update(&err) < 0) {
		session_clear();
		rpc_fail_err(call, &err);
		return;
	}
	LOG(LL_INFO, "trace session \"Default\" created (%zu points, %zu sinks)", a.config.n_points,
	    sc_session.nsinks);
	rpc_reply_nil(call);
}

void cm_delete_trace_session(struct rpc_call *call, const msgpack_object *arg)
{
	char *name;
	struct cv_error err = { 0 };
	if (mpk_decode_str(arg, "DeleteTraceSession name", rpc_call_zone(call), &name, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	if (!sc_session.active || strcmp(name, "Default") != 0) {
		rpc_fail(call, "session \"%s\" not found", name);
		return;
	}
	session_clear();
	LOG(LL_INFO, "trace session \"Default\" deleted");
	rpc_reply_nil(call);
}

void cm_list_trace_sessions(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_array(pk, sc_session.active ? 1 : 0);
	if (sc_session.active) {
		msgpack_pack_map(pk, 2);
		mpk_pack_key(pk, "name");
		mpk_pack_str(pk, "Default");
		mpk_pack_key(pk, "sinks");
		msgpack_pack_array(pk, sc_session.nsinks);
		for (size_t i = 0; i < sc_session.nsinks; i++) {
			msgpack_pack_map(pk, 2);
			mpk_pack_key(pk, "name");
			mpk_pack_str(pk, sc_session.sinks[i].kind == SC_SINK_REMOTE ? "remote" : "null");
			mpk_pack_key(pk, "status");
			msgpack_pack_map(pk, 1);
			mpk_pack_key(pk, "DroppedCount");
			msgpack_pack_uint64(pk, sc_session.sinks[i].dropped);
		}
	}
	rpc_reply_packed(call);
}

void seccheck_shutdown(void)
{
	session_clear();
	seccheck_listener_close(NULL);
	sc_sandbox = NULL;
}

/* Trace messages (SEED-REFERENCE's remote sink wire, docs/API.md): an
 * 8-byte little-endian header (size, message type, dropped count) and a
 * msgpack map standing in for the reference's protobuf, one packet per
 * point, sent to every sink without ever waiting. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mpk.h"
#include "kernel/model.h"
#include "kernel/seccheck.h"
#include "kernel/seccheck_internal.h"

const char *const sc_field_names[SC_F_N] = {
	[SC_F_TIME] = "time",
	[SC_F_THREAD_ID] = "thread_id",
	[SC_F_GROUP_ID] = "group_id",
	[SC_F_CONTAINER_ID] = "container_id",
	[SC_F_CREDENTIALS] = "credentials",
	[SC_F_CWD] = "cwd",
	[SC_F_PROCESS_NAME] = "process_name",
	[SC_F_PARENT_TGID] = "parent_thread_group_id",
};

void sc_header_encode(uint8_t out[SC_HEADER_SIZE], uint16_t type, uint32_t dropped)
{
	out[0] = SC_HEADER_SIZE;
	out[1] = 0;
	out[2] = (uint8_t)type;
	out[3] = (uint8_t)(type >> 8);
	for (int i = 0; i < 4; i++)
		out[4 + i] = (uint8_t)(dropped >> (8 * i));
}

int sc_header_decode(const uint8_t *buf, size_t len, uint16_t *type, uint32_t *dropped,
		     size_t *header_size)
{
	if (len < SC_HEADER_SIZE)
		return -1;
	size_t hs = (size_t)buf[0] | (size_t)buf[1] << 8;
	if (hs < SC_HEADER_SIZE || hs > len)
		return -1;
	*header_size = hs;
	*type = (uint16_t)(buf[2] | buf[3] << 8);
	*dropped = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
		   (uint32_t)buf[7] << 24;
	return 0;
}

uint16_t sc_syscall_msg_type(int sysno)
{
	switch (sysno) {
	case SYS_openat: return SC_MSG_OPEN;
	case SYS_execve: case SYS_execveat: return SC_MSG_EXECVE;
	case SYS_connect: return SC_MSG_CONNECT;
	case SYS_bind: return SC_MSG_BIND;
	case SYS_listen: return SC_MSG_LISTEN;
	case SYS_accept4: case SYS_accept: return SC_MSG_ACCEPT;
	case SYS_socket: return SC_MSG_SOCKET;
	case SYS_clone: return SC_MSG_CLONE;
	case SYS_chdir: return SC_MSG_CHDIR;
	case SYS_setuid: case SYS_setgid: return SC_MSG_SETID;
	case SYS_ptrace: return SC_MSG_PTRACE;
	default: return 0;
	}
}

/* One buffer for the message being built: single-threaded, one at a time. */
static msgpack_sbuffer buf;
static msgpack_packer pk;

msgpack_packer *sc_begin(void)
{
	if (!buf.data)
		msgpack_sbuffer_init(&buf);
	msgpack_sbuffer_clear(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	return &pk;
}

void sc_send(uint16_t type)
{
	for (size_t i = 0; i < sc_session.nsinks; i++) {
		struct sc_sink *k = &sc_session.sinks[i];
		if (k->kind != SC_SINK_REMOTE)
			continue;
		uint8_t h[SC_HEADER_SIZE];
		sc_header_encode(h, type, (uint32_t)k->dropped);
		struct iovec iov[2] = { { h, sizeof(h) }, { buf.data, buf.size } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n;
		do
			n = sendmsg(k->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		/* A full queue (EAGAIN) or a monitor that went away: the point
		 * is dropped and counted, the loop never waits for a reader. */
		if (n < 0)
			k->dropped++;
	}
}

/* What /proc/<tid>/status says, for the context fields. */
struct status_info {
	char name[64];
	uint32_t uid[3], gid[3];
	pid_t ppid;
	pid_t nspid[32], nstgid[32];
	int n_nspid, n_nstgid;
};

static int parse_ids(const char *s, pid_t *out, int max)
{
	int n = 0;
	char *end;
	while (n < max) {
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		out[n++] = (pid_t)v;
		s = end;
	}
	return n;
}

static int read_status(pid_t tid, struct status_info *si)
{
	char path[40], text[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	memset(si, 0, sizeof(*si));
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, "Name:\t", 6) == 0)
			snprintf(si->name, sizeof(si->name), "%s", line + 6);
		else if (strncmp(line, "PPid:\t", 6) == 0)
			si->ppid = (pid_t)atoi(line + 6);
		else if (strncmp(line, "Uid:\t", 5) == 0)
			sscanf(line + 5, "%u %u %u", &si->uid[0], &si->uid[1], &si->uid[2]);
		else if (strncmp(line, "Gid:\t", 5) == 0)
			sscanf(line + 5, "%u %u %u", &si->gid[0], &si->gid[1], &si->gid[2]);
		else if (strncmp(line, "NStgid:\t", 8) == 0)
			si->n_nstgid = parse_ids(line + 8, si->nstgid, 32);
		else if (strncmp(line, "NSpid:\t", 7) == 0)
			si->n_nspid = parse_ids(line + 7, si->nspid, 32);
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

static pid_t at_root(const pid_t *ids, int n)
{
	int k = sc_sandbox ? sc_sandbox->root_ns_index : 0;
	return n > k ? ids[k] : 0;
}

static const uint64_t status_fields = 1ull << SC_F_THREAD_ID | 1ull << SC_F_GROUP_ID |
				      1ull << SC_F_CREDENTIALS | 1ull << SC_F_PROCESS_NAME |
				      1ull << SC_F_PARENT_TGID;

void sc_ctx_read(struct sc_ctx *ctx)
{
	struct status_info si;
	if (ctx->host_tid <= 0 || read_status(ctx->host_tid, &si) < 0)
		return;
	if (!ctx->ids_known) {
		ctx->tid = at_root(si.nspid, si.n_nspid);
		ctx->tgid = at_root(si.nstgid, si.n_nstgid);
		ctx->ptgid = sc_sandbox && si.ppid > 0 ? pidns_to_root(sc_sandbox, si.ppid) : 0;
		if (ctx->ptgid < 0)
			ctx->ptgid = 0; /* a parent outside the sandbox's namespace */
		ctx->ids_known = true;
	}
	snprintf(ctx->comm, sizeof(ctx->comm), "%s", si.name);
	memcpy(ctx->uid, si.uid, sizeof(ctx->uid));
	memcpy(ctx->gid, si.gid, sizeof(ctx->gid));
	ctx->have_status = true;
}

void sc_pack_context(msgpack_packer *p, uint64_t mask, struct sc_ctx *ctx)
{
	if (mask & status_fields)
		sc_ctx_read(ctx);
	const bool have = ctx->have_status;
	char cwd[4096];
	ssize_t cwd_len = -1;
	if ((mask & 1ull << SC_F_CWD) && ctx->host_tid > 0) {
		/* The kernel's name for the task's cwd: a readlink of the
		 * host's procfs, nothing of the container is opened. */
		char path[40];
		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)ctx->host_tid);
		cwd_len = readlink(path, cwd, sizeof(cwd));
	}
	size_t n = 0;
	for (int f = 0; f < SC_F_N; f++)
		if (mask & 1ull << f)
			n++;
	mpk_pack_key(p, "context_data");
	msgpack_pack_map(p, n);
	if (mask & 1ull << SC_F_TIME) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		mpk_pack_key(p, "time_ns");
		msgpack_pack_int64(p, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
	}
	if (mask & 1ull << SC_F_THREAD_ID) {
		mpk_pack_key(p, "thread_id");
		msgpack_pack_int32(p, ctx->tid);
	}
	if (mask & 1ull << SC_F_GROUP_ID) {
		mpk_pack_key(p, "thread_group_id");
		msgpack_pack_int32(p, ctx->tgid);
	}
	if (mask & 1ull << SC_F_CONTAINER_ID) {
		mpk_pack_key(p, "container_id");
		mpk_pack_str(p, ctx->cid ? ctx->cid : "");
	}
	if (mask & 1ull << SC_F_CREDENTIALS) {
		static const char *const keys[6] = { "real_uid", "effective_uid", "saved_uid",
						     "real_gid", "effective_gid", "saved_gid" };
		mpk_pack_key(p, "credentials");
		msgpack_pack_map(p, have ? 6 : 0);
		for (int i = 0; have && i < 6; i++) {
			mpk_pack_key(p, keys[i]);
			msgpack_pack_uint32(p, i < 3 ? ctx->uid[i] : ctx->gid[i - 3]);
		}
	}
	if (mask & 1ull << SC_F_CWD) {
		mpk_pack_key(p, "cwd");
		msgpack_pack_str(p, cwd_len > 0 ? (size_t)cwd_len : 0);
		msgpack_pack_str_body(p, cwd, cwd_len > 0 ? (size_t)cwd_len : 0);
	}
	if (mask & 1ull << SC_F_PROCESS_NAME) {
		mpk_pack_key(p, "process_name");
		mpk_pack_str(p, have ? ctx->comm : "");
	}
	if (mask & 1ull << SC_F_PARENT_TGID) {
		mpk_pack_key(p, "parent_thread_group_id");
		msgpack_pack_int32(p, ctx->ptgid);
	}
}

static void pack_strv(msgpack_packer *p, const char *key, char *const *v, size_t n)
{
	mpk_pack_key(p, key);
	msgpack_pack_array(p, n);
	for (size_t i = 0; i < n; i++)
		mpk_pack_str(p, v[i]);
}

static size_t strv_count(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void seccheck_container_start(struct container *c)
{
	const struct sc_point_cfg *pc = &sc_session.fixed[SC_P_START];
	if (!sc_session.active || !pc->on || !c->init)
		return;
	struct sc_ctx ctx = { .host_tid = c->init->host_pid, .cid = c->id };
	const struct oci_process *proc = &c->spec.process;
	msgpack_packer *p = sc_begin();
	msgpack_pack_map(p, 5 + (pc->env ? 1 : 0));
	sc_pack_context(p, pc->ctx, &ctx);
	mpk_pack_key(p, "id");
	mpk_pack_str(p, c->id);
	mpk_pack_key(p, "cwd");
	mpk_pack_str(p, proc->cwd && *proc->cwd ? proc->cwd : "/");
	mpk_pack_key(p, "args");
	msgpack_pack_array(p, proc->n_args);
	for (size_t i = 0; i < proc->n_args; i++)
		mpk_pack_str(p, proc->args[i]);
	mpk_pack_key(p, "terminal");
	if (proc->terminal)
		msgpack_pack_true(p);
	else
		msgpack_pack_false(p);
	if (pc->env) {
		mpk_pack_key(p, "env");
		msgpack_pack_array(p, proc->n_env);
		for (size_t i = 0; i < proc->n_env; i++)
			mpk_pack_str(p, proc->env[i]);
	}
	sc_send(SC_MSG_START);
}

/* The schematised fields of each armed syscall the reference describes. */
static size_t pack_schema(msgpack_packer *p, const struct sc_syscall *s, bool count_only)
{
	const uint64_t *a = s->args;
#define U(k, v) do { if (!count_only) { mpk_pack_key(p, k); msgpack_pack_uint64(p, (v)); } n++; } while (0)
#define I(k, v) do { if (!count_only) { mpk_pack_key(p, k); msgpack_pack_int64(p, (int64_t)(v)); } n++; } while (0)
#define S(k, v) do { if (!count_only) { mpk_pack_key(p, k); mpk_pack_str(p, (v) ? (v) : ""); } n++; } while (0)
	size_t n = 0;
	switch (s->sysno) {
	case SYS_openat:
		I("fd", (int32_t)a[0]); S("pathname", s->path); U("flags", a[2]); U("mode", a[3]);
		break;
	case SYS_execve:
		S("pathname", s->path);
		if (!count_only)
			pack_strv(p, "argv", s->argv, strv_count(s->argv));
		n++;
		break;
	case SYS_execveat:
		I("fd", (int32_t)a[0]); S("pathname", s->path); U("flags", a[4]);
		if (!count_only)
			pack_strv(p, "argv", s->argv, strv_count(s->argv));
		n++;
		break;
	case SYS_connect: case SYS_bind:
		I("fd", (int32_t)a[0]);
		if (!count_only) {
			mpk_pack_key(p, "address");
			msgpack_pack_bin(p, s->addr_len);
			msgpack_pack_bin_body(p, s->addr, s->addr_len);
		}
		n++;
		break;
	case SYS_listen: I("fd", (int32_t)a[0]); I("backlog", (int32_t)a[1]); break;
	case SYS_accept4: case SYS_accept: I("fd", (int32_t)a[0]); U("flags", a[3]); break;
	case SYS_socket: I("domain", (int32_t)a[0]); I("type", (int32_t)a[1]);
		I("protocol", (int32_t)a[2]); break;
	case SYS_clone: U("flags", a[0]); U("stack", a[1]); U("new_tid", a[2]); U("tls", a[4]); break;
	case SYS_chdir: S("pathname", s->path); break;
	case SYS_setuid: case SYS_setgid: U("id", (uint32_t)a[0]); break;
	case SYS_ptrace: I("request", (int64_t)a[0]); I("pid", (int32_t)a[1]);
		U("address", a[2]); U("data", a[3]); break;
	default: break;
	}
#undef U
#undef I
#undef S
	return n;
}

static void emit_execve_info(const struct sc_syscall *s, struct sc_ctx *ctx)
{
	const struct sc_point_cfg *pc = &sc_session.fixed[SC_P_EXECVE];
	msgpack_packer *p = sc_begin();
	msgpack_pack_map(p, 3);
	sc_pack_context(p, pc->ctx, ctx);
	mpk_pack_key(p, "binary_path");
	mpk_pack_str(p, s->path ? s->path : "");
	pack_strv(p, "argv", s->argv, strv_count(s->argv));
	sc_send(SC_MSG_EXECVE_INFO);
}

void sc_emit_syscall(const struct sc_syscall *s)
{
	if (s->sysno < 0 || s->sysno >= TRACE_SYSNO_MAX)
		return;
	struct sc_ctx ctx = { .host_tid = s->host_tid, .cid = s->cid };
	if ((s->sysno == SYS_execve || s->sysno == SYS_execveat) &&
	    sc_session.fixed[SC_P_EXECVE].on)
		emit_execve_info(s, &ctx);
	const struct sc_point_cfg *pc = &sc_session.sys[s->sysno];
	if (pc->on) {
		msgpack_packer *p = sc_begin();
		msgpack_pack_map(p, 2 + pack_schema(p, s, true));
		sc_pack_context(p, pc->ctx, &ctx);
		mpk_pack_key(p, "sysno");
		msgpack_pack_uint32(p, (uint32_t)s->sysno);
		pack_schema(p, s, false);
		sc_send(sc_syscall_msg_type(s->sysno));
	}
	pc = &sc_session.sys_raw[s->sysno];
	if (pc->on) {
		msgpack_packer *p = sc_begin();
		msgpack_pack_map(p, 8);
		sc_pack_context(p, pc->ctx, &ctx);
		mpk_pack_key(p, "sysno");
		msgpack_pack_uint32(p, (uint32_t)s->sysno);
		static const char *const keys[6] = { "arg1", "arg2", "arg3", "arg4", "arg5", "arg6" };
		for (int i = 0; i < 6; i++) {
			mpk_pack_key(p, keys[i]);
			msgpack_pack_uint64(p, s->args[i]);
		}
		sc_send(SC_MSG_SYSCALL_RAW);
	}
}

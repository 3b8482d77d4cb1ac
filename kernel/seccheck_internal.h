#pragma once
/* Private to kernel/seccheck_*.c, kernel/trace_session.c and
 * kernel/strace.c: the session's state, the message framing and the
 * context fields (SEED-REFERENCE's seccheck, docs/API.md). */
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/err.h"
#include "kernel/trace_arm.h"

struct sandbox;

/* The reference's point ids for the fixed points. */
enum sc_point { SC_P_CLONE = 0, SC_P_START = 1, SC_P_EXECVE = 2, SC_P_EXIT_NOTIFY = 3,
		SC_P_TASK_EXIT = 4, SC_P_FIXED = 5 };

/* Context fields, one bit each in a point's mask. */
enum sc_field { SC_F_TIME, SC_F_THREAD_ID, SC_F_GROUP_ID, SC_F_CONTAINER_ID, SC_F_CREDENTIALS,
		SC_F_CWD, SC_F_PROCESS_NAME, SC_F_PARENT_TGID, SC_F_N };
extern const char *const sc_field_names[SC_F_N];

/* The reference's MessageType values this sandbox sends. */
enum sc_msg { SC_MSG_START = 1, SC_MSG_CLONE_INFO = 2, SC_MSG_EXECVE_INFO = 3,
	      SC_MSG_EXIT_NOTIFY = 4, SC_MSG_TASK_EXIT = 5, SC_MSG_SYSCALL_RAW = 6, SC_MSG_OPEN = 7,
	      SC_MSG_CONNECT = 10, SC_MSG_EXECVE = 11, SC_MSG_SOCKET = 12, SC_MSG_CHDIR = 13,
	      SC_MSG_SETID = 14, SC_MSG_CLONE = 23, SC_MSG_BIND = 24, SC_MSG_ACCEPT = 25,
	      SC_MSG_LISTEN = 37, SC_MSG_PTRACE = 38 };

struct sc_point_cfg {
	bool on;
	uint64_t ctx; /* 1 << enum sc_field */
	bool env;     /* container/start's optional field */
};

enum sc_sink_kind { SC_SINK_NULL, SC_SINK_REMOTE };
struct sc_sink {
	enum sc_sink_kind kind;
	int fd;           /* remote: the donated SOCK_SEQPACKET socket (owned), else -1 */
	uint64_t dropped; /* messages the sink could not take */
};

#define SC_SINKS_MAX 8
struct sc_session {
	bool active;
	struct sc_point_cfg fixed[SC_P_FIXED];
	struct sc_point_cfg sys[TRACE_SYSNO_MAX];     /* syscall/<name>/enter */
	struct sc_point_cfg sys_raw[TRACE_SYSNO_MAX]; /* syscall/sysno/<N>/enter */
	struct sc_sink sinks[SC_SINKS_MAX];
	size_t nsinks;
};
extern struct sc_session sc_session;
/* The sandbox the session belongs to (set at CreateTraceSession). */
extern struct sandbox *sc_sandbox;

/* --- framing (seccheck_emit.c) --- */
#define SC_HEADER_SIZE 8
/* u16 header size | u16 message type | u32 dropped count, little-endian. */
void sc_header_encode(uint8_t out[SC_HEADER_SIZE], uint16_t type, uint32_t dropped);
/* A reader's side: honours a larger header size. -1 when too short. */
int sc_header_decode(const uint8_t *buf, size_t len, uint16_t *type, uint32_t *dropped,
		     size_t *header_size);
/* The schematised message of an armed syscall's enter point, or 0 when
 * the reference has none (then only syscall/sysno/N/enter exists). */
uint16_t sc_syscall_msg_type(int sysno);

/* Who a point is about. Fields known ahead (an exited task's ids) are
 * given; the rest is read from /proc/<host_tid> when a mask asks. */
struct sc_ctx {
	pid_t host_tid;     /* 0: the task is gone, /proc is not read */
	const char *cid;    /* container id */
	pid_t tid, tgid, ptgid; /* sandbox root namespace; valid with ids_known */
	bool ids_known;
	/* The last /proc/<tid>/status read (remembered for a task whose exit
	 * is read after it was reaped); valid with have_status. */
	bool have_status;
	char comm[16];
	uint32_t uid[3], gid[3];
};

/* Starts a message: the payload map is packed into the returned packer. */
msgpack_packer *sc_begin(void);
void sc_pack_context(msgpack_packer *pk, uint64_t mask, struct sc_ctx *ctx);
/* Reads /proc/<host_tid>/status into ctx: the ids unless known, the name
 * and credentials always. Nothing changes when the task is gone. */
void sc_ctx_read(struct sc_ctx *ctx);
/* Frames what was packed since sc_begin and hands it to every sink. */
void sc_send(uint16_t type);

/* A syscall as its notification showed it, with what was read from the
 * task's memory (valid only if the notification still was afterwards). */
struct sc_syscall {
	int sysno;
	uint64_t args[6];
	pid_t host_tid;
	const char *cid;
	const char *path;     /* the pathname argument, or NULL */
	char *const *argv;    /* execve/execveat, NULL-terminated, or NULL */
	const void *addr;     /* connect/bind: the sockaddr bytes */
	size_t addr_len;
};
/* syscall/<name>/enter and syscall/sysno/N/enter; sentry/execve for the
 * two execs. */
void sc_emit_syscall(const struct sc_syscall *s);

/* --- the proc connector (seccheck_proc.c) --- */
/* Opens or closes it as the session's fixed points need. */
int sc_proc_update(struct cv_error *err);
void sc_proc_close(void);
bool sc_proc_open(void);
/* host is about to exec path: the name the kernel will give it (the
 * basename), remembered in case the task is gone before its exit is read. */
void sc_proc_note_exec(pid_t host, const char *path);
/* Forgets the tasks remembered under container id cid (the string's address). */
void sc_proc_forget(const char *cid);
/* debug.Stacks' line for its watcher (nothing while closed). */
void sc_proc_describe(FILE *out);

/* --- strace (strace.c) --- */
bool strace_wants(int sysno);
void strace_log(const struct sc_syscall *s, pid_t ns_tid);

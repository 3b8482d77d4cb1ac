#pragma once
/* Shared helpers of the CLI verbs: global flags, the sandbox directory and
 * its state.json, container IDs, signal names, wait-status and runtime-state
 * mapping, small file helpers, and the JSON → msgpack converter (json_mp.c).
 * Nothing here talks to a sandbox; cmd/conn.c does. */
#include <json-c/json.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/err.h"
#include "kernel/runtime_state.h"

#define CLI_VERSION "0.1.0"
#define CLI_OCI_VERSION "1.0.2"
#define CLI_DEFAULT_ROOT "/run/cvisor"
#define CLI_ID_MAX 128

/* Global flags (given before the verb). root and log are absolute paths
 * (main makes them so) because boot runs with the bundle as its cwd. */
struct cli_globals {
	const char *root;       /* --root, default CLI_DEFAULT_ROOT */
	const char *log;        /* --log or NULL */
	const char *log_format; /* "text" or "json" */
	bool debug;
	bool systemd_cgroup;    /* --systemd-cgroup (kernel/cgroup.h, cgroup_resolve_path) */
	const char *trace_syscalls; /* --trace-syscalls (kernel/trace_arm.h), or NULL: none */
	const char *network;    /* --network none|sandbox|host (kernel/network_mode.h) */
};
extern struct cli_globals cli_g;

struct cli_command;
typedef int (*cli_verb_fn)(const struct cli_command *cmd, int argc, char **argv);

/* One entry of main.c's commands[] table. A verb returns the process exit
 * code; argv[0] is the verb's name. */
struct cli_command {
	const char *name;
	cli_verb_fn fn;
	const char *usage; /* "create [flags] ID" plus flag lines; NULL for hidden verbs */
};

/* Prints "cvisor: <msg>" on stderr and, with --log-format json and --log,
 * appends {"level":"error","msg":...,"time":...} to the log file (podman
 * reads it). Returns 1, the CLI's failure exit code. */
int cli_fail(const struct cv_error *err);
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a verb's usage on stdout; returns 0. */
int cli_usage(const struct cli_command *cmd);
/* getopt error text for the verb ("create: unknown flag --x"); returns 1. */
int cli_bad_flag(const struct cli_command *cmd, int argc, char **argv);
/* Common getopt plumbing: every verb accepts -h/--help. */
#define CLI_OPT_HELP { "help", no_argument, 0, 'h' }

/* For a verb with no flags of its own: -h/--help prints its usage, any
 * other flag is refused. Returns -1 to go on (optind is at the first
 * operand), else the exit status the verb returns. */
int cli_no_flags(const struct cli_command *cmd, int argc, char **argv);

/* [A-Za-z0-9][A-Za-z0-9_.-]{0,127}, else `invalid container id "x"`. */
int cli_validate_id(const char *id, struct cv_error *err);

/* "KILL", "SIGKILL", "sigkill", "9" → 9; else `unknown signal "X"`. */
int cli_parse_signal(const char *s, int *signo, struct cv_error *err);
/* "SIGKILL" for 9, NULL if unknown. */
const char *cli_signal_name(int signo);

/* wait(2) status → exit code: the exit status, or 128+signal. */
int cli_exit_code(int wait_status);

/* ContainerRuntimeState's integer (enum runtime_state) → OCI status ("created", "running", "paused", "stopped");
 * paused only applies to running. */
const char *cli_status_name(int64_t runtime_state, bool paused);

/* $ROOT/<id>, $ROOT/<id>/<name>. Fail when id is not a valid container id
 * (cli_validate_id: it is a path component) or the path does not fit. */
int cli_sandbox_dir(const char *id, char *out, size_t n, struct cv_error *err);
int cli_sandbox_file(const char *id, const char *name, char *out, size_t n,
		     struct cv_error *err);

/* RFC3339Nano in UTC of the current time ("2024-05-01T10:11:12.123456789Z",
 * trailing zeros of the fraction dropped, as Go prints it). */
void cli_now_rfc3339nano(char *out, size_t n);

/* Reads a whole file (path "-" = stdin) into a NUL-terminated malloc'd
 * buffer; the caller frees *data. */
int cli_read_file(const char *path, char **data, size_t *len, struct cv_error *err);
/* --pid N: a positive PID that fits int32. 0, or the CLI failure code
 * after printing the error. */
int cli_parse_pid_flag(const char *arg, long *out);
/* --format: "table" or "json". 0, or the CLI failure code. */
int cli_check_format(const char *format);

/* write(2) until done; retries EINTR. 0, or -1 with errno. */
int cli_write_all(int fd, const void *p, size_t n);

/* Writes data to path atomically (a temp file in the same directory, then
 * rename): readers never see a partial file. Not durable: no fsync (see
 * cli.c for why). */
int cli_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			  struct cv_error *err);
/* Writes "<pid>" to a pid file atomically. */
int cli_write_pid_file(const char *path, pid_t pid, struct cv_error *err);
/* Parses JSON text; the caller puts the object. what names it in errors. */
int cli_json_parse(const char *text, size_t len, const char *what, json_object **out,
		   struct cv_error *err);
/* Reads and parses a JSON file ("-" = stdin). */
int cli_json_read(const char *path, json_object **out, struct cv_error *err);
/* cli_json_print(pretty) followed by a newline. */
void cli_json_print_pretty(FILE *f, json_object *j);
/* Small typed getters: NULL / def when absent or of another type. */
const char *cli_json_str(json_object *o, const char *key);
int64_t cli_json_int(json_object *o, const char *key, int64_t def);
bool cli_json_bool(json_object *o, const char *key, bool def);
json_object *cli_json_get(json_object *o, const char *key, json_type type);

/* ---- text a container or a bundle controls ------------------------------
 * Process names, bundle strings and server messages may hold bytes that a
 * terminal acts on (ESC sequences clear the screen or set its title, BEL,
 * 8-bit C1 CSI) or that are not UTF-8. Everything the CLI prints from them
 * goes through these. */

/* Escapes s (n bytes) for a terminal: tab, newline and carriage return as
 * \t \n \r, the other C0 controls and DEL as \xNN, the C1 controls
 * (U+0080-U+009F, UTF-8 encoded) as \u00NN, each byte that is not valid
 * UTF-8 as \xNN, and the backslash as \\ so that escapes stay unambiguous.
 * Printable ASCII and valid UTF-8 pass. Writes at most cap-1 bytes and a NUL
 * (cap > 0), never cutting an escape or a character; returns the length the
 * whole needs (like snprintf). */
size_t cli_escape(const char *s, size_t n, char *out, size_t cap);
/* cli_escape of a NUL-terminated string into a malloc'd one (the caller
 * frees it); NULL when out of memory. */
char *cli_escape_dup(const char *s);
/* Columns taken by escaped (valid UTF-8) text: one per code point. */
size_t cli_text_width(const char *s);

/* Writes s (n bytes) as a JSON string literal that is valid UTF-8 (each bad
 * byte as \ufffd, as Go's encoding/json does) and holds no control
 * character: C0, DEL and C1 as \u00NN (\b \f \n \r \t for those). */
void cli_json_write_str(FILE *f, const char *s, size_t n);
/* Prints j: pretty like Go's json.MarshalIndent(v, "", "  "), else
 * compact; strings (keys too) with cli_json_write_str. No newline. */
void cli_json_print(FILE *f, json_object *j, bool pretty);

/* $ROOT/<id>/state.json, written by create and pause/resume. */
struct cli_state {
	json_object *j; /* owns everything below */
	const char *id, *bundle, *rootfs, *created, *cgroup_path;
	const char *systemd_unit; /* --systemd-cgroup's scope, or NULL */
	pid_t pid;      /* the root container init's host pid (OCI state "pid") */
	pid_t boot_pid; /* the sandbox's boot process */
	bool paused;
	json_object *annotations; /* map or NULL */
};
/* Missing → `container "ID" does not exist` with err->code = ENOENT. */
int cli_state_load(const char *id, struct cli_state *st, struct cv_error *err);
/* Writes st->j (after the caller changed it) back to state.json. */
int cli_state_save(const char *id, json_object *j, struct cv_error *err);
void cli_state_free(struct cli_state *st);

/* Removes a directory tree (no symlink following). Missing is not an error. */
int cli_remove_tree(const char *path, struct cv_error *err);

/* The boot pid is alive and really is this sandbox's `cvisor ... boot ... ID`
 * (guards against pid reuse after the sandbox died). */
bool cli_boot_alive(pid_t pid, const char *id);
/* Whether id is a pod's subcontainer (cmd/sub.c); sid receives the id of
 * its sandbox (the root container's). */
bool sub_sandbox_of(const char *id, char *sid, size_t n);

/* JSON → msgpack (json_mp.c): object→map, array, string, integer (int64, or
 * uint64 above INT64_MAX), double, bool, null. */
int json_mp_pack(json_object *j, msgpack_packer *pk, struct cv_error *err);
/* Parses text and appends its msgpack form to out. */
int json_mp_convert(const char *text, size_t len, msgpack_sbuffer *out, struct cv_error *err);

#pragma once
/* The CLI verbs (one file each, dispatched from main.c's commands[]) and
 * the pieces several verbs share. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <termios.h>

#include "cmd/cli.h"
#include "core/err.h"

int cmd_create(const struct cli_command *cmd, int argc, char **argv);
int cmd_start(const struct cli_command *cmd, int argc, char **argv);
int cmd_run(const struct cli_command *cmd, int argc, char **argv);
int cmd_exec(const struct cli_command *cmd, int argc, char **argv);
int cmd_kill(const struct cli_command *cmd, int argc, char **argv);
int cmd_delete(const struct cli_command *cmd, int argc, char **argv);
int cmd_state(const struct cli_command *cmd, int argc, char **argv);
int cmd_list(const struct cli_command *cmd, int argc, char **argv);
int cmd_ps(const struct cli_command *cmd, int argc, char **argv);
int cmd_wait(const struct cli_command *cmd, int argc, char **argv);
int cmd_pause(const struct cli_command *cmd, int argc, char **argv);
int cmd_resume(const struct cli_command *cmd, int argc, char **argv);
int cmd_update(const struct cli_command *cmd, int argc, char **argv);
int cmd_spec(const struct cli_command *cmd, int argc, char **argv);
int cmd_features(const struct cli_command *cmd, int argc, char **argv);
int cmd_boot(const struct cli_command *cmd, int argc, char **argv);
int cmd_export_metrics(const struct cli_command *cmd, int argc, char **argv);
int cmd_debug(const struct cli_command *cmd, int argc, char **argv);
int cmd_trace(const struct cli_command *cmd, int argc, char **argv);
int cmd_read_control(const struct cli_command *cmd, int argc, char **argv);
int cmd_write_control(const struct cli_command *cmd, int argc, char **argv);
int cmd_usage(const struct cli_command *cmd, int argc, char **argv);
int cmd_events(const struct cli_command *cmd, int argc, char **argv);
int cmd_statefile(const struct cli_command *cmd, int argc, char **argv);
int cmd_port_forward(const struct cli_command *cmd, int argc, char **argv);
int cmd_checkpoint(const struct cli_command *cmd, int argc, char **argv);
int cmd_restore(const struct cli_command *cmd, int argc, char **argv);
int cmd_gofer(const struct cli_command *cmd, int argc, char **argv);

/* cmd/observe.c, shared with cmd/usage.c: "1s", "500ms", "2m", "1.5s", "250us"
 * or bare seconds → ns (-1 if malformed); one msgpack object as compact JSON. */
int cli_parse_duration(const char *s, int64_t *ns);
struct msgpack_object;
void cli_mp_json(FILE *f, const struct msgpack_object *o);

/* Name of the file where boot leaves the root init's wait status when the
 * sandbox ends, so that `wait` works after boot is gone. */
#define CLI_EXIT_STATUS_FILE "exit_status"

struct create_opts {
	const char *bundle;         /* default: the cwd */
	const char *pid_file;       /* or NULL */
	const char *console_socket; /* or NULL */
	/* Attached `run`: when process.terminal is true and there is no
	 * console socket, *console_peer receives the caller's end of a
	 * socketpair the init sends the pty master on (else -1). NULL: a
	 * terminal needs --console-socket. */
	int *console_peer;
	bool no_new_keyring; /* --no-new-keyring: keep the caller's session keyring */
};

/* The flags `create` and `run` share, as getopt_long entries, and their
 * parser: returns 1 when c was one of them (with *rc set non-zero if its
 * value is refused), 0 when it was not. */
#define CREATE_OPTS                                                 \
	{ "bundle", required_argument, 0, 'b' },                    \
	{ "pid-file", required_argument, 0, 'p' },                  \
	{ "console-socket", required_argument, 0, 'c' },            \
	{ "no-pivot", no_argument, 0, 'N' },                        \
	{ "no-new-keyring", no_argument, 0, 'K' },                  \
	{ "preserve-fds", required_argument, 0, 'P' }
int create_parse_flag(int c, const char *arg, struct create_opts *o, int *rc);

/* create: spawns boot (a child of this process) and returns once the root
 * container is created; writes state.json and the pid file. The root
 * container's init is a child of this process too (CLONE_PARENT): its host
 * pid is what engines see (--pid-file, state.pid), and whoever is this
 * process's subreaper reaps it once this process exits. */
int create_sandbox(const char *id, const struct create_opts *o, pid_t *boot_pid,
		   pid_t *init_pid, struct cv_error *err);
/* start: ContainerRuntimeState must be created, then StartRoot. */
int start_container(const char *id, struct cv_error *err);
/* delete: kill boot, remove cgroups and the sandbox directory. Without
 * force a running container is refused. */
int delete_sandbox(const char *id, bool force, struct cv_error *err);

/* Ptys (cmd/tty.c). */
/* Opens a pty pair in this process's devpts (exec -t); the caller owns
 * both fds. name receives the slave's path. */
int tty_open_pair(int *master, int *slave, char *name, size_t name_len, struct cv_error *err);
/* Connects to the console socket at path (a listener of any unix socket
 * type); returns the fd (the caller owns it). */
int tty_console_connect(const char *path, struct cv_error *err);
/* Sends the master over the unix socket at path with SCM_RIGHTS (runc's
 * console-socket protocol: the payload is the pty's name). */
int tty_send_console(const char *path, int master, const char *name, struct cv_error *err);
/* Receives a pty master sent with SCM_RIGHTS on sock; returns it. */
int tty_recv_console(int sock, struct cv_error *err);
/* Attached `run` with a terminal: raw mode on our stdin if it is a tty (and
 * its size on the pty, then on every SIGWINCH), copies stdin to master
 * and master to stdout until the process child (ours) exits, drains the
 * master, restores the terminal. Returns 0 with *status its wait status. */
/* The caller's terminal (stdin) in raw mode; *saved receives the settings
 * to restore with tcsetattr. False when stdin is not a terminal or the
 * change failed (nothing to restore then). */
bool tty_make_raw(struct termios *saved);
/* Copies the caller's window size (stdin's) to the pty master. */
void tty_copy_winsize(int master);
/* Copies one read's worth from `from` to `to`: 1 copied (or nothing yet),
 * 0 `from` ended (EOF, or EIO: a master whose replicas are all closed),
 * -1 `to` failed. */
int tty_copy_some(int from, int to);
int tty_proxy_until_exit(int master, pid_t child, int *status, struct cv_error *err);


/* Subcontainers (cmd/sub.c): a bundle with the CRI annotations
 * io.kubernetes.cri.container-type "container" and
 * io.kubernetes.cri.sandbox-id is created inside that sandbox. */
/* The sandbox id such a spec names, or NULL (borrowed from spec). */
const char *sub_sandbox_of_spec(json_object *spec);
/* CreateSubcontainer + StartSubcontainer (held before execve), state.json,
 * --pid-file with the sub init's host pid. */
int sub_create(const char *id, const char *sid, json_object *spec, const char *bundle,
	       const char *cg_path, const char *pid_file, const char *console_socket,
	       const char *created, pid_t *boot_pid, pid_t *init_pid, struct cv_error *err);
/* DestroySubcontainer (when the sandbox still runs), its cgroup, its directory. */
int sub_delete(const char *id, const char *sid, const struct cli_state *st, struct cv_error *err);
/* Deletes every subcontainer of sandbox sid (deleting the root ends the pod). */
void sub_delete_all_of(const char *sid);

/* The gofer's work (cmd/gofer.c), shared with `create` of a root container,
 * which donates the same detached mounts to its boot directly. */
struct gofer_bind {
	const char *path; /* absolute host path */
	bool recursive;   /* rbind */
};
/* The spec's bind mounts in its order (relative sources from bundle);
 * *out and *paths are malloc'd, the caller frees both. */
int gofer_binds_of_spec(json_object *spec, const char *bundle, struct gofer_bind **out,
			char **paths, size_t *n, struct cv_error *err);
/* fds[0] = the root as a detached mount (read-only on request), fds[1..n]
 * = one per bind mount. Returns 1 + n, or -1 with nothing left open. */
int gofer_clone(const char *rootfs, bool readonly, const struct gofer_bind *b, size_t n,
		int *fds, struct cv_error *err);

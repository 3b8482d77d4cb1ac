/* Control-socket helpers of the CLI (cmd/conn.h). */
#include "cmd/conn.h"

#include "core/mpk.h"
#include "kernel/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

/* Methods whose reply comes when a process exits: no time bound. */
static const char *const wait_methods[] = { "containerManager.Wait", "containerManager.WaitPID",
					    NULL };

static struct rpc_client *connect_path(const char *path, int ms, struct cv_error *err)
{
	struct rpc_client *c = rpc_client_connect_timeout(path, ms, err);
	if (c)
		rpc_client_set_timeout(c, ms, wait_methods);
	return c;
}

struct rpc_client *cli_connect(const char *id, struct cv_error *err)
{
	return cli_connect_timeout(id, CLI_RPC_TIMEOUT_MS, err);
}

struct rpc_client *cli_connect_timeout(const char *id, int ms, struct cv_error *err)
{
	char path[PATH_MAX];
	if (cli_sandbox_file(id, "control.sock", path, sizeof(path), err) < 0)
		return NULL;
	struct sockaddr_un sa;
	if (strlen(path) < sizeof(sa.sun_path))
		return connect_path(path, ms, err);
	/* Too long for sun_path: reach it through the directory's fd. */
	char dir[PATH_MAX];
	if (cli_sandbox_dir(id, dir, sizeof(dir), err) < 0)
		return NULL;
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		cv_errf(err, errno, "opening %s", dir);
		return NULL;
	}
	char short_path[64];
	snprintf(short_path, sizeof(short_path), "/proc/self/fd/%d/control.sock", dfd);
	struct rpc_client *c = connect_path(short_path, ms, err);
	close(dfd);
	return c;
}

int cli_signal(struct rpc_client *c, const char *id, int signo, int32_t pid, int mode,
	       struct cv_error *err)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	mpk_pack_key(&pk, "CID");
	mpk_pack_str(&pk, id);
	mpk_pack_key(&pk, "Signo");
	msgpack_pack_int32(&pk, signo);
	mpk_pack_key(&pk, "PID");
	msgpack_pack_int32(&pk, pid);
	mpk_pack_key(&pk, "Mode");
	msgpack_pack_int(&pk, mode);
	const msgpack_object *res;
	int r = rpc_client_call(c, "containerManager.Signal", &sb, NULL, 0, &res, NULL, NULL, 0,
				err);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

int cli_result_int(const msgpack_object *o, const char *what, int64_t *out,
		   struct cv_error *err)
{
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
		*out = (int64_t)o->via.u64;
		return 0;
	}
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
	return cv_errf(err, 0, "%s: the sandbox replied with a non-integer result", what);
}

int cli_runtime_state(struct rpc_client *c, const char *id, int64_t *state,
		      struct cv_error *err)
{
	const msgpack_object *res = NULL;
	if (rpc_client_call_str(c, "containerManager.ContainerRuntimeState", id, &res, err) < 0)
		return -1;
	return cli_result_int(res, "containerManager.ContainerRuntimeState", state, err);
}

bool cli_wait_boot_gone(pid_t pid, const char *id, int ms)
{
	for (int waited = 0; cli_boot_alive(pid, id); waited += 10) {
		if (waited >= ms)
			return false;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return true;
}

int cli_status(const char *id, struct cli_state *st, int64_t *state, const char **status,
	       struct cv_error *err)
{
	return cli_status_within(id, CLI_RPC_TIMEOUT_MS, st, state, status, err);
}

/* err (from a timed-out connect or call) → "container "ID": its sandbox
 * (pid N) does not answer: <what>", code ETIMEDOUT. */
static int unresponsive(const char *id, pid_t boot, struct cv_error *err)
{
	struct cv_error inner = *err;
	cv_errf(err, 0, "container \"%s\": its sandbox (pid %d) does not answer: %s", id, (int)boot,
		inner.msg);
	err->code = ETIMEDOUT;
	return -1;
}

bool cli_paused(const struct cli_state *st)
{
	bool recorded = st->paused;
	if (!st->cgroup_path || !*st->cgroup_path)
		return recorded;
	struct cgroup cg;
	struct cv_error err = { 0 };
	bool frozen = recorded;
	if (cgroup_name(&cg, st->cgroup_path, &err) < 0)
		return recorded;
	if (cgroup_freeze_requested(&cg, &frozen, &err) < 0)
		frozen = recorded;
	cgroup_close(&cg);
	return frozen;
}

int cli_status_within(const char *id, int timeout_ms, struct cli_state *st, int64_t *state,
		      const char **status, struct cv_error *err)
{
	if (cli_state_load(id, st, err) < 0)
		return -1;
	struct cv_error cerr = { 0 };
	struct rpc_client *c = cli_connect_timeout(id, timeout_ms, &cerr);
	if (!c && cerr.code == ETIMEDOUT) {
		/* Listening but not accepting: alive and stuck. */
		*err = cerr;
		unresponsive(id, st->boot_pid, err);
		cli_state_free(st);
		return -1;
	}
	if (!c) {
		/* A sandbox whose root container ended stops listening, then
		 * flushes its last replies and exits: give it that time. */
		if (cli_wait_boot_gone(st->boot_pid, id, CLI_BOOT_EXIT_WAIT_MS)) {
			*state = RUNTIME_STATE_STOPPED;
			*status = "stopped";
			return 0;
		}
		cv_errf(err, 0, "container \"%s\": cannot reach its sandbox: %s", id, cerr.msg);
		cli_state_free(st);
		return -1;
	}
	int r = cli_runtime_state(c, id, state, err);
	rpc_client_close(c);
	/* Connected just as the root container ended: boot drops the
	 * connection without a reply on its way out. Same as not listening. */
	if (r < 0 && err && (err->code == ECONNRESET || err->code == EPIPE) &&
	    cli_wait_boot_gone(st->boot_pid, id, CLI_BOOT_EXIT_WAIT_MS)) {
		cv_error_reset(err);
		*state = RUNTIME_STATE_STOPPED;
		*status = "stopped";
		return 0;
	}
	if (r < 0) {
		if (err && err->code == ETIMEDOUT)
			unresponsive(id, st->boot_pid, err);
		cli_state_free(st);
		return -1;
	}
	bool paused = st->paused;
	if (*state == RUNTIME_STATE_RUNNING)
		paused = cli_paused(st);
	*status = cli_status_name(*state, paused);
	return 0;
}

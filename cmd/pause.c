/* `cvisor pause ID` / `cvisor resume ID`: freeze or thaw the sandbox and
 * record it in state.json (the fallback when the freezer cannot be read:
 * cli_paused reads the cgroup first). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

static int pause_resume(const struct cli_command *cmd, int argc, char **argv, bool pause)
{
	int done = cli_no_flags(cmd, argc, argv);
	if (done >= 0)
		return done;
	if (optind + 1 != argc)
		return cli_failf("%s needs exactly one container ID", cmd->name);
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	struct cli_state st;
	int64_t state;
	const char *status;
	if (cli_validate_id(id, &err) < 0 || cli_status(id, &st, &state, &status, &err) < 0)
		return cli_fail(&err);
	int r = 0;
	if (pause && strcmp(status, "running") != 0)
		r = cv_errf(&err, 0, "cannot pause container \"%s\": status is %s", id, status);
	else if (!pause && strcmp(status, "paused") != 0)
		r = cv_errf(&err, 0, "cannot resume container \"%s\": status is %s", id, status);
	struct rpc_client *cl = r == 0 ? cli_connect(id, &err) : NULL;
	if (r == 0 && !cl)
		r = -1;
	const msgpack_object *res;
	if (r == 0)
		r = rpc_client_call_nil(cl, pause ? "Lifecycle.Pause" : "Lifecycle.Resume", &res, &err);
	if (cl)
		rpc_client_close(cl);
	if (r == 0) {
		json_object_object_add(st.j, "paused", json_object_new_boolean(pause));
		r = cli_state_save(id, st.j, &err);
	}
	cli_state_free(&st);
	return r < 0 ? cli_fail(&err) : 0;
}

int cmd_pause(const struct cli_command *cmd, int argc, char **argv)
{
	return pause_resume(cmd, argc, argv, true);
}

int cmd_resume(const struct cli_command *cmd, int argc, char **argv)
{
	return pause_resume(cmd, argc, argv, false);
}

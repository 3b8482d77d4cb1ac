/* `cvisor start ID`: release the created root container. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

int start_container(const char *id, struct cv_error *err)
{
	if (cli_validate_id(id, err) < 0)
		return -1;
	struct cli_state st;
	if (cli_state_load(id, &st, err) < 0)
		return -1;
	bool paused = st.paused;
	cli_state_free(&st);
	struct rpc_client *c = cli_connect(id, err);
	if (!c)
		return cv_error_wrap(err, "cannot start container \"%s\"", id);
	int64_t state = 0;
	int r = cli_runtime_state(c, id, &state, err);
	if (r == 0 && state != RUNTIME_STATE_CREATING)
		r = cv_errf(err, 0, "cannot start container \"%s\" in state %s", id,
			    cli_status_name(state, paused));
	const msgpack_object *res;
	if (r == 0)
		r = rpc_client_call_str(c, "containerManager.StartRoot", id, &res, err);
	rpc_client_close(c);
	return r;
}

int cmd_start(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP, { 0, 0, 0, 0 } };
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (ch == 'h')
			return cli_usage(cmd);
		return cli_bad_flag(cmd, argc, argv);
	}
	if (optind + 1 != argc)
		return cli_failf("start needs exactly one container ID");
	struct cv_error err = { 0 };
	if (start_container(argv[optind], &err) < 0)
		return cli_fail(&err);
	return 0;
}

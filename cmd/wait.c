/* `cvisor wait [--pid N] ID`: prints {"id":"ID","exitStatus":N}. The
 * connect is time-bound (cli_connect); Wait and WaitPID themselves are not:
 * they answer when the process exits. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

/* The root init's status once boot is gone: boot leaves it in
 * $ROOT/ID/exit_status. */
static int recorded_status(const char *id, pid_t boot, int *status, struct cv_error *err)
{
	if (!cli_wait_boot_gone(boot, id, CLI_BOOT_EXIT_WAIT_MS))
		return cv_errf(err, 0, "container \"%s\": its sandbox does not answer", id);
	char path[PATH_MAX], *text = NULL;
	if (cli_sandbox_file(id, CLI_EXIT_STATUS_FILE, path, sizeof(path), err) < 0)
		return -1;
	if (cli_read_file(path, &text, NULL, err) < 0)
		return cv_errf(err, 0, "container \"%s\" has stopped and its exit status was not recorded", id);
	char *end;
	long v = strtol(text, &end, 10);
	bool ok = end != text && v >= 0 && v <= 0xffff;
	free(text);
	if (!ok)
		return cv_errf(err, 0, "%s: not a wait status", path);
	*status = (int)v;
	return 0;
}

int cmd_wait(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, 0, 'p' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	long pid = 0;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': {
			int r = cli_parse_pid_flag(optarg, &pid);
			if (r != 0)
				return r;
			break;
		}
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("wait needs exactly one container ID");
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);
	struct cli_state st;
	if (cli_state_load(id, &st, &err) < 0)
		return cli_fail(&err);
	pid_t boot = st.boot_pid;
	cli_state_free(&st);

	int status = 0;
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl) {
		/* Only the root container's status outlives boot. A connect
		 * that timed out means boot is there but stuck: say so now
		 * rather than wait for an exit that is not coming. */
		if (pid || err.code == ETIMEDOUT || recorded_status(id, boot, &status, &err) < 0)
			return cli_fail(&err);
	} else {
		const msgpack_object *res;
		int r;
		if (pid) {
			msgpack_sbuffer sb;
			msgpack_sbuffer_init(&sb);
			msgpack_packer pk;
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			msgpack_pack_map(&pk, 2);
			mpk_pack_str(&pk, "PID");
			msgpack_pack_int32(&pk, (int32_t)pid);
			mpk_pack_str(&pk, "CID");
			mpk_pack_str(&pk, id);
			r = rpc_client_call(cl, "containerManager.WaitPID", &sb, NULL, 0, &res, NULL,
					    NULL, 0, &err);
			msgpack_sbuffer_destroy(&sb);
		} else {
			r = rpc_client_call_str(cl, "containerManager.Wait", id, &res, &err);
		}
		int64_t v = 0;
		if (r == 0)
			r = cli_result_int(res, pid ? "containerManager.WaitPID" : "containerManager.Wait",
					   &v, &err);
		rpc_client_close(cl);
		/* Connected while boot was ending: the connection drops without a
		 * reply, and the status is the one boot records on its way out. */
		bool hung_up = err.code == EPIPE || err.code == ECONNRESET;
		if (r < 0 && (pid || !hung_up || recorded_status(id, boot, &status, &err) < 0))
			return cli_fail(&err);
		if (r == 0)
			status = (int)v;
	}
	printf("{\"id\":\"%s\",\"exitStatus\":%d}\n", id, cli_exit_code(status));
	return 0;
}

/* `cvisor kill [--all|-a] [--pid N] ID [SIGNAL]`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

/* Signal modes of containerManager.Signal. */
enum { SIGNAL_PROCESS = 0, SIGNAL_ALL = 1 };

int cmd_kill(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, 0, 'a' },
		{ "pid", required_argument, 0, 'p' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	bool all = false;
	long pid = 0;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:ah", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
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
	if (optind >= argc || argc - optind > 2)
		return cli_failf("kill needs a container ID and at most one signal");
	if (all && pid)
		return cli_failf("--all and --pid cannot be used together");
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	int signo = SIGTERM;
	if (cli_validate_id(id, &err) < 0 ||
	    (optind + 1 < argc && cli_parse_signal(argv[optind + 1], &signo, &err) < 0))
		return cli_fail(&err);
	struct cli_state st;
	if (cli_state_load(id, &st, &err) < 0)
		return cli_fail(&err);
	pid_t boot = st.pid;
	cli_state_free(&st);
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl) {
		if (!cli_boot_alive(boot, id))
			return cli_failf("container \"%s\" is not running", id);
		return cli_fail(&err);
	}
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	cli_pack_str(&pk, "CID");
	cli_pack_str(&pk, id);
	cli_pack_str(&pk, "Signo");
	msgpack_pack_int32(&pk, signo);
	cli_pack_str(&pk, "PID");
	msgpack_pack_int32(&pk, (int32_t)pid);
	cli_pack_str(&pk, "Mode");
	msgpack_pack_int(&pk, all ? SIGNAL_ALL : SIGNAL_PROCESS);
	const msgpack_object *res;
	int r = rpc_client_call(cl, "containerManager.Signal", &sb, NULL, 0, &res, NULL, NULL, 0,
				&err);
	msgpack_sbuffer_destroy(&sb);
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

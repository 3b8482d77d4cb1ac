/* `cvisor kill [--all|-a] [--pid N] ID [SIGNAL]`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

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
	pid_t boot = st.boot_pid;
	cli_state_free(&st);
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl) {
		if (!cli_boot_alive(boot, id))
			return cli_failf("container \"%s\" is not running", id);
		return cli_fail(&err);
	}
	int r = cli_signal(cl, id, signo, (int32_t)pid, all ? SIGNAL_ALL : SIGNAL_PROCESS, &err);
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

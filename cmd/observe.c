/* Observability verbs (docs/API.md "Metrics", "debug.Stacks", "Profile",
 * "containerManager.ProcfsDump"): `export-metrics`, `debug`, `trace procfs`.
 * Each asks the sandbox over its control socket and prints what it says. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"
#include "kernel/metrics.h"

/* `cvisor export-metrics [--only-metrics RE] ID`: Prometheus text. */
int cmd_export_metrics(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP,
					      { "only-metrics", required_argument, 0, 'o' },
					      { 0, 0, 0, 0 } };
	const char *only = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return cli_usage(cmd);
		if (c == 'o') {
			only = optarg;
			continue;
		}
		return cli_bad_flag(cmd, argc, argv);
	}
	if (optind + 1 != argc)
		return cli_failf("%s needs exactly one container ID", cmd->name);
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl)
		return cli_fail(&err);
	int r = -1;
	const msgpack_object *res;
	msgpack_sbuffer reg, arg;
	msgpack_sbuffer_init(&reg);
	msgpack_sbuffer_init(&arg);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (rpc_client_call_nil(cl, "Metrics.GetRegisteredMetrics", &res, &err) < 0)
		goto out;
	/* The result lives until the next call: keep its bytes. */
	msgpack_packer pk;
	msgpack_packer_init(&pk, &reg, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *res);
	msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mpk_pack_key(&pk, "only_metrics");
	mpk_pack_str(&pk, only ? only : "");
	if (rpc_client_call(cl, "Metrics.Export", &arg, NULL, 0, &res, NULL, NULL, 0, &err) < 0)
		goto out;
	if (msgpack_unpack_next(&up, reg.data, reg.size, NULL) != MSGPACK_UNPACK_SUCCESS) {
		cv_errf(&err, 0, "decoding the registered metrics");
		goto out;
	}
	r = metrics_write_prometheus(stdout, &up.data, res, &err);
	if (r == 0 && fflush(stdout) != 0)
		r = cv_errf(&err, errno, "writing the metrics");
out:
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&reg);
	msgpack_sbuffer_destroy(&arg);
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

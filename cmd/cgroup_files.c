/* `cvisor read-control ID CONTROLLER PATH NAME` and `cvisor write-control
 * ID CONTROLLER PATH NAME VALUE`: one item of Cgroups.ReadControlFiles /
 * Cgroups.WriteControlFiles (docs/API.md). read-control prints the value
 * and a newline; an item the sandbox refuses is printed to stderr and the
 * verb exits 1. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

static int control_file(const struct cli_command *cmd, int argc, char **argv, bool is_write)
{
	int done = cli_no_flags(cmd, argc, argv);
	if (done >= 0)
		return done;
	int want = is_write ? 5 : 4;
	if (argc - optind != want)
		return cli_failf("%s needs %s", cmd->name,
				 is_write ? "ID CONTROLLER PATH NAME VALUE" : "ID CONTROLLER PATH NAME");
	char **a = argv + optind;
	struct cv_error err = { 0 };
	/* cli_connect refuses an invalid id, naming it. */
	struct rpc_client *cl = cli_connect(a[0], &err);
	if (!cl)
		return cli_fail(&err);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mpk_pack_key(&pk, "args");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, is_write ? 2 : 1);
	mpk_pack_key(&pk, "file");
	msgpack_pack_map(&pk, 3);
	mpk_pack_key(&pk, "controller");
	mpk_pack_str(&pk, a[1]);
	mpk_pack_key(&pk, "path");
	mpk_pack_str(&pk, a[2]);
	mpk_pack_key(&pk, "name");
	mpk_pack_str(&pk, a[3]);
	if (is_write) {
		mpk_pack_key(&pk, "value");
		mpk_pack_str(&pk, a[4]);
	}
	const char *method = is_write ? "Cgroups.WriteControlFiles" : "Cgroups.ReadControlFiles";
	const msgpack_object *res;
	int r = -1;
	if (rpc_client_call(cl, method, &sb, NULL, 0, &res, NULL, NULL, 0, &err) < 0)
		goto out;
	const msgpack_object *results = res ? mpk_map_get(res, "results") : NULL;
	if (!results || results->type != MSGPACK_OBJECT_ARRAY || results->via.array.size != 1) {
		cv_errf(&err, 0, "%s: unexpected reply (want one result)", method);
		goto out;
	}
	const msgpack_object *item = &results->via.array.ptr[0];
	const msgpack_object *val = item->type == MSGPACK_OBJECT_MAP ? mpk_map_get(item, "value")
								     : NULL;
	const msgpack_object *is_err = item->type == MSGPACK_OBJECT_MAP
					       ? mpk_map_get(item, "is_error") : NULL;
	if (!val || val->type != MSGPACK_OBJECT_STR || !is_err ||
	    is_err->type != MSGPACK_OBJECT_BOOLEAN) {
		cv_errf(&err, 0, "%s: unexpected reply (a result needs value and is_error)", method);
		goto out;
	}
	if (is_err->via.boolean) {
		cv_errf(&err, 0, "%.*s", (int)val->via.str.size, val->via.str.ptr);
		goto out;
	}
	if (!is_write) {
		fwrite(val->via.str.ptr, 1, val->via.str.size, stdout);
		fputc('\n', stdout);
		if (fflush(stdout) != 0) {
			cv_errf(&err, errno, "writing the value");
			goto out;
		}
	}
	r = 0;
out:
	msgpack_sbuffer_destroy(&sb);
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

int cmd_read_control(const struct cli_command *cmd, int argc, char **argv)
{
	return control_file(cmd, argc, argv, false);
}

int cmd_write_control(const struct cli_command *cmd, int argc, char **argv)
{
	return control_file(cmd, argc, argv, true);
}

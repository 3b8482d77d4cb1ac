/* `cvisor ps [--format table|json] ID`: containerManager.Processes. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"
#include "core/mpk.h"
#include "kernel/cgroup.h"

#define PS_COLS 9
#define PS_CELL 256

static const char *const ps_head[PS_COLS] = { "UID", "PID", "PPID", "PGID", "C",
					      "TTY", "STIME", "TIME", "CMD" };
static const char *const ps_keys[PS_COLS] = { "uid", "pid", "ppid", "pgid", "c",
					      "tty", "stime", "time", "cmd" };

/* One table cell. Strings come from the container (cmd is whatever name a
 * process gave itself): escaped, so no terminal control reaches stdout. */
static void cell(const msgpack_object *o, char *out, size_t n)
{
	if (!o)
		snprintf(out, n, "?");
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		snprintf(out, n, "%" PRIu64, o->via.u64);
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		snprintf(out, n, "%" PRId64, o->via.i64);
	else if (o->type == MSGPACK_OBJECT_STR)
		cli_escape(o->via.str.ptr, o->via.str.size, out, n);
	else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
		snprintf(out, n, "%g", o->via.f64);
	else
		snprintf(out, n, "?");
}

int cmd_ps(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, 0, 'f' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	const char *format = "table";
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			format = optarg;
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	int fr = cli_check_format(format);
	if (fr != 0)
		return fr;
	if (optind + 1 != argc)
		return cli_failf("ps needs exactly one container ID");
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);
	struct cli_state st;
	if (cli_state_load(id, &st, &err) < 0)
		return cli_fail(&err);
	/* The container's cgroup (state.json's cgroupPath, linux.cgroupsPath
	 * resolved): its processes, by host pid. */
	char cg_path[600];
	snprintf(cg_path, sizeof(cg_path), "%s", st.cgroup_path ? st.cgroup_path : "");
	cli_state_free(&st);
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl)
		return cli_fail(&err);
	const msgpack_object *res;
	if (rpc_client_call_str(cl, "containerManager.Processes", id, &res, &err) < 0) {
		rpc_client_close(cl);
		return cli_fail(&err);
	}
	size_t n = 0;
	const msgpack_object *procs = NULL;
	if (res->type == MSGPACK_OBJECT_ARRAY) {
		n = res->via.array.size;
		procs = res->via.array.ptr;
	} else if (res->type != MSGPACK_OBJECT_NIL) {
		rpc_client_close(cl);
		return cli_failf("containerManager.Processes: the sandbox replied with a non-array result");
	}

	if (strcmp(format, "json") == 0) {
		/* runc's form, which the containerd shim reads: the host PIDs of
		 * every process in the container's cgroup. The Processes call
		 * above proved the container exists. */
		rpc_client_close(cl);
		struct cgroup cg;
		pid_t *pids = NULL;
		size_t np = 0;
		if (cgroup_open(&cg, cg_path, &err) < 0)
			return cli_fail(&err);
		int r = cgroup_pids(&cg, &pids, &np, &err);
		cgroup_close(&cg);
		if (r < 0)
			return cli_fail(&err);
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < np; i++)
			json_object_array_add(arr, json_object_new_int64(pids[i]));
		free(pids);
		cli_json_print(stdout, arr, false);
		putchar('\n');
		json_object_put(arr);
		return 0;
	}

	/* Table: runsc's tabwriter layout, cells padded to max(10, widest+3). */
	char(*cells)[PS_COLS][PS_CELL] = calloc(n + 1, sizeof(*cells));
	if (!cells) {
		rpc_client_close(cl);
		return cli_failf("ps: out of memory");
	}
	for (int k = 0; k < PS_COLS; k++)
		snprintf(cells[0][k], PS_CELL, "%s", ps_head[k]);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < PS_COLS; k++)
			cell(mpk_map_get(&procs[i], ps_keys[k]), cells[i + 1][k], PS_CELL);
	rpc_client_close(cl);
	/* Widths in columns (code points), as Go's tabwriter counts. */
	size_t w[PS_COLS];
	for (int k = 0; k < PS_COLS; k++) {
		size_t m = 0;
		for (size_t i = 0; i <= n; i++)
			if (cli_text_width(cells[i][k]) > m)
				m = cli_text_width(cells[i][k]);
		w[k] = m + 3 > 10 ? m + 3 : 10;
	}
	for (size_t i = 0; i <= n; i++) {
		for (int k = 0; k < PS_COLS - 1; k++)
			printf("%s%*s", cells[i][k], (int)(w[k] - cli_text_width(cells[i][k])), "");
		printf("%s\n", cells[i][PS_COLS - 1]);
	}
	free(cells);
	return 0;
}

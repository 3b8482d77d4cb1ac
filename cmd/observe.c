/* Observability verbs (docs/API.md "Metrics", "debug.Stacks", "Profile",
 * "containerManager.ProcfsDump"): `export-metrics`, `debug`, `trace procfs`.
 * Each asks the sandbox over its control socket and prints what it says. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/trace.h"
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
	/* cli_connect refuses an invalid id, naming it. */
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

/* Logging.Change's wire levels: 0 warning, 1 info, 2 debug. */
static int parse_wire_level(const char *s, uint32_t *out)
{
	static const char *const names[] = { "warning", "info", "debug" };
	for (uint32_t i = 0; i < 3; i++) {
		char digit[2] = { (char)('0' + i), 0 };
		if (strcmp(s, names[i]) == 0 || strcmp(s, digit) == 0) {
			*out = i;
			return 0;
		}
	}
	if (strcmp(s, "warn") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

static int debug_stacks_print(struct rpc_client *cl, struct cv_error *err)
{
	const msgpack_object *res;
	if (rpc_client_call_nil(cl, "debug.Stacks", &res, err) < 0)
		return -1;
	if (res->type != MSGPACK_OBJECT_STR)
		return cv_errf(err, 0, "debug.Stacks: expected a string, got %s",
			       mpk_type_name(res->type));
	fwrite(res->via.str.ptr, 1, res->via.str.size, stdout);
	return fflush(stdout) == 0 ? 0 : cv_errf(err, errno, "writing the stacks");
}

static int debug_log_level(struct rpc_client *cl, uint32_t level, struct cv_error *err)
{
	msgpack_sbuffer arg;
	msgpack_sbuffer_init(&arg);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mpk_pack_key(&pk, "SetLevel");
	msgpack_pack_true(&pk);
	mpk_pack_key(&pk, "Level");
	msgpack_pack_uint32(&pk, level);
	const msgpack_object *res;
	int r = rpc_client_call(cl, "Logging.Change", &arg, NULL, 0, &res, NULL, NULL, 0, err);
	msgpack_sbuffer_destroy(&arg);
	return r;
}

/* "1s", "500ms", "2m", "1.5s", or a bare number of seconds → ns. */
int cli_parse_duration(const char *s, int64_t *ns)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double mul = 1e9;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1e9;
	else if (strcmp(end, "ms") == 0)
		mul = 1e6;
	else if (strcmp(end, "us") == 0)
		mul = 1e3;
	else if (strcmp(end, "m") == 0)
		mul = 60e9;
	else
		return -1;
	*ns = (int64_t)(v * mul);
	return 0;
}

/* Profile.<kind> with one output fd: the file at path. */
static int debug_profile(struct rpc_client *cl, const char *method, const char *path,
			 int64_t duration_ns, bool with_duration, struct cv_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cv_errf(err, errno, "opening %s", path);
	msgpack_sbuffer arg;
	msgpack_sbuffer_init(&arg);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, with_duration ? 2 : 1);
	if (with_duration) {
		mpk_pack_key(&pk, "Duration");
		msgpack_pack_int64(&pk, duration_ns);
	}
	mpk_pack_key(&pk, "Files");
	msgpack_pack_uint32(&pk, 1);
	/* The call answers once the profile is written: the duration plus
	 * the usual bound. */
	rpc_client_set_timeout(cl, (int)(duration_ns / 1000000) + CLI_RPC_TIMEOUT_MS, NULL);
	const msgpack_object *res;
	int r = rpc_client_call(cl, method, &arg, &fd, 1, &res, NULL, NULL, 0, err);
	msgpack_sbuffer_destroy(&arg);
	close(fd);
	return r;
}

/* `cvisor debug ID --stacks | --profile-cpu F | --profile-heap F |
 * --trace F | --log-level L [--duration D]`: one action per flag, in
 * that order. */
int cmd_debug(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_OPT_HELP,
		{ "stacks", no_argument, 0, 's' },
		{ "profile-cpu", required_argument, 0, 'c' },
		{ "profile-heap", required_argument, 0, 'H' },
		{ "trace", required_argument, 0, 't' },
		{ "duration", required_argument, 0, 'd' },
		{ "log-level", required_argument, 0, 'l' },
		{ "strace", required_argument, 0, 'S' },
		{ 0, 0, 0, 0 },
	};
	bool stacks = false;
	const char *cpu = NULL, *heap = NULL, *trace = NULL, *level = NULL, *strace = NULL;
	int64_t duration = 1000000000LL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_usage(cmd);
		case 's':
			stacks = true;
			break;
		case 'c':
			cpu = optarg;
			break;
		case 'H':
			heap = optarg;
			break;
		case 't':
			trace = optarg;
			break;
		case 'l':
			level = optarg;
			break;
		case 'S':
			strace = optarg;
			break;
		case 'd':
			if (cli_parse_duration(optarg, &duration) < 0)
				return cli_failf("--duration: invalid duration %s (e.g. 1s, 500ms)", optarg);
			break;
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("%s needs exactly one container ID", cmd->name);
	if (!stacks && !cpu && !heap && !trace && !level && !strace)
		return cli_failf("debug: nothing to do: give --stacks, --profile-cpu, --profile-heap, "
				 "--trace, --log-level or --strace");
	uint32_t wire_level = 0;
	if (level && parse_wire_level(level, &wire_level) < 0)
		return cli_failf("--log-level: invalid level %s (want warning, info or debug)", level);
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	/* cli_connect refuses an invalid id, naming it. */
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl)
		return cli_fail(&err);
	int r = 0;
	if (r == 0 && level)
		r = debug_log_level(cl, wire_level, &err);
	if (r == 0 && strace)
		r = cli_debug_strace(cl, strace, &err);
	if (r == 0 && stacks)
		r = debug_stacks_print(cl, &err);
	if (r == 0 && heap)
		r = debug_profile(cl, "Profile.Heap", heap, 0, false, &err);
	if (r == 0 && cpu)
		r = debug_profile(cl, "Profile.CPU", cpu, duration, true, &err);
	if (r == 0 && trace)
		r = debug_profile(cl, "Profile.Trace", trace, duration, true, &err);
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

/* One msgpack object as compact JSON (ProcfsDump's entries: maps with
 * string keys, arrays, strings, integers, bools). */
void cli_mp_json(FILE *f, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", f);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", f);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(f, "%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		fprintf(f, "%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		fprintf(f, "%.17g", o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
		cli_json_write_str(f, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		fputc('[', f);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				fputc(',', f);
			cli_mp_json(f, &o->via.array.ptr[i]);
		}
		fputc(']', f);
		break;
	case MSGPACK_OBJECT_MAP:
		fputc('{', f);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (i)
				fputc(',', f);
			if (kv->key.type == MSGPACK_OBJECT_STR)
				cli_mp_json(f, &kv->key);
			else
				cli_json_write_str(f, "?", 1);
			fputc(':', f);
			cli_mp_json(f, &kv->val);
		}
		fputc('}', f);
		break;
	case MSGPACK_OBJECT_EXT:
		fputs("null", f);
		break;
	}
}

/* `cvisor trace procfs ID`: containerManager.ProcfsDump, one JSON object
 * per process per line. */
int cmd_trace(const struct cli_command *cmd, int argc, char **argv)
{
	/* The session subcommands have flags of their own (cmd/trace.c). */
	if (argc > 1 && (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "delete") == 0 ||
			 strcmp(argv[1], "list") == 0))
		return cli_trace_session_verb(argc - 1, argv + 1);
	int done = cli_no_flags(cmd, argc, argv);
	if (done >= 0)
		return done;
	if (optind >= argc || strcmp(argv[optind], "procfs") != 0)
		return cli_failf("trace: unknown subcommand %s (want: procfs, create, delete, list)",
				 optind < argc ? argv[optind] : "(none)");
	if (optind + 2 != argc)
		return cli_failf("trace procfs needs exactly one container ID");
	const char *id = argv[optind + 1];
	struct cv_error err = { 0 };
	/* cli_connect refuses an invalid id, naming it. */
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl)
		return cli_fail(&err);
	const msgpack_object *res;
	int r = rpc_client_call_nil(cl, "containerManager.ProcfsDump", &res, &err);
	if (r == 0 && res->type != MSGPACK_OBJECT_ARRAY)
		r = cv_errf(&err, 0, "ProcfsDump: expected an array, got %s", mpk_type_name(res->type));
	for (uint32_t i = 0; r == 0 && i < res->via.array.size; i++) {
		cli_mp_json(stdout, &res->via.array.ptr[i]);
		fputc('\n', stdout);
	}
	if (r == 0 && fflush(stdout) != 0)
		r = cv_errf(&err, errno, "writing the dump");
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

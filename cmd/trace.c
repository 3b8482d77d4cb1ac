/* `cvisor trace create --config FILE [--force] ID`, `trace delete ID`,
 * `trace list ID` (containerManager.*TraceSession, docs/API.md). As runsc
 * does, the CLI runs each sink's host-side set-up: a remote sink's
 * config.endpoint is connected here (SOCK_SEQPACKET) and the connected
 * socket is what the sandbox gets, in the order of the sinks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/trace.h"
#include "cmd/verbs.h"
#include "core/mpk.h"
#include "rpc/client.h"

#define TRACE_SINKS_MAX 8

static int connect_endpoint(const char *path, struct cv_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return cv_errf(err, ENAMETOOLONG, "remote sink endpoint \"%s\" is too long", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cv_errf(err, errno, "remote sink: socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "remote sink: connecting to %s", path);
	}
	return fd;
}

/* The session config of the file: {"trace_session": {...}} (runsc's pod
 * init format) or the SessionConfig itself. Sets up the sinks' fds. */
static int load_config(const char *path, json_object **cfg_out, int *fds, size_t *nfds,
		       struct cv_error *err)
{
	char *text;
	size_t len;
	if (cli_read_file(path, &text, &len, err) < 0)
		return -1;
	json_object *root = json_tokener_parse(text);
	free(text);
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return cv_errf(err, 0, "%s: expected a JSON object", path);
	}
	json_object *cfg = root, *sinks;
	if (json_object_object_get_ex(root, "trace_session", &cfg))
		json_object_get(cfg);
	else
		cfg = json_object_get(root);
	json_object_put(root);
	if (!json_object_is_type(cfg, json_type_object)) {
		json_object_put(cfg);
		return cv_errf(err, 0, "%s: trace_session: expected an object", path);
	}
	*nfds = 0;
	if (json_object_object_get_ex(cfg, "sinks", &sinks) &&
	    json_object_is_type(sinks, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(sinks); i++) {
			json_object *s = json_object_array_get_idx(sinks, i), *name, *conf, *ep, *ign;
			if (!json_object_object_get_ex(s, "name", &name) ||
			    strcmp(json_object_get_string(name), "remote") != 0)
				continue;
			if (!json_object_object_get_ex(s, "config", &conf) ||
			    !json_object_object_get_ex(conf, "endpoint", &ep) ||
			    !json_object_is_type(ep, json_type_string)) {
				cv_errf(err, 0, "%s: sinks[%zu].config.endpoint: missing (the remote "
						"sink's socket path)", path, i);
				goto fail;
			}
			if (*nfds == TRACE_SINKS_MAX) {
				cv_errf(err, E2BIG, "%s: more than %d remote sinks", path,
					TRACE_SINKS_MAX);
				goto fail;
			}
			int fd = connect_endpoint(json_object_get_string(ep), err);
			/* ignore_setup_error: the session goes on without this sink. */
			if (fd < 0 && json_object_object_get_ex(s, "ignore_setup_error", &ign) &&
			    json_object_get_boolean(ign)) {
				fprintf(stderr, "cvisor: %s; sink dropped (ignore_setup_error)\n",
					err->msg);
				cv_error_reset(err);
				json_object_array_del_idx(sinks, i--, 1);
				continue;
			}
			if (fd < 0)
				goto fail;
			fds[(*nfds)++] = fd;
		}
	}
	*cfg_out = cfg;
	return 0;
fail:
	for (size_t i = 0; i < *nfds; i++)
		close(fds[i]);
	*nfds = 0;
	json_object_put(cfg);
	return -1;
}

static int trace_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, 0, 'c' },
		{ "force", no_argument, 0, 'f' },
		{ 0, 0, 0, 0 },
	};
	const char *config = NULL;
	bool force = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'f')
			force = true;
		else
			return cli_failf("trace create: unknown flag %s", argv[optind - 1]);
	}
	if (!config)
		return cli_failf("trace create: --config FILE is required");
	if (optind + 1 != argc)
		return cli_failf("trace create needs exactly one container ID");
	struct cv_error err = { 0 };
	json_object *cfg = NULL;
	int fds[TRACE_SINKS_MAX];
	size_t nfds = 0;
	if (load_config(config, &cfg, fds, &nfds, &err) < 0)
		return cli_fail(&err);
	msgpack_sbuffer arg;
	msgpack_sbuffer_init(&arg);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	mpk_pack_key(&pk, "Config");
	int r = json_mp_pack(cfg, &pk, &err);
	json_object_put(cfg);
	mpk_pack_key(&pk, "Force");
	if (force)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	mpk_pack_key(&pk, "Files");
	msgpack_pack_uint32(&pk, (uint32_t)nfds);
	struct rpc_client *cl = r == 0 ? cli_connect(argv[optind], &err) : NULL;
	if (cl) {
		const msgpack_object *res;
		r = rpc_client_call(cl, "containerManager.CreateTraceSession", &arg, fds, nfds, &res,
				    NULL, NULL, 0, &err);
		rpc_client_close(cl);
	} else {
		r = -1;
	}
	msgpack_sbuffer_destroy(&arg);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	return r < 0 ? cli_fail(&err) : 0;
}

static int trace_delete(int argc, char **argv)
{
	if (argc != 2)
		return cli_failf("trace delete needs exactly one container ID");
	struct cv_error err = { 0 };
	struct rpc_client *cl = cli_connect(argv[1], &err);
	if (!cl)
		return cli_fail(&err);
	const msgpack_object *res;
	int r = rpc_client_call_str(cl, "containerManager.DeleteTraceSession", "Default", &res,
				    &err);
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

/* One JSON line per session: its name and each sink's dropped count. */
static int trace_list(int argc, char **argv)
{
	if (argc != 2)
		return cli_failf("trace list needs exactly one container ID");
	struct cv_error err = { 0 };
	struct rpc_client *cl = cli_connect(argv[1], &err);
	if (!cl)
		return cli_fail(&err);
	const msgpack_object *res;
	int r = rpc_client_call_nil(cl, "containerManager.ListTraceSessions", &res, &err);
	if (r == 0 && res->type != MSGPACK_OBJECT_ARRAY)
		r = cv_errf(&err, 0, "ListTraceSessions: expected an array, got %s",
			    mpk_type_name(res->type));
	for (uint32_t i = 0; r == 0 && i < res->via.array.size; i++) {
		cli_mp_json(stdout, &res->via.array.ptr[i]);
		fputc('\n', stdout);
	}
	if (r == 0 && fflush(stdout) != 0)
		r = cv_errf(&err, errno, "writing the list");
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

int cli_trace_session_verb(int argc, char **argv)
{
	if (strcmp(argv[0], "create") == 0)
		return trace_create(argc, argv);
	if (strcmp(argv[0], "delete") == 0)
		return trace_delete(argc, argv);
	return trace_list(argc, argv);
}

/* --strace all|off|a,b,c → Logging.Change (SetStrace, EnableStrace,
 * StraceAllowlist). */
int cli_debug_strace(struct rpc_client *cl, const char *spec, struct cv_error *err)
{
	bool off = strcmp(spec, "off") == 0, all = strcmp(spec, "all") == 0;
	char buf[4096];
	if (strlen(spec) >= sizeof(buf) || !*spec)
		return cv_errf(err, EINVAL, "--strace: expected all, off or a list of syscalls");
	strcpy(buf, spec);
	char *names[256];
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t && !off && !all; t = strtok_r(NULL, ",", &save)) {
		if (n == 256)
			return cv_errf(err, E2BIG, "--strace: more than 256 syscalls");
		names[n++] = t;
	}
	msgpack_sbuffer arg;
	msgpack_sbuffer_init(&arg);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	mpk_pack_key(&pk, "SetStrace");
	msgpack_pack_true(&pk);
	mpk_pack_key(&pk, "EnableStrace");
	if (off)
		msgpack_pack_false(&pk);
	else
		msgpack_pack_true(&pk);
	mpk_pack_key(&pk, "StraceAllowlist");
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++)
		mpk_pack_str(&pk, names[i]);
	const msgpack_object *res;
	int r = rpc_client_call(cl, "Logging.Change", &arg, NULL, 0, &res, NULL, NULL, 0, err);
	msgpack_sbuffer_destroy(&arg);
	return r;
}

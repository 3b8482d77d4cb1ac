/* `cvisor usage` and `cvisor events` (docs/API.md "Usage.Collect",
 * "Usage.UsageFD", "containerManager.Event"). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"
#include "kernel/runtime_state.h"

static int usage_fd_print(struct rpc_client *cl, struct cv_error *err)
{
	msgpack_sbuffer arg;
	msgpack_sbuffer_init(&arg);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mpk_pack_key(&pk, "Version");
	msgpack_pack_int64(&pk, 1);
	const msgpack_object *res;
	int fds[4];
	size_t nfds = 0;
	int r = rpc_client_call(cl, "Usage.UsageFD", &arg, NULL, 0, &res, fds, &nfds, 4, err);
	msgpack_sbuffer_destroy(&arg);
	if (r < 0)
		return -1;
	if (nfds != 1)
		r = cv_errf(err, 0, "Usage.UsageFD: expected 1 file, got %zu", nfds);
	uint64_t w[2] = { 0, 0 };
	if (r == 0) {
		ssize_t n = pread(fds[0], w, sizeof(w), 0);
		if (n != (ssize_t)sizeof(w))
			r = cv_errf(err, n < 0 ? errno : 0, "reading the usage memfd");
	}
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	if (r < 0)
		return -1;
	/* The layout is little-endian u64s; so are the hosts cvisor runs on. */
	printf("{\"Total\":%" PRIu64 ",\"Mapped\":%" PRIu64 "}\n", w[0], w[1]);
	return 0;
}

/* `cvisor usage [--full] [--fd] ID`. */
int cmd_usage(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP,
					      { "full", no_argument, 0, 'f' },
					      { "fd", no_argument, 0, 'F' },
					      { 0, 0, 0, 0 } };
	bool full = false, fd = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return cli_usage(cmd);
		if (c == 'f')
			full = true;
		else if (c == 'F')
			fd = true;
		else
			return cli_bad_flag(cmd, argc, argv);
	}
	if (optind + 1 != argc)
		return cli_failf("%s needs exactly one container ID", cmd->name);
	struct cv_error err = { 0 };
	struct rpc_client *cl = cli_connect(argv[optind], &err);
	if (!cl)
		return cli_fail(&err);
	int r;
	if (fd) {
		r = usage_fd_print(cl, &err);
	} else {
		msgpack_sbuffer arg;
		msgpack_sbuffer_init(&arg);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &arg, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 1);
		mpk_pack_key(&pk, "Full");
		if (full)
			msgpack_pack_true(&pk);
		else
			msgpack_pack_false(&pk);
		const msgpack_object *res;
		r = rpc_client_call(cl, "Usage.Collect", &arg, NULL, 0, &res, NULL, NULL, 0, &err);
		msgpack_sbuffer_destroy(&arg);
		if (r == 0) {
			cli_mp_json(stdout, res);
			fputc('\n', stdout);
		}
	}
	if (r == 0 && fflush(stdout) != 0)
		r = cv_errf(&err, errno, "writing the usage");
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

static volatile sig_atomic_t events_stop;

static void events_on_signal(int sig)
{
	(void)sig;
	events_stop = 1;
}

/* Prints the "event" of one containerManager.Event answer. */
static int event_print(struct rpc_client *cl, const char *id, struct cv_error *err)
{
	const msgpack_object *res;
	if (rpc_client_call_str(cl, "containerManager.Event", id, &res, err) < 0)
		return -1;
	const msgpack_object *ev = NULL;
	if (res->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < res->via.map.size; i++) {
			const msgpack_object_kv *kv = &res->via.map.ptr[i];
			if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 &&
			    memcmp(kv->key.via.str.ptr, "event", 5) == 0)
				ev = &kv->val;
		}
	if (!ev)
		return cv_errf(err, 0, "containerManager.Event: no \"event\" in the answer");
	cli_mp_json(stdout, ev);
	fputc('\n', stdout);
	if (fflush(stdout) != 0)
		return cv_errf(err, errno, "writing the event");
	return 0;
}

/* Whether the container has stopped (its sandbox gone or its state 3). */
static bool events_container_stopped(const char *id)
{
	struct cli_state st = { 0 };
	int64_t state = 0;
	const char *status = NULL;
	struct cv_error err = { 0 };
	bool stopped = false;
	if (cli_status(id, &st, &state, &status, &err) == 0)
		stopped = state == RUNTIME_STATE_STOPPED;
	else if (st.boot_pid > 0)
		stopped = cli_wait_boot_gone(st.boot_pid, id, CLI_BOOT_EXIT_WAIT_MS);
	cli_state_free(&st);
	return stopped;
}

/* `cvisor events [--stats] [--interval D] ID`. */
int cmd_events(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP,
					      { "stats", no_argument, 0, 's' },
					      { "interval", required_argument, 0, 'i' },
					      { 0, 0, 0, 0 } };
	bool stats = false;
	int64_t interval = 5000000000LL; /* runc's default */
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return cli_usage(cmd);
		if (c == 's') {
			stats = true;
		} else if (c == 'i') {
			if (cli_parse_duration(optarg, &interval) < 0 || interval <= 0)
				return cli_failf("--interval: invalid duration %s", optarg);
		} else {
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("%s needs exactly one container ID", cmd->name);
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl)
		return cli_fail(&err);
	if (stats) {
		int r = event_print(cl, id, &err);
		rpc_client_close(cl);
		return r < 0 ? cli_fail(&err) : 0;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = events_on_signal; /* no SA_RESTART: the sleep ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int r = 0;
	while (!events_stop) {
		int64_t state = 0;
		if (cli_runtime_state(cl, id, &state, &err) < 0 || state == RUNTIME_STATE_STOPPED ||
		    event_print(cl, id, &err) < 0) {
			if (state == RUNTIME_STATE_STOPPED || events_container_stopped(id))
				r = 0;
			else
				r = -1;
			break;
		}
		struct timespec ts = { (time_t)(interval / 1000000000LL),
				       (long)(interval % 1000000000LL) };
		while (!events_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	rpc_client_close(cl);
	return r < 0 ? cli_fail(&err) : 0;
}

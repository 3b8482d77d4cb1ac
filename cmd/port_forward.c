/* `cvisor port-forward ID LOCAL:REMOTE` and `cvisor port-forward --stream
 * UDS ID PORT` (docs/API.md, containerManager.PortForward).
 *
 * The first listens on 127.0.0.1:LOCAL and hands every accepted
 * connection itself to the sandbox in one PortForward: the sandbox relays
 * it to REMOTE in the container, so no byte passes through this process.
 * It ends on SIGINT or SIGTERM, or when the sandbox ends (its boot process
 * exits with the root container). The second connects to a unix socket
 * and hands that connection over once. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* The sandbox answers PortForward when the connect completed, which it
 * bounds at 10 s (kernel/port_forward.c): wait a little longer than that
 * rather than CLI_RPC_TIMEOUT_MS, or a slow connect would be cut short. */
#define PF_CALL_TIMEOUT_MS 15000

/* One PortForward handing fd (the caller keeps its copy) to the sandbox. */
static int forward(const char *id, uint16_t port, int fd, struct cv_error *err)
{
	struct rpc_client *cl = cli_connect_timeout(id, PF_CALL_TIMEOUT_MS, err);
	if (!cl)
		return -1;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	mpk_pack_key(&pk, "ContainerID");
	mpk_pack_str(&pk, id);
	mpk_pack_key(&pk, "Port");
	msgpack_pack_uint16(&pk, port);
	mpk_pack_key(&pk, "Files");
	msgpack_pack_int(&pk, 1);
	const msgpack_object *res;
	int r = rpc_client_call(cl, "containerManager.PortForward", &sb, &fd, 1, &res, NULL, NULL, 0,
				err);
	msgpack_sbuffer_destroy(&sb);
	rpc_client_close(cl);
	return r;
}

static int running(const char *id, struct cv_error *err, pid_t *boot)
{
	struct cli_state st;
	int64_t state;
	const char *status;
	if (cli_status(id, &st, &state, &status, err) < 0)
		return -1;
	int r = 0;
	if (strcmp(status, "running") != 0)
		r = cv_errf(err, 0, "container \"%s\" is %s, not running", id, status);
	*boot = st.boot_pid;
	cli_state_free(&st);
	return r;
}

static int stream_once(const char *path, const char *id, uint16_t port, struct cv_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return cv_errf(err, ENAMETOOLONG, "--stream %s", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cv_errf(err, errno, "creating a unix socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "connecting to %s", path);
	}
	int r = forward(id, port, fd, err);
	close(fd);
	return r;
}

static int listen_local(uint16_t port, struct cv_error *err)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cv_errf(err, errno, "creating the listening socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr = { htonl(INADDR_LOOPBACK) } };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "listening on 127.0.0.1:%u", port);
	}
	return fd;
}

/* Accepts until a signal or the sandbox's end. */
static int serve(const char *id, uint16_t local, uint16_t remote, pid_t boot,
		 struct cv_error *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	int bfd = (int)syscall(SYS_pidfd_open, boot, 0);
	int lfd = listen_local(local, err);
	int r = 0;
	if (sfd < 0 || bfd < 0)
		r = cv_errf(err, errno, "watching signals and the sandbox");
	if (lfd < 0)
		r = -1;
	if (r == 0) {
		fprintf(stderr, "forwarding 127.0.0.1:%u to port %u of %s\n", local, remote, id);
		fflush(stderr);
	}
	while (r == 0) {
		struct pollfd p[3] = { { lfd, POLLIN, 0 }, { sfd, POLLIN, 0 }, { bfd, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = cv_errf(err, errno, "waiting for connections");
			break;
		}
		if (p[1].revents || p[2].revents)
			break; /* a signal, or the sandbox ended */
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue; /* the peer went away, or out of fds for now */
		struct cv_error e;
		cv_error_reset(&e);
		if (forward(id, remote, c, &e) < 0) {
			fprintf(stderr, "cvisor: %s\n", e.msg);
			fflush(stderr);
		}
		close(c); /* the sandbox holds its own copy */
	}
	if (lfd >= 0)
		close(lfd);
	if (bfd >= 0)
		close(bfd);
	if (sfd >= 0)
		close(sfd);
	return r;
}

int cmd_port_forward(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stream", required_argument, 0, 's' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	const char *stream = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			stream = optarg;
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 2 != argc)
		return cli_failf("port-forward needs an ID and %s", stream ? "a PORT" : "LOCAL:REMOTE");
	const char *id = argv[optind], *spec = argv[optind + 1];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);
	uint16_t local = 0, remote = 0;
	if (stream) {
		if (parse_port(spec, &remote) < 0)
			return cli_failf("port-forward: \"%s\" is not a port (1-65535)", spec);
	} else {
		const char *colon = strchr(spec, ':');
		char l[16];
		if (!colon || (size_t)(colon - spec) >= sizeof(l))
			return cli_failf("port-forward: \"%s\" is not LOCAL:REMOTE", spec);
		memcpy(l, spec, (size_t)(colon - spec));
		l[colon - spec] = '\0';
		if (parse_port(l, &local) < 0 || parse_port(colon + 1, &remote) < 0)
			return cli_failf("port-forward: \"%s\" is not LOCAL:REMOTE (ports 1-65535)", spec);
	}
	pid_t boot = 0;
	if (running(id, &err, &boot) < 0)
		return cli_fail(&err);
	int r = stream ? stream_once(stream, id, remote, &err) : serve(id, local, remote, boot, &err);
	return r < 0 ? cli_fail(&err) : 0;
}

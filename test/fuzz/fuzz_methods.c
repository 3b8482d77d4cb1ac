/* Fuzz target for the method arguments, decoded by the real handlers: each
 * input becomes one MessagePack-RPC request to a server serving the
 * sandbox's own method table (kernel/methods.c methods_table()) with an
 * empty sandbox as context. The handlers' decoding runs exactly as in a
 * live sandbox: mpk_decode with the static schemas in kernel/exec.c
 * (ExecArgs, Capabilities), signal.c (SignalArgs) and wait.c (WaitPIDArgs),
 * mpk_decode_str through kernel/park.c arg_string for the cid-only methods,
 * plus the range checks that precede the container lookup. No container
 * exists, so every call ends at that lookup and nothing is spawned or
 * signalled.
 *
 * Served: the methods that decode an argument and need nothing but the
 * sandbox's container list. Left out: StartRoot (its arg goes through the
 * same arg_string as Wait, then it needs the root container a live sandbox
 * always has) and Pause/Resume (they ignore their argument and freeze the
 * sandbox's cgroup).
 *
 * Input: byte 0 picks the method (modulo the served count), the rest is
 * one msgpack object, the argument (inputs that do not frame or unpack are
 * skipped: the framing is fuzz_rpc's job). Checked: exactly one response
 * per request, [1, msgid, error, result] with error nil or a non-empty
 * string; no fd or memory leak; the connection is torn down. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "rpc/server.h"
#include "fuzz_frame.h"

static const char *const served[] = {
	"containerManager.ExecuteAsync",
	"containerManager.Signal",
	"containerManager.WaitPID",
	"containerManager.Wait",
	"containerManager.Processes",
	"containerManager.ContainerRuntimeState",
};
#define NSERVED (sizeof(served) / sizeof(served[0]))

static struct ev_loop *loop;
static struct rpc_server *srv;
static struct sandbox sb;
static struct rpc_method table[NSERVED];
static char path[108];

static void setup(void)
{
	struct cv_error err = { 0 };
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LL_ERROR);
	/* Each served name must be in the real table, with its real handler. */
	const struct rpc_method *all = methods_table();
	for (size_t i = 0; i < NSERVED; i++) {
		size_t k = 0;
		while (k < methods_count() && strcmp(all[k].name, served[i]) != 0)
			k++;
		if (k == methods_count()) {
			fprintf(stderr, "fuzz_methods: %s is not in the method table\n", served[i]);
			abort();
		}
		table[i] = all[k];
	}
	list_init(&sb.containers);
	sb.id = "fuzz";
	sb.sigfd = -1;
	if (core_loop_init(&err) < 0)
		abort();
	loop = core_loop();
	snprintf(path, sizeof(path), "/tmp/cvisor-fuzz-methods-%d.sock", getpid());
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	srv = rpc_server_new(loop, fd, table, NSERVED, &lim, &sb, &err);
	if (!srv) {
		fprintf(stderr, "fuzz_methods: %s\n", err.msg);
		abort();
	}
	sb.rpc = srv;
	ev_run(loop, EVRUN_NOWAIT);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Runs the loop until *out holds one whole message (or the server closed). */
static void wait_one_message(int c, msgpack_sbuffer *out)
{
	for (int spins = 0; spins < 100000; spins++) {
		msgpack_zone z;
		msgpack_zone_init(&z, 1024);
		msgpack_object o;
		size_t off = 0;
		msgpack_unpack_return r = out->size ? msgpack_unpack(out->data, out->size, &off, &z, &o)
						    : MSGPACK_UNPACK_CONTINUE;
		msgpack_zone_destroy(&z);
		if (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES ||
		    r == MSGPACK_UNPACK_PARSE_ERROR)
			return;
		ev_run(loop, EVRUN_NOWAIT);
		char buf[4096];
		ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			msgpack_sbuffer_write(out, buf, (size_t)n);
		else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return;
	}
}

/* Reads what the server sent into *out until it closes. */
static void read_all(int c, msgpack_sbuffer *out)
{
	for (int spins = 0; spins < 100000; spins++) {
		ev_run(loop, EVRUN_NOWAIT);
		char buf[4096];
		ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			msgpack_sbuffer_write(out, buf, (size_t)n);
			continue;
		}
		if (n == 0 && rpc_server_nconns(srv) == 0)
			return;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return;
	}
	fprintf(stderr, "fuzz_methods: the server never closed the connection\n");
	abort();
}

static void check_response(const msgpack_sbuffer *in, const char *method)
{
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		abort();
	msgpack_object r;
	size_t off = 0;
	int u = msgpack_unpack(in->data, in->size, &off, zone, &r);
	if (u != MSGPACK_UNPACK_SUCCESS || off != in->size) {
		fprintf(stderr, "fuzz_methods: %s: %zu reply bytes are not exactly one message\n",
			method, in->size);
		abort();
	}
	assert(r.type == MSGPACK_OBJECT_ARRAY && r.via.array.size == 4);
	const msgpack_object *el = r.via.array.ptr;
	assert(el[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && el[0].via.u64 == 1);
	assert(el[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && el[1].via.u64 == 7);
	if (el[2].type == MSGPACK_OBJECT_NIL) {
		/* Only the methods that never fail on an unknown cid succeed. */
		assert(strcmp(method, "containerManager.ContainerRuntimeState") == 0 ||
		       strcmp(method, "containerManager.Processes") == 0);
	} else {
		assert(el[2].type == MSGPACK_OBJECT_STR && el[2].via.str.size > 0);
		assert(el[3].type == MSGPACK_OBJECT_NIL);
	}
	msgpack_zone_free(zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	if (size < 2)
		return 0;
	const char *method = table[data[0] % NSERVED].name;
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		abort();
	msgpack_object arg;
	size_t off = 0, len;
	if (!fz_frame(data + 1, size - 1, &len) ||
	    msgpack_unpack((const char *)data + 1, len, &off, zone, &arg) != MSGPACK_UNPACK_SUCCESS) {
		msgpack_zone_free(zone);
		return 0;
	}
	msgpack_sbuffer req;
	msgpack_sbuffer_init(&req);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 7);
	msgpack_pack_str(&pk, strlen(method));
	msgpack_pack_str_body(&pk, method, strlen(method));
	msgpack_pack_array(&pk, 1);
	msgpack_pack_object(&pk, arg);
	msgpack_zone_free(zone);

	int baseline = count_fds();
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	ev_run(loop, EVRUN_NOWAIT); /* accept */
	msgpack_sbuffer resp;
	msgpack_sbuffer_init(&resp);
	size_t sent = 0;
	for (int spins = 0; sent < req.size && spins < 100000; spins++) {
		ssize_t w = send(c, req.data + sent, req.size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			sent += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		ev_run(loop, EVRUN_NOWAIT);
	}
	assert(sent == req.size); /* a well-formed request is read whole */
	/* A call may park (Processes walks the cgroups a slice per loop
	 * turn) and a client that hangs up cancels it: half-close only once
	 * the reply is in. */
	wait_one_message(c, &resp);
	shutdown(c, SHUT_WR);
	read_all(c, &resp);
	close(c);
	check_response(&resp, method);
	msgpack_sbuffer_destroy(&resp);
	msgpack_sbuffer_destroy(&req);
	assert(rpc_server_nconns(srv) == 0);
	assert(list_empty(&sb.containers));
	int now = count_fds();
	for (int i = 0; i < 20 && now != baseline; i++) {
		usleep(1000);
		ev_run(loop, EVRUN_NOWAIT);
		now = count_fds();
	}
	if (now != baseline) {
		fprintf(stderr, "fuzz_methods: %d fds open, %d before the input\n", now, baseline);
		abort();
	}
	return 0;
}

__attribute__((unused)) static void cleanup(void)
{
	if (!srv)
		return;
	rpc_server_free(srv);
	srv = NULL;
	unlink(path);
	core_loop_destroy();
}
#define FUZZ_REPLAY_CLEANUP() cleanup()
#include "fuzz_replay.h"

/* Unit tests for the time bounds of the blocking RPC client (rpc/client.c)
 * that keep the CLI from hanging on a stuck sandbox: a server that never
 * answers, one whose listen backlog is full (it stopped accepting), and a
 * waiting method whose late reply must still arrive. The bounds checked
 * here are the point of the feature (a stuck sandbox costs at most the
 * timeout), with generous margins for a loaded machine. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rpc/client.h"
#include "test/unit/unit.h"

static char sock_path[108];

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A listening socket at a fresh path, with the given backlog. */
static int listener(int backlog)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/cv-ut-timeout-%d.sock", (int)getpid());
	unlink(sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, sock_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		perror("listener");
		exit(2);
	}
	return fd;
}

/* The listener is never accepted from: like a stopped boot, the kernel
 * completes the connect and the request sits unread. */
TEST(test_call_times_out_when_nobody_answers)
{
	int l = listener(8);
	struct cv_error err = { 0 };
	struct rpc_client *c = rpc_client_connect_timeout(sock_path, 200, &err);
	CHECK(c != NULL);
	if (c) {
		const msgpack_object *res;
		double t0 = now_s();
		CHECK(rpc_client_call_str(c, "containerManager.ContainerRuntimeState", "x", &res,
					  &err) < 0);
		double took = now_s() - t0;
		CHECK(err.code == ETIMEDOUT);
		CHECK(strstr(err.msg, "did not answer containerManager.ContainerRuntimeState") != NULL);
		CHECK(took >= 0.15 && took < 5.0);
		/* Out of step now: the next call fails at once. */
		t0 = now_s();
		CHECK(rpc_client_call_nil(c, "x", &res, &err) < 0 && err.code == ETIMEDOUT);
		CHECK(now_s() - t0 < 0.15);
		rpc_client_close(c);
	}
	close(l);
	unlink(sock_path);
}

/* A server that stopped accepting fills its backlog; a plain connect
 * would then block until it accepts. */
TEST(test_connect_times_out_on_full_backlog)
{
	int l = listener(0);
	int held[4];
	int nheld = 0;
	/* Fill the backlog without waiting. */
	for (; nheld < 4; nheld++) {
		held[nheld] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		strcpy(sa.sun_path, sock_path);
		if (connect(held[nheld], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			CHECK(errno == EAGAIN);
			close(held[nheld]);
			break;
		}
	}
	CHECK(nheld >= 1 && nheld < 4);
	struct cv_error err = { 0 };
	double t0 = now_s();
	struct rpc_client *c = rpc_client_connect_timeout(sock_path, 200, &err);
	double took = now_s() - t0;
	CHECK(c == NULL);
	CHECK(err.code == ETIMEDOUT);
	CHECK(strstr(err.msg, "did not accept") != NULL);
	CHECK(took >= 0.15 && took < 5.0);
	rpc_client_close(c);
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	close(l);
	unlink(sock_path);
}

/* Serves one request: reads it, waits delay_ms, answers [1, 1, nil, 7]
 * (the client's first msgid is 1). */
static pid_t slow_server(int l, int delay_ms)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = accept(l, NULL, NULL);
	char buf[512];
	if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
		_exit(1);
	nanosleep(&(struct timespec){ delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L }, NULL);
	static const unsigned char reply[] = { 0x94, 0x01, 0x01, 0xc0, 0x07 };
	_exit(write(fd, reply, sizeof(reply)) == (ssize_t)sizeof(reply) ? 0 : 1);
}

TEST(test_waiting_methods_are_not_bounded)
{
	static const char *const waits[] = { "containerManager.Wait", NULL };
	int l = listener(8);
	pid_t srv = slow_server(l, 400);
	struct cv_error err = { 0 };
	struct rpc_client *c = rpc_client_connect_timeout(sock_path, 100, &err);
	CHECK(c != NULL);
	if (c) {
		rpc_client_set_timeout(c, 100, waits);
		const msgpack_object *res = NULL;
		CHECK(rpc_client_call_str(c, "containerManager.Wait", "x", &res, &err) == 0);
		CHECK(res && res->type == MSGPACK_OBJECT_POSITIVE_INTEGER && res->via.u64 == 7);
		rpc_client_close(c);
	}
	int st;
	waitpid(srv, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* The same late reply to a bounded method is a timeout. */
	srv = slow_server(l, 400);
	c = rpc_client_connect_timeout(sock_path, 100, &err);
	CHECK(c != NULL);
	if (c) {
		rpc_client_set_timeout(c, 100, waits);
		const msgpack_object *res = NULL;
		CHECK(rpc_client_call_str(c, "containerManager.Processes", "x", &res, &err) < 0);
		CHECK(err.code == ETIMEDOUT);
		rpc_client_close(c);
	}
	waitpid(srv, &st, 0);
	close(l);
	unlink(sock_path);
}

UNIT_MAIN(test_call_times_out_when_nobody_answers, test_connect_times_out_on_full_backlog,
	  test_waiting_methods_are_not_bounded)

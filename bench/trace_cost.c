/* The cost of one traced syscall, and its floor: a raw seccomp user
 * notification round trip answered with CONTINUE by a minimal libev
 * supervisor (bench/README.md, "Trace cost"), measured on this machine in the
 * same run as cvisor's (bench/trace_bench.py).
 *
 *   trace_cost loop N   N getppid() calls; prints ns per call
 *   trace_cost raw N    the same in a child under a NOTIFY filter on
 *                       getppid, answered by this process; prints ns per call
 *
 * Linked statically: `loop` also runs inside a cvisor container. */
#include <errno.h>
#include <ev.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double loop(long n)
{
	/* Warm up, then the timed run. */
	for (long i = 0; i < n / 10; i++)
		syscall(SYS_getppid);
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return (now_ns() - t0) / (double)n;
}

static int send_fd(int sock, int fd)
{
	char c = 'L';
	struct iovec iov = { &c, 1 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c;
	struct iovec iov = { &c, 1 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static struct seccomp_notif *req;
static struct seccomp_notif_resp *resp;

static void on_notify(struct ev_loop *l, ev_io *w, int revents)
{
	(void)revents;
	memset(req, 0, sizeof(*req));
	if (seccomp_notify_receive(w->fd, req) != 0) {
		ev_io_stop(l, w); /* the child is gone */
		return;
	}
	memset(resp, 0, sizeof(*resp));
	resp->id = req->id;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	seccomp_notify_respond(w->fd, resp);
}

static void on_result(struct ev_loop *l, ev_io *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

static int raw(long n)
{
	int sv[2], res[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 || pipe(res) < 0)
		return perror("socketpair"), 1;
	pid_t pid = fork();
	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(getppid), 0) != 0 ||
		    seccomp_load(ctx) != 0)
			_exit(2);
		int fd = seccomp_notify_fd(ctx);
		if (fd < 0 || send_fd(sv[1], fd) < 0)
			_exit(3);
		close(fd);
		double ns = loop(n);
		if (write(res[1], &ns, sizeof(ns)) != sizeof(ns))
			_exit(4);
		_exit(0);
	}
	int fd = recv_fd(sv[0]);
	if (fd < 0)
		return fprintf(stderr, "trace_cost: no listener from the child\n"), 1;
	if (seccomp_notify_alloc(&req, &resp) != 0)
		return 1;
	struct ev_loop *l = ev_default_loop(0);
	ev_io nw, rw;
	ev_io_init(&nw, on_notify, fd, EV_READ);
	ev_io_init(&rw, on_result, res[0], EV_READ);
	ev_io_start(l, &nw);
	ev_io_start(l, &rw);
	ev_run(l, 0);
	double ns;
	if (read(res[0], &ns, sizeof(ns)) != sizeof(ns))
		return 1;
	int st;
	waitpid(pid, &st, 0);
	printf("%.1f\n", ns);
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	if (argc != 3 || n <= 0) {
		fprintf(stderr, "usage: trace_cost loop|raw N\n");
		return 2;
	}
	if (strcmp(argv[1], "loop") == 0) {
		printf("%.1f\n", loop(n));
		return 0;
	}
	if (strcmp(argv[1], "raw") == 0)
		return raw(n);
	fprintf(stderr, "usage: trace_cost loop|raw N\n");
	return 2;
}

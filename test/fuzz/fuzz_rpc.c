/* Fuzz target for the RPC server's input path: arbitrary bytes (and, when
 * the first byte asks for it, a few fds) go into one server connection,
 * then the client hangs up and the loop runs until the connection is gone.
 * Must never crash, leak memory or leak fds.
 *
 * Input layout: byte 0 = flags (bit 0: send 2 pipe fds with the first
 * chunk; bits 1-7: chunk size for splitting the rest, so frames get split
 * at arbitrary byte boundaries), then the stream bytes.
 *
 * Built with -DFUZZ_REPLAY_MAIN it gets a main() that runs every file (or
 * every file in every directory) named on the command line, so the corpus
 * runs in ordinary CI without libFuzzer (lz4's standaloneengine.c). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "rpc/rpc_internal.h" /* the fd budget's count, for its invariant */
#include "rpc/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ev_loop *loop;
static struct rpc_server *srv;
static char path[108];
static struct rpc_call *parked[4];
static int baseline_fds;

static void m_echo(struct rpc_call *call, const msgpack_object *arg)
{
	msgpack_pack_object(rpc_result_packer(call), *arg);
	rpc_reply_packed(call);
}

static void m_fail(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	rpc_fail(call, "failed on purpose");
}

/* Takes every file it got (so "taken" and "left to the server" both run),
 * keeping the odd ones until the call ends. */
static void m_files(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	for (size_t i = 0; i < rpc_call_nfiles(call); i += 2)
		close(rpc_call_take_file(call, i));
	rpc_reply_uint(call, rpc_call_nfiles(call));
}

static void park_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	parked[(intptr_t)data] = NULL;
}

/* Parks the call; a second Park answers the first, so replies go out
 * of order. */
static void m_park(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	for (intptr_t i = 0; i < 4; i++) {
		if (parked[i]) {
			struct rpc_call *p = parked[i];
			parked[i] = NULL;
			rpc_reply_str(p, "unparked");
			break;
		}
	}
	for (intptr_t i = 0; i < 4; i++) {
		if (!parked[i]) {
			parked[i] = call;
			rpc_call_set_cancel(call, park_cancel, (void *)i);
			return;
		}
	}
	rpc_fail(call, "no room");
}

/* Replies with a file (fd rides with the reply). */
static void m_givefd(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rpc_fail(call, "open /dev/null: %s", strerror(errno));
		return;
	}
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 5);
	msgpack_pack_str_body(pk, "Files", 5);
	msgpack_pack_uint8(pk, 1);
	rpc_reply_packed_fds(call, &fd, 1);
}

static const struct rpc_method methods[] = {
	{ "E", m_echo },		 { "F", m_fail },	    { "P", m_park },
	{ "X", m_files },		 { "G", m_givefd },	    { "containerManager.Wait", m_park },
};

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

static void setup(void)
{
	struct cv_error err = { 0 };
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LL_ERROR);
	if (core_loop_init(&err) < 0)
		abort();
	loop = core_loop();
	snprintf(path, sizeof(path), "/tmp/cvisor-fuzz-rpc-%d.sock", getpid());
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_message = 8192;
	lim.max_depth = 12;
	lim.max_inflight = 8;
	lim.max_fds_queued = 4;
	srv = rpc_server_new(loop, fd, methods, sizeof(methods) / sizeof(methods[0]), &lim, NULL,
			     &err);
	if (!srv) {
		fprintf(stderr, "fuzz_rpc: %s\n", err.msg);
		abort();
	}
	/* The loop may open an epoll fd lazily; settle before counting. */
	ev_run(loop, EVRUN_NOWAIT);
}

/* Drains whatever the server sent (closing received fds). Returns false
 * once the server has closed its end. */
static bool drain(int fd)
{
	for (;;) {
		char buf[4096];
		union {
			char b[CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr a;
		} ctl;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int rfd;
				memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(rfd);
			}
		}
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	if (size == 0)
		return 0;
	/* Counted per input: the harness's own fds (the replay main's
	 * directory stream) stay put during one input. */
	baseline_fds = count_fds();
	uint8_t flags = data[0];
	size_t chunk = (flags >> 1) ? (size_t)(flags >> 1) : 4096;
	data++;
	size--;

	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	ev_run(loop, EVRUN_NOWAIT); /* accept */

	int p[2] = { -1, -1 };
	if ((flags & 1) && pipe2(p, O_CLOEXEC) < 0)
		abort();
	size_t off = 0;
	bool open_ = true;
	for (int spins = 0; off < size && open_ && spins < 100000; spins++) {
		size_t n = size - off < chunk ? size - off : chunk;
		struct iovec iov = { (void *)(data + off), n };
		union {
			char b[CMSG_SPACE(sizeof(int) * 2)];
			struct cmsghdr a;
		} ctl;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (p[0] >= 0) {
			mh.msg_control = ctl.b;
			mh.msg_controllen = sizeof(ctl.b);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * 2);
			memcpy(CMSG_DATA(cm), p, sizeof(p));
		}
		ssize_t w = sendmsg(c, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			if (p[0] >= 0) {
				close(p[0]);
				close(p[1]);
				p[0] = p[1] = -1;
			}
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			break; /* the server hung up (protocol error) */
		}
		ev_run(loop, EVRUN_NOWAIT);
		open_ = drain(c);
	}
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	shutdown(c, SHUT_WR);
	/* Run until the server has noticed the EOF, torn the connection
	 * down (cancelling parked calls) and reaped it. */
	for (int spins = 0; spins < 100000; spins++) {
		ev_run(loop, EVRUN_NOWAIT);
		open_ = drain(c);
		if (!open_ && rpc_server_nconns(srv) == 0)
			break;
	}
	close(c);
	for (int i = 0; i < 4; i++)
		ev_run(loop, EVRUN_NOWAIT);
	assert(rpc_server_nconns(srv) == 0);
	for (int i = 0; i < 4; i++)
		assert(parked[i] == NULL);
	assert(rpc_server_pending_output(srv) == 0);
	/* Every queued fd went back to the sandbox-wide budget. */
	assert(srv->nfds_queued == 0);
	/* A leak persists; a harness fd (libFuzzer's or ASan's helper
	 * threads, the replay main's directory stream) comes and goes. */
	int now = count_fds();
	for (int i = 0; i < 20 && now != baseline_fds; i++) {
		usleep(1000);
		ev_run(loop, EVRUN_NOWAIT);
		now = count_fds();
	}
	if (now != baseline_fds) {
		/* More is a leak; fewer means something closed an fd twice. */
		fprintf(stderr, "fuzz_rpc: %d fds open, %d before the input\n", now, baseline_fds);
		abort();
	}
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
static int run_file(const char *file)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", file, strerror(errno));
		return 1;
	}
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	if (!buf)
		return 1;
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0, ran = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *e;
			while (d && (e = readdir(d))) {
				if (e->d_name[0] == '.')
					continue;
				char p2[4096];
				snprintf(p2, sizeof(p2), "%s/%s", argv[i], e->d_name);
				bad |= run_file(p2);
				ran++;
			}
			if (d)
				closedir(d);
		} else {
			bad |= run_file(argv[i]);
			ran++;
		}
	}
	if (srv) {
		rpc_server_free(srv);
		unlink(path);
		core_loop_destroy();
	}
	printf("replay_rpc: %d inputs ran\n", ran);
	return bad;
}
#endif

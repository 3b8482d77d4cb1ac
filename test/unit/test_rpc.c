/* rpc/: a real server on a temporary socket inside the loop, driven by raw
 * client sockets (for hostile input) and by rpc_client in a child process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/util.h"
#include "rpc/client.h"
#include "rpc/rpc_internal.h"
#include "rpc/server.h"
#include "test/unit/unit.h"

/* ---- harness ---------------------------------------------------------- */

static struct ev_loop *loop;
static struct rpc_server *srv;
static char sock_path[108];

static void break_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ONE);
}

/* Runs the loop for ms milliseconds. */
static void pump(int ms)
{
	ev_timer t;
	ev_timer_init(&t, break_cb, ms / 1000.0, 0);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

/* ---- methods ---------------------------------------------------------- */

static int ncancelled;
static struct rpc_call *parked[8];

static void m_echo(struct rpc_call *call, const msgpack_object *arg)
{
	msgpack_pack_object(rpc_result_packer(call), *arg);
	rpc_reply_packed(call);
}

static void park_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	parked[(intptr_t)data] = NULL;
	ncancelled++;
}

static void m_park(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	for (intptr_t i = 0; i < 8; i++) {
		if (!parked[i]) {
			parked[i] = call;
			rpc_call_set_cancel(call, park_cancel, (void *)i);
			return;
		}
	}
	rpc_fail(call, "no parking space");
}

/* Answers after arg milliseconds with arg. */
struct later {
	ev_timer t;
	struct rpc_call *call;
	int64_t v;
};

static void later_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)revents;
	struct later *x = (struct later *)w;
	rpc_reply_int(x->call, x->v);
	free(x);
}

static void later_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct later *x = data;
	ev_timer_stop(loop, &x->t);
	free(x);
	ncancelled++;
}

static void m_later(struct rpc_call *call, const msgpack_object *arg)
{
	struct later *x = calloc(1, sizeof(*x));
	x->call = call;
	x->v = (int64_t)arg->via.u64;
	ev_timer_init(&x->t, later_cb, (double)(arg->via.u64 % 17) / 1000.0, 0);
	ev_timer_start(loop, &x->t);
	rpc_call_set_cancel(call, later_cancel, x);
}

/* Replies with the bytes read from each file. */
static void m_files(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_array(pk, rpc_call_nfiles(call));
	for (size_t i = 0; i < rpc_call_nfiles(call); i++) {
		char b[32];
		ssize_t n = read(rpc_call_file(call, i), b, sizeof(b));
		if (n < 0)
			n = 0;
		msgpack_pack_str(pk, (size_t)n);
		msgpack_pack_str_body(pk, b, (size_t)n);
	}
	/* Take one to check that taking works and the server leaves it. */
	if (rpc_call_nfiles(call) > 0) {
		int fd = rpc_call_take_file(call, 0);
		close(fd);
	}
	rpc_reply_packed(call);
}

/* Replies {"Files": 1} with a pipe holding "hello". */
static void m_givefd(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		rpc_fail(call, "pipe: %s", strerror(errno));
		return;
	}
	if (write(p[1], "hello", 5) != 5)
		abort();
	close(p[1]);
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 5);
	msgpack_pack_str_body(pk, "Files", 5);
	msgpack_pack_uint32(pk, 1);
	rpc_reply_packed_fds(call, &p[0], 1);
}

static void m_fail(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	rpc_fail(call, "container \"%s\" not found", "web");
}

static const struct rpc_method methods[] = {
	{ "test.Echo", m_echo },   { "test.Park", m_park },     { "test.Later", m_later },
	{ "test.Files", m_files }, { "test.GiveFD", m_givefd }, { "test.Fail", m_fail },
};

static void srv_start(const struct rpc_limits *lim)
{
	struct cv_error err = { 0 };
	if (!loop) {
		if (core_loop_init(&err) < 0)
			abort();
		loop = core_loop();
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/cvisor-test-rpc-%d.sock", getpid());
	unlink(sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	srv = rpc_server_new(loop, fd, methods, ARRAY_SIZE(methods), lim, NULL,
			     &err);
	if (!srv) {
		fprintf(stderr, "rpc_server_new: %s\n", err.msg);
		abort();
	}
	ncancelled = 0;
	memset(parked, 0, sizeof(parked));
}

static void srv_stop(void)
{
	rpc_server_free(srv);
	srv = NULL;
	unlink(sock_path);
}

/* ---- raw test client -------------------------------------------------- */

struct tc {
	int fd;
	msgpack_unpacker up;
	msgpack_unpacked msg;
	int fds[8];
	size_t nfds;
};

static void tc_open(struct tc *t)
{
	memset(t, 0, sizeof(*t));
	t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, sock_path);
	if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	msgpack_unpacker_init(&t->up, 4096);
	msgpack_unpacked_init(&t->msg);
	pump(5);
}

static void tc_close(struct tc *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	for (size_t i = 0; i < t->nfds; i++)
		close(t->fds[i]);
	t->nfds = 0;
	msgpack_unpacked_destroy(&t->msg);
	msgpack_unpacker_destroy(&t->up);
}

static void tc_send(struct tc *t, const void *p, size_t n, const int *fds, size_t nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr a;
	} ctl;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	if (sendmsg(t->fd, &mh, MSG_NOSIGNAL) != (ssize_t)n)
		fprintf(stderr, "  tc_send short\n");
}

/* Next message from the server: 1, or 0 on EOF, -1 on timeout. */
static int tc_recv(struct tc *t)
{
	for (int tries = 0; tries < 400; tries++) {
		msgpack_unpacked_destroy(&t->msg);
		msgpack_unpacked_init(&t->msg);
		if (msgpack_unpacker_next(&t->up, &t->msg) == MSGPACK_UNPACK_SUCCESS)
			return 1;
		pump(2);
		msgpack_unpacker_reserve_buffer(&t->up, 4096);
		union {
			char b[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr a;
		} ctl;
		struct iovec iov = { msgpack_unpacker_buffer(&t->up),
				     msgpack_unpacker_buffer_capacity(&t->up) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(t->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n == 0)
			return 0;
		if (n < 0)
			continue;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k && t->nfds < 8; i++)
				memcpy(&t->fds[t->nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		}
		msgpack_unpacker_buffer_consumed(&t->up, (size_t)n);
	}
	return -1;
}

/* The reply's fields; checks the shape [1, id, err, result]. */
static const msgpack_object *rf(struct tc *t, int i)
{
	return &t->msg.data.via.array.ptr[i];
}

static bool reply_is(struct tc *t, int64_t id, const char *errmsg)
{
	if (tc_recv(t) != 1) {
		fprintf(stderr, "  no reply (wanted id=%lld %s)\n", (long long)id,
			errmsg ? errmsg : "ok");
		return false;
	}
	const msgpack_object *o = &t->msg.data;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 || rf(t, 0)->via.u64 != 1)
		return false;
	if (id < 0 ? rf(t, 1)->type != MSGPACK_OBJECT_NIL
		   : (rf(t, 1)->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		      rf(t, 1)->via.u64 != (uint64_t)id)) {
		fprintf(stderr, "  wrong msgid in reply\n");
		return false;
	}
	if (!errmsg)
		return rf(t, 2)->type == MSGPACK_OBJECT_NIL;
	if (rf(t, 2)->type != MSGPACK_OBJECT_STR || rf(t, 3)->type != MSGPACK_OBJECT_NIL)
		return false;
	bool ok = rf(t, 2)->via.str.size == strlen(errmsg) &&
		  memcmp(rf(t, 2)->via.str.ptr, errmsg, strlen(errmsg)) == 0;
	if (!ok)
		fprintf(stderr, "  got error \"%.*s\", wanted \"%s\"\n", (int)rf(t, 2)->via.str.size,
			rf(t, 2)->via.str.ptr, errmsg);
	return ok;
}

/* Packs [0, id, method, [arg]] with arg packed by fn (or a string). */
struct req {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static msgpack_packer *req_begin(struct req *r, uint64_t id, const char *method)
{
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
	msgpack_pack_array(&r->pk, 4);
	msgpack_pack_uint8(&r->pk, 0);
	msgpack_pack_uint64(&r->pk, id);
	msgpack_pack_str(&r->pk, strlen(method));
	msgpack_pack_str_body(&r->pk, method, strlen(method));
	msgpack_pack_array(&r->pk, 1);
	return &r->pk;
}

static void pack_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void send_req(struct tc *t, struct req *r, const int *fds, size_t nfds)
{
	tc_send(t, r->sb.data, r->sb.size, fds, nfds);
	msgpack_sbuffer_destroy(&r->sb);
}

static void send_echo(struct tc *t, uint64_t id, const char *s)
{
	struct req r;
	pack_s(req_begin(&r, id, "test.Echo"), s);
	send_req(t, &r, NULL, 0);
}

static bool echo_works(struct tc *t, uint64_t id)
{
	send_echo(t, id, "still here");
	return reply_is(t, (int64_t)id, NULL) && rf(t, 3)->type == MSGPACK_OBJECT_STR &&
	       rf(t, 3)->via.str.size == 10;
}

static void pipe_with(int p[2], const char *s)
{
	if (pipe2(p, O_CLOEXEC) < 0 || write(p[1], s, strlen(s)) != (ssize_t)strlen(s))
		abort();
}

/* Request test.Files with {"Files": declared} and the given fds. */
static void send_files(struct tc *t, uint64_t id, const char *key, int64_t declared,
		       const int *fds, size_t n)
{
	struct req r;
	msgpack_packer *pk = req_begin(&r, id, "test.Files");
	msgpack_pack_map(pk, 1);
	pack_s(pk, key);
	msgpack_pack_int64(pk, declared);
	send_req(t, &r, fds, n);
}

/* ---- tests ------------------------------------------------------------ */

TEST(test_round_trip)
{
	srv_start(NULL);
	int fds0 = unit_count_fds();
	struct tc t;
	tc_open(&t);
	CHECK(rpc_server_nconns(srv) == 1);
	send_echo(&t, 7, "web");
	CHECK(reply_is(&t, 7, NULL));
	CHECK(rf(&t, 3)->type == MSGPACK_OBJECT_STR && rf(&t, 3)->via.str.size == 3 &&
	      memcmp(rf(&t, 3)->via.str.ptr, "web", 3) == 0);
	struct req r;
	msgpack_pack_nil(req_begin(&r, 8, "test.Fail"));
	send_req(&t, &r, NULL, 0);
	CHECK(reply_is(&t, 8, "container \"web\" not found"));
	CHECK(rpc_server_pending_output(srv) == 0);
	tc_close(&t);
	pump(5);
	CHECK(rpc_server_nconns(srv) == 0);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

TEST(test_pipelined_out_of_order)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	msgpack_sbuffer all;
	msgpack_sbuffer_init(&all);
	for (uint64_t id = 0; id < 100; id++) {
		struct req r;
		msgpack_pack_uint64(req_begin(&r, id, "test.Later"), (id * 7) % 100);
		msgpack_sbuffer_write(&all, r.sb.data, r.sb.size);
		msgpack_sbuffer_destroy(&r.sb);
	}
	tc_send(&t, all.data, all.size, NULL, 0);
	msgpack_sbuffer_destroy(&all);
	bool seen[100] = { false };
	int got = 0, out_of_order = 0;
	uint64_t prev = 0;
	while (got < 100 && tc_recv(&t) == 1) {
		uint64_t id = rf(&t, 1)->via.u64;
		CHECK(id < 100 && !seen[id]);
		CHECK(rf(&t, 2)->type == MSGPACK_OBJECT_NIL);
		CHECK(rf(&t, 3)->via.u64 == (id * 7) % 100);
		if (id < 100)
			seen[id] = true;
		if (got > 0 && id < prev)
			out_of_order++;
		prev = id;
		got++;
	}
	CHECK(got == 100);
	CHECK(out_of_order > 0);
	tc_close(&t);
	pump(5);
	CHECK(ncancelled == 0);
	srv_stop();
}

TEST(test_unknown_method)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	struct req r;
	msgpack_pack_nil(req_begin(&r, 3, "containerManager.Nope"));
	send_req(&t, &r, NULL, 0);
	CHECK(reply_is(&t, 3, "unknown method"));
	CHECK(echo_works(&t, 4));
	tc_close(&t);
	srv_stop();
}

/* Each malformed message gets its error and the connection goes on. */
TEST(test_malformed_messages)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_depth = 8;
	srv_start(&lim);
	struct tc t;
	tc_open(&t);
#define B(lit) lit, sizeof(lit) - 1
	static const struct {
		const char *bytes;
		size_t len;
		int64_t id;
		const char *err;
	} cases[] = {
		{ B("\x05"), -1, "invalid message: expected array" },
		{ B("\xa3" "abc"), -1, "invalid message: expected array" },
		{ B("\x93\x00\x01\xa1m"), -1, "invalid message: request must have 4 elements" },
		{ B("\x94\x01\x01\xa1m\x91\xc0"), -1, "invalid message: type must be 0 (request)" },
		{ B("\x94\x00\xff\xa1m\x91\xc0"), -1,
		  "invalid message: msgid must be an unsigned 32-bit integer" },
		{ B("\x94\x00\xcf\x00\x00\x00\x02\x00\x00\x00\x00\xa1m\x91\xc0"), -1,
		  "invalid message: msgid must be an unsigned 32-bit integer" },
		{ B("\x94\x00\xa1x\xa1m\x91\xc0"), -1,
		  "invalid message: msgid must be an unsigned 32-bit integer" },
		{ B("\x94\x00\x09\x05\x91\xc0"), 9, "invalid message: method must be a string" },
		{ B("\x94\x00\x0a\xa9test.Echo\xc0"), 10,
		  "invalid message: params must be an array with one argument" },
		{ B("\x94\x00\x0b\xa9test.Echo\x90"), 11,
		  "invalid message: params must be an array with one argument" },
		{ B("\x94\x00\x0c\xa9test.Echo\x92\x01\x02"), 12,
		  "invalid message: params must be an array with one argument" },
		/* arg nested 7 deep: 9 with the envelope */
		{ B("\x94\x00\x0d\xa9test.Echo\x91\x91\x91\x91\x91\x91\x91\x01"), 13,
		  "invalid message: nesting deeper than 8" },
		{ B("\x94\x00\x0e\xa9test.Echo\x91\x81\xa5" "Files\xa1x"), 14,
		  "Files: expected non-negative integer" },
		{ B("\x94\x00\x0f\xa9test.Echo\x91\x81\xa5" "files\xff"), 15,
		  "Files: expected non-negative integer" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		tc_send(&t, cases[i].bytes, cases[i].len, NULL, 0);
		if (!reply_is(&t, cases[i].id, cases[i].err)) {
			fprintf(stderr, "  malformed case %zu failed\n", i);
			CHECK(false);
		}
	}
	/* Exactly at the depth limit is fine: envelope 2 + 6. */
	const char ok[] = "\x94\x00\x10\xa9test.Echo\x91\x91\x91\x91\x91\x91\x01";
	tc_send(&t, ok, sizeof(ok) - 1, NULL, 0);
	CHECK(reply_is(&t, 16, NULL));
	/* A notification is ignored: the next reply is the echo's. */
	tc_send(&t, "\x93\x02\xa9test.Echo\x91\x01", 14, NULL, 0);
	CHECK(echo_works(&t, 17));
	CHECK(rpc_server_nconns(srv) == 1);
	tc_close(&t);
	srv_stop();
}

TEST(test_one_byte_at_a_time)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	struct req r;
	msgpack_packer *pk = req_begin(&r, 70000, "test.Echo");
	msgpack_pack_map(pk, 2);
	pack_s(pk, "CID");
	pack_s(pk, "a-container-with-a-long-name");
	pack_s(pk, "PID");
	msgpack_pack_int32(pk, -5);
	for (size_t i = 0; i < r.sb.size; i++) {
		tc_send(&t, r.sb.data + i, 1, NULL, 0);
		pump(1);
	}
	CHECK(reply_is(&t, 70000, NULL));
	CHECK(rf(&t, 3)->type == MSGPACK_OBJECT_MAP && rf(&t, 3)->via.map.size == 2);
	/* The reply re-encodes the same object: same bytes as the arg. */
	msgpack_sbuffer_destroy(&r.sb);
	tc_close(&t);
	srv_stop();
}

TEST(test_parse_error_closes)
{
	srv_start(NULL);
	struct tc t, other;
	tc_open(&t);
	tc_open(&other);
	tc_send(&t, "\x94\x00\x01\xc1", 4, NULL, 0); /* 0xc1 is never valid */
	CHECK(reply_is(&t, -1, "invalid message: cannot parse msgpack"));
	CHECK(tc_recv(&t) == 0);
	CHECK(echo_works(&other, 1));
	CHECK(rpc_server_nconns(srv) == 1);
	tc_close(&t);
	tc_close(&other);
	srv_stop();
}

TEST(test_files_received)
{
	srv_start(NULL);
	int fds0 = unit_count_fds();
	struct tc t;
	tc_open(&t);
	int a[2], b[2];
	pipe_with(a, "one");
	pipe_with(b, "two");
	int fds[2] = { a[0], b[0] };
	send_files(&t, 5, "Files", 2, fds, 2);
	close(a[0]);
	close(b[0]);
	close(a[1]);
	close(b[1]);
	CHECK(reply_is(&t, 5, NULL));
	CHECK(rf(&t, 3)->type == MSGPACK_OBJECT_ARRAY && rf(&t, 3)->via.array.size == 2);
	if (rf(&t, 3)->via.array.size == 2) {
		const msgpack_object *s = rf(&t, 3)->via.array.ptr;
		CHECK(s[0].via.str.size == 3 && memcmp(s[0].via.str.ptr, "one", 3) == 0);
		CHECK(s[1].via.str.size == 3 && memcmp(s[1].via.str.ptr, "two", 3) == 0);
	}
	tc_close(&t);
	pump(5);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

TEST(test_files_short)
{
	srv_start(NULL);
	int fds0 = unit_count_fds();
	struct tc t;
	tc_open(&t);
	int a[2];
	pipe_with(a, "x");
	send_files(&t, 6, "files", 3, &a[0], 1); /* case-insensitive key */
	close(a[0]);
	close(a[1]);
	CHECK(reply_is(&t, 6, "request declares 3 files but 1 arrived"));
	/* The queue starts clean: a request with no files works after. */
	send_files(&t, 7, "Files", 0, NULL, 0);
	CHECK(reply_is(&t, 7, NULL));
	send_files(&t, 8, "Files", 129, NULL, 0);
	CHECK(reply_is(&t, 8, "too many files"));
	CHECK(unit_count_fds() == fds0 + 2); /* both ends of the connection */
	tc_close(&t);
	pump(5);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

TEST(test_unclaimed_fds_closed)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	int fds0 = unit_count_fds();
	int a[2];
	pipe_with(a, "x");
	int fds[3] = { a[0], a[1], a[0] };
	struct req r;
	pack_s(req_begin(&r, 9, "test.Echo"), "no files here");
	send_req(&t, &r, fds, 3);
	close(a[0]);
	close(a[1]);
	CHECK(reply_is(&t, 9, NULL));
	pump(5);
	/* The server closed the three it received; the conn is still open. */
	CHECK(unit_count_fds() == fds0);
	CHECK(echo_works(&t, 10));
	tc_close(&t);
	srv_stop();
}

TEST(test_message_too_large)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_message = 1024;
	srv_start(&lim);
	struct tc big, other;
	tc_open(&big);
	tc_open(&other);
	struct req r;
	char s[3000];
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = 0;
	pack_s(req_begin(&r, 300, "test.Echo"), s);
	/* Sent in pieces so that the unpacker holds an incomplete message. */
	tc_send(&big, r.sb.data, 10, NULL, 0);
	pump(2);
	tc_send(&big, r.sb.data + 10, 1500, NULL, 0);
	msgpack_sbuffer_destroy(&r.sb);
	CHECK(reply_is(&big, 300, "message too large (limit 1024 bytes)"));
	CHECK(tc_recv(&big) == 0);
	CHECK(echo_works(&other, 1));
	/* A complete oversized message in one write is refused the same way. */
	struct tc big2;
	tc_open(&big2);
	pack_s(req_begin(&r, 301, "test.Echo"), s);
	send_req(&big2, &r, NULL, 0);
	CHECK(reply_is(&big2, 301, "message too large (limit 1024 bytes)"));
	CHECK(tc_recv(&big2) == 0);
	CHECK(rpc_server_nconns(srv) == 1);
	tc_close(&big);
	tc_close(&big2);
	tc_close(&other);
	srv_stop();
}

TEST(test_disconnect_cancels)
{
	srv_start(NULL);
	int fds0 = unit_count_fds();
	struct tc t;
	tc_open(&t);
	for (uint64_t id = 1; id <= 3; id++) {
		struct req r;
		msgpack_pack_nil(req_begin(&r, id, "test.Park"));
		send_req(&t, &r, NULL, 0);
	}
	struct req r;
	msgpack_pack_uint32(req_begin(&r, 4, "test.Later"), 16); /* answers in 16 ms */
	send_req(&t, &r, NULL, 0);
	pump(5);
	CHECK(parked[0] && parked[1] && parked[2]);
	CHECK(ncancelled == 0);
	tc_close(&t);
	pump(30);
	CHECK(ncancelled == 4);
	CHECK(!parked[0] && !parked[1] && !parked[2]);
	CHECK(rpc_server_nconns(srv) == 0);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

TEST(test_server_free_cancels)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	struct req r;
	msgpack_pack_nil(req_begin(&r, 1, "test.Park"));
	send_req(&t, &r, NULL, 0);
	pump(5);
	CHECK(parked[0] != NULL);
	srv_stop();
	CHECK(ncancelled == 1 && parked[0] == NULL);
	CHECK(tc_recv(&t) == 0);
	tc_close(&t);
}

TEST(test_inflight_limit)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_inflight = 2;
	srv_start(&lim);
	struct tc t;
	tc_open(&t);
	for (uint64_t id = 1; id <= 3; id++) {
		struct req r;
		msgpack_pack_nil(req_begin(&r, id, "test.Park"));
		send_req(&t, &r, NULL, 0);
	}
	CHECK(reply_is(&t, 3, "too many calls in flight (limit 2)"));
	/* Answering one frees a slot. */
	rpc_reply_str(parked[0], "done");
	parked[0] = NULL;
	CHECK(reply_is(&t, 1, NULL));
	CHECK(echo_works(&t, 5));
	tc_close(&t);
	pump(5);
	CHECK(ncancelled == 1);
	srv_stop();
}

TEST(test_conn_limit)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_conns = 1;
	srv_start(&lim);
	struct tc a, b;
	tc_open(&a);
	/* a waits for a reply: it is never dropped for a newcomer. */
	struct req r;
	msgpack_pack_nil(req_begin(&r, 1, "test.Park"));
	send_req(&a, &r, NULL, 0);
	pump(5);
	CHECK(parked[0] != NULL);
	tc_open(&b);
	CHECK(reply_is(&b, -1, "too many connections (limit 1)"));
	CHECK(tc_recv(&b) == 0);
	CHECK(echo_works(&a, 2));
	CHECK(rpc_server_nconns(srv) == 1);
	tc_close(&a);
	tc_close(&b);
	pump(5);
	CHECK(ncancelled == 1);
	srv_stop();
}

/* A full table drops the least recently active idle connection for a new
 * one; a connection stalled in a message only when no idle one is left. */
TEST(test_conn_idle_evicted)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_conns = 2;
	srv_start(&lim);
	struct tc a, b, c, d, e;
	tc_open(&a);
	tc_open(&b);
	CHECK(echo_works(&a, 1)); /* b is now the least recently active */
	tc_open(&c);
	CHECK(reply_is(&b, -1, "connection closed: idle while the connection table was full (limit 2)"));
	CHECK(tc_recv(&b) == 0);
	CHECK(echo_works(&a, 2));
	CHECK(echo_works(&c, 3));
	/* a stalls in the middle of a request: c, idle, goes first. */
	struct req r;
	pack_s(req_begin(&r, 7, "test.Echo"), "half of it");
	tc_send(&a, r.sb.data, 8, NULL, 0);
	pump(5);
	tc_open(&d);
	CHECK(reply_is(&c, -1, "connection closed: idle while the connection table was full (limit 2)"));
	CHECK(tc_recv(&c) == 0);
	/* d waits for a reply; a is stalled: a goes, told with its msgid. */
	struct req pr;
	msgpack_pack_nil(req_begin(&pr, 8, "test.Park"));
	send_req(&d, &pr, NULL, 0);
	pump(5);
	CHECK(parked[0] != NULL);
	tc_open(&e);
	CHECK(reply_is(&a, 7,
		       "connection closed: stalled in a message while the connection table was full "
		       "(limit 2)"));
	CHECK(tc_recv(&a) == 0);
	msgpack_sbuffer_destroy(&r.sb);
	CHECK(echo_works(&e, 9));
	CHECK(echo_works(&d, 10));
	CHECK(rpc_server_nconns(srv) == 2);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	tc_close(&d);
	tc_close(&e);
	pump(5);
	CHECK(ncancelled == 1);
	srv_stop();
}

/* Bytes of a Files request declaring `declared` files: all of them, or the
 * first `part` (a half-sent request). */
static void send_files_part(struct tc *t, uint64_t id, int64_t declared, size_t part,
			    const int *fds, size_t n)
{
	struct req r;
	msgpack_packer *pk = req_begin(&r, id, "test.Files");
	msgpack_pack_map(pk, 1);
	pack_s(pk, "Files");
	msgpack_pack_int64(pk, declared);
	tc_send(t, r.sb.data, part && part < r.sb.size ? part : r.sb.size, fds, n);
	msgpack_sbuffer_destroy(&r.sb);
	pump(5);
}

static void send_files_rest(struct tc *t, uint64_t id, int64_t declared, size_t part)
{
	struct req r;
	msgpack_packer *pk = req_begin(&r, id, "test.Files");
	msgpack_pack_map(pk, 1);
	pack_s(pk, "Files");
	msgpack_pack_int64(pk, declared);
	tc_send(t, r.sb.data + part, r.sb.size - part, NULL, 0);
	msgpack_sbuffer_destroy(&r.sb);
}

/* More fds than the connection's quota: the excess is never installed,
 * the rest is closed at once, and the connection is told and closed. */
TEST(test_fd_quota)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_fds_queued = 4;
	srv_start(&lim);
	int fds0 = unit_count_fds();
	struct tc t, other;
	tc_open(&t);
	tc_open(&other);
	int p[2];
	pipe_with(p, "x");
	int six[6] = { p[0], p[0], p[0], p[0], p[0], p[0] };
	send_files_part(&t, 20, 6, 12, six, 6);
	close(p[0]);
	close(p[1]);
	CHECK(reply_is(&t, -1, "too many file descriptors queued on this connection (limit 4)"));
	CHECK(srv->nfds_queued == 0);
	CHECK(tc_recv(&t) == 0);
	/* Exactly the quota is fine, on another connection. */
	int q[2];
	pipe_with(q, "ok");
	close(q[1]); /* test.Files reads each: EOF after the first */
	int four[4] = { q[0], q[0], q[0], q[0] };
	send_files_part(&other, 21, 4, 0, four, 4);
	close(q[0]);
	CHECK(reply_is(&other, 21, NULL));
	tc_close(&t);
	tc_close(&other);
	pump(5);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

/* The all-connections budget: a connection that needs room evicts the one
 * hoarding the most queued fds, never one holding fewer than itself. */
TEST(test_fd_budget_evicts_hoarder)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_fds_total = 8;
	lim.max_fds_queued = 4;
	srv_start(&lim);
	int fds0 = unit_count_fds();
	struct tc s, h, x;
	tc_open(&s);
	tc_open(&h);
	tc_open(&x);
	int p[2];
	pipe_with(p, "abcdef");
	close(p[1]); /* test.Files reads each: EOF after the first */
	int fds[4] = { p[0], p[0], p[0], p[0] };
	send_files_part(&s, 31, 2, 12, fds, 2); /* small holder, half-sent */
	send_files_part(&h, 30, 4, 12, fds, 4); /* hoarder, half-sent */
	CHECK(srv->nfds_queued == 6);
	send_files_part(&x, 32, 2, 0, fds, 2); /* needs room */
	CHECK(reply_is(&x, 32, NULL));
	CHECK(reply_is(&h, 30,
		       "connection closed: it held 4 received fds while the sandbox's fd budget (8) "
		       "was full"));
	CHECK(tc_recv(&h) == 0);
	send_files_rest(&s, 31, 2, 12);
	CHECK(reply_is(&s, 31, NULL));
	CHECK(srv->nfds_queued == 0);
	close(p[0]);
	tc_close(&s);
	tc_close(&h);
	tc_close(&x);
	pump(5);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

/* A call still waiting after its handler returned keeps neither the
 * request's bytes (nor the input buffer they sit in) nor unused fds. */
TEST(test_parked_call_releases_request)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	int fds0 = unit_count_fds();
	int p[2];
	pipe_with(p, "x");
	struct req r;
	msgpack_packer *pk = req_begin(&r, 40, "test.Park");
	msgpack_pack_map(pk, 2);
	pack_s(pk, "Files");
	msgpack_pack_uint8(pk, 2);
	pack_s(pk, "Pad");
	enum { PAD = 1 << 20 };
	char *pad = malloc(PAD);
	memset(pad, 'p', PAD);
	msgpack_pack_str(pk, PAD);
	msgpack_pack_str_body(pk, pad, PAD);
	free(pad);
	/* The server runs in this thread: send without blocking, pumping. */
	fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK);
	size_t off = 0;
	for (int i = 0; i < 5000 && off < r.sb.size; i++) {
		if (off == 0) {
			tc_send(&t, r.sb.data, 4096, p, 2);
			off = 4096;
		}
		ssize_t n = send(t.fd, r.sb.data + off, r.sb.size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		pump(1);
	}
	CHECK(off == r.sb.size);
	msgpack_sbuffer_destroy(&r.sb);
	close(p[0]);
	close(p[1]);
	pump(5);
	CHECK(parked[0] != NULL);
	if (parked[0]) {
		CHECK(parked[0]->zone == NULL);
		CHECK(rpc_call_nfiles(parked[0]) == 2 && rpc_call_file(parked[0], 0) == -1 &&
		      rpc_call_file(parked[0], 1) == -1);
		CHECK(unit_count_fds() == fds0);
		struct rpc_conn *c = container_of(list_first(&srv->conns), struct rpc_conn, link);
		CHECK(c->up->used + c->up->free <= RPC_IN_SHRINK_ABOVE);
		/* Asked for later, the zone is a new one; the call still answers. */
		CHECK(rpc_call_zone(parked[0]) != NULL);
		rpc_reply_str(parked[0], "done");
		parked[0] = NULL;
	}
	fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) & ~O_NONBLOCK);
	CHECK(reply_is(&t, 40, NULL));
	CHECK(echo_works(&t, 41));
	tc_close(&t);
	srv_stop();
}

TEST(test_reply_with_fd_raw)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	/* An echo first and after, so the fd must ride with the right reply. */
	send_echo(&t, 1, "a");
	struct req r;
	msgpack_pack_nil(req_begin(&r, 2, "test.GiveFD"));
	send_req(&t, &r, NULL, 0);
	send_echo(&t, 3, "b");
	CHECK(reply_is(&t, 1, NULL));
	CHECK(reply_is(&t, 2, NULL));
	CHECK(t.nfds == 1);
	if (t.nfds == 1) {
		char b[8] = { 0 };
		CHECK(read(t.fds[0], b, sizeof(b)) == 5 && strcmp(b, "hello") == 0);
	}
	CHECK(reply_is(&t, 3, NULL));
	tc_close(&t);
	srv_stop();
}

/* rpc_client blocks, so it runs in a child while the parent serves. */
static int client_child(void)
{
	struct cv_error err = { 0 };
	int bad = 0;
	struct rpc_client *c = rpc_client_connect(sock_path, &err);
	if (!c)
		return 100;
	const msgpack_object *res;
	if (rpc_client_call_str(c, "test.Echo", "web", &res, &err) < 0 ||
	    res->type != MSGPACK_OBJECT_STR || res->via.str.size != 3)
		bad |= 1;
	if (rpc_client_call_nil(c, "test.Fail", &res, &err) == 0 ||
	    strcmp(err.msg, "container \"web\" not found") != 0 || err.code != 0)
		bad |= 2;
	if (rpc_client_call_nil(c, "nope", &res, &err) == 0 || strcmp(err.msg, "unknown method"))
		bad |= 4;
	int fds[4];
	size_t nfds = 0;
	if (rpc_client_call(c, "test.GiveFD", NULL, NULL, 0, &res, fds, &nfds, 4, &err) < 0 ||
	    nfds != 1 || res->type != MSGPACK_OBJECT_MAP) {
		bad |= 8;
	} else {
		char b[8] = { 0 };
		if (read(fds[0], b, sizeof(b)) != 5 || strcmp(b, "hello"))
			bad |= 8;
		close(fds[0]);
	}
	/* fds to the server */
	int p[2];
	pipe_with(p, "zz");
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pack_s(&pk, "Files");
	msgpack_pack_uint8(&pk, 1);
	if (rpc_client_call(c, "test.Files", &sb, &p[0], 1, &res, NULL, NULL, 0, &err) < 0 ||
	    res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != 1 ||
	    res->via.array.ptr[0].via.str.size != 2)
		bad |= 16;
	msgpack_sbuffer_destroy(&sb);
	rpc_client_close(c);
	if (rpc_client_connect("/nonexistent/x.sock", &err) ||
	    strcmp(err.msg, "connecting to /nonexistent/x.sock: No such file or directory"))
		bad |= 32;
	return bad;
}

TEST(test_client_against_server)
{
	srv_start(NULL);
	int fds0 = unit_count_fds();
	pid_t pid = fork();
	if (pid == 0)
		_exit(client_child());
	int st = -1;
	for (int i = 0; i < 1000; i++) {
		pump(2);
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "  client child failures: %#x\n", WEXITSTATUS(st));
	pump(5);
	CHECK(rpc_server_nconns(srv) == 0);
	CHECK(unit_count_fds() == fds0);
	srv_stop();
}

TEST(test_client_eof)
{
	/* A server that hangs up without replying. */
	snprintf(sock_path, sizeof(sock_path), "/tmp/cvisor-test-rpc-eof-%d.sock", getpid());
	unlink(sock_path);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, sock_path);
	CHECK(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int a = accept(l, NULL, NULL);
		char b[64];
		if (read(a, b, sizeof(b)) < 0)
			_exit(1);
		_exit(0);
	}
	struct cv_error err = { 0 };
	struct rpc_client *c = rpc_client_connect(sock_path, &err);
	CHECK(c != NULL);
	if (c) {
		CHECK(rpc_client_call_str(c, "containerManager.Wait", "x", NULL, &err) < 0);
		CHECK_STR(err.msg,
			  "connection closed by the sandbox before replying to containerManager.Wait");
		rpc_client_close(c);
	}
	waitpid(pid, NULL, 0);
	close(l);
	unlink(sock_path);
}


/* The framer finds the same end however the bytes are split. */
TEST(test_scan_split_anywhere)
{
	struct req r;
	msgpack_packer *pk = req_begin(&r, 4000000000u, "containerManager.ExecuteAsync");
	msgpack_pack_map(pk, 4);
	pack_s(pk, "Argv");
	msgpack_pack_array(pk, 2);
	pack_s(pk, "sh");
	msgpack_pack_bin(pk, 3);
	msgpack_pack_bin_body(pk, "abc", 3);
	pack_s(pk, "Big");
	msgpack_pack_int64(pk, -5000000000LL);
	pack_s(pk, "F");
	msgpack_pack_double(pk, 1.5);
	pack_s(pk, "X");
	msgpack_pack_ext(pk, 20, 7);
	msgpack_pack_ext_body(pk, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14", 20);
	msgpack_sbuffer_write(&r.sb, "\x01", 1); /* the start of the next message */
	size_t total = r.sb.size - 1;
	for (size_t cut = 0; cut <= total; cut++) {
		struct rpc_scan sc = { 0 };
		rpc_scan_reset(&sc);
		size_t used = 0, used2 = 0;
		enum rpc_scan_result a =
			rpc_scan_feed(&sc, (const unsigned char *)r.sb.data, cut, &used);
		if (cut < total) {
			CHECK(a == RPC_SCAN_MORE && used == cut);
			a = rpc_scan_feed(&sc, (const unsigned char *)r.sb.data + cut,
					  r.sb.size - cut, &used2);
		}
		CHECK(a == RPC_SCAN_DONE && used + used2 == total && sc.msg_bytes == total);
		CHECK(rpc_head_msgid(sc.head, sc.head_len) == 4000000000LL);
	}
	msgpack_sbuffer_destroy(&r.sb);
	struct rpc_scan sc = { 0 };
	rpc_scan_reset(&sc);
	size_t used;
	CHECK(rpc_scan_feed(&sc, (const unsigned char *)"\x92\x01\xc1", 3, &used) == RPC_SCAN_BAD);
}

/* A header declaring 2^32-1 elements must not make anyone allocate for
 * them: the server waits for the bytes and hits the size limit. */
TEST(test_huge_declared_length)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_message = 4096;
	srv_start(&lim);
	struct tc t, other;
	tc_open(&t);
	tc_open(&other);
	const char hdr[] = "\x94\x00\x2a\xa9test.Echo\x91\xdd\xff\xff\xff\xff";
	tc_send(&t, hdr, sizeof(hdr) - 1, NULL, 0);
	char zeros[5000] = { 0 };
	tc_send(&t, zeros, sizeof(zeros), NULL, 0);
	CHECK(reply_is(&t, 42, "message too large (limit 4096 bytes)"));
	CHECK(tc_recv(&t) == 0);
	/* Nested deeper than msgpack-c can parse: the framer still finds its
	 * end, so it is answered and the connection stays usable. */
	struct tc d;
	tc_open(&d);
	char deep[64];
	memcpy(deep, "\x94\x00\x2b\xa9test.Echo", 13);
	memset(deep + 13, 0x91, 40);
	deep[53] = 0x01;
	tc_send(&d, deep, 54, NULL, 0);
	CHECK(reply_is(&d, 43, "invalid message: nesting deeper than 32"));
	CHECK(echo_works(&d, 1));
	CHECK(echo_works(&other, 1));
	tc_close(&t);
	tc_close(&d);
	tc_close(&other);
	srv_stop();
}

/* A client that sends without reading: the server stops reading it once
 * its replies pile up past RPC_OUT_HIGH, and resumes as they drain. */
TEST(test_backpressure)
{
	srv_start(NULL);
	struct tc t;
	tc_open(&t);
	fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK);
	enum { N = 120, SZ = 100000 };
	static char body[SZ];
	memset(body, 'q', sizeof(body) - 1);
	msgpack_sbuffer all;
	msgpack_sbuffer_init(&all);
	for (uint64_t id = 0; id < N; id++) {
		struct req r;
		pack_s(req_begin(&r, id, "test.Echo"), body);
		msgpack_sbuffer_write(&all, r.sb.data, r.sb.size);
		msgpack_sbuffer_destroy(&r.sb);
	}
	size_t off = 0, max_pending = 0;
	for (int i = 0; i < 2000 && off < all.size; i++) {
		ssize_t n = send(t.fd, all.data + off, all.size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		pump(1);
		if (rpc_server_pending_output(srv) > max_pending)
			max_pending = rpc_server_pending_output(srv);
	}
	/* Stalled: the server stopped reading long before taking it all. */
	CHECK(off < all.size);
	CHECK(max_pending >= RPC_OUT_HIGH && max_pending < RPC_OUT_HIGH + 2 * RPC_READ_CHUNK + SZ);
	int got = 0;
	while (got < N) {
		if (off < all.size) {
			ssize_t n = send(t.fd, all.data + off, all.size - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
		}
		if (tc_recv(&t) != 1)
			break;
		CHECK(rf(&t, 1)->via.u64 == (uint64_t)got);
		got++;
	}
	CHECK(got == N);
	CHECK(rpc_server_pending_output(srv) == 0);
	msgpack_sbuffer_destroy(&all);
	tc_close(&t);
	srv_stop();
}

/* The client memory budget: a client that does not read its replies fills
 * it; then new requests of anyone are refused with a clear error while the
 * connections stay usable, a half-received message that needs a bigger
 * buffer closes its connection, and once the replies are read the budget
 * frees and calls work again. */
TEST(test_client_mem_budget)
{
	struct rpc_limits lim;
	rpc_limits_default(&lim);
	lim.max_client_mem = 1u << 20;
	srv_start(&lim);
	size_t idle0 = rpc_server_client_mem(srv);
	struct tc hog, c, big;
	tc_open(&hog);
	tc_open(&c);
	tc_open(&big);
	/* An idle connection holds a few KiB, not a 64 KiB read buffer. */
	CHECK(rpc_server_client_mem(srv) - idle0 < 3 * 16 * 1024);
	fcntl(hog.fd, F_SETFL, fcntl(hog.fd, F_GETFL) | O_NONBLOCK);
	enum { SZ = 60000 };
	static char body[SZ];
	memset(body, 'm', sizeof(body) - 1);
	struct req r;
	pack_s(req_begin(&r, 1, "test.Echo"), body);
	int sent = 0;
	for (int i = 0; i < 400 && rpc_server_client_mem(srv) <= lim.max_client_mem; i++) {
		if (send(hog.fd, r.sb.data, r.sb.size, MSG_DONTWAIT | MSG_NOSIGNAL) ==
		    (ssize_t)r.sb.size)
			sent++;
		pump(1);
	}
	msgpack_sbuffer_destroy(&r.sb);
	CHECK(rpc_server_client_mem(srv) > lim.max_client_mem);
	/* Unread replies are held, but no more than the budget plus what
	 * reading stops within. */
	CHECK(rpc_server_client_mem(srv) < lim.max_client_mem + RPC_OUT_HIGH);
	send_echo(&c, 6, "refused");
	CHECK(reply_is(&c, 6, "sandbox memory budget for clients exhausted (1 MiB)"));
	/* A message arriving in pieces needs its buffer to grow: refused, closed. */
	struct req bigr;
	pack_s(req_begin(&bigr, 9, "test.Echo"), body);
	tc_send(&big, bigr.sb.data, 3000, NULL, 0);
	pump(5);
	tc_send(&big, bigr.sb.data + 3000, 20000, NULL, 0);
	msgpack_sbuffer_destroy(&bigr.sb);
	CHECK(reply_is(&big, 9, "sandbox memory budget for clients exhausted (1 MiB)"));
	CHECK(tc_recv(&big) == 0);
	/* The hog reads its replies: memory is given back. */
	fcntl(hog.fd, F_SETFL, fcntl(hog.fd, F_GETFL) & ~O_NONBLOCK);
	int got = 0;
	while (got < sent && tc_recv(&hog) == 1)
		got++;
	CHECK(got == sent);
	pump(5);
	CHECK(rpc_server_client_mem(srv) < lim.max_client_mem);
	CHECK(echo_works(&c, 7));
	CHECK(echo_works(&hog, 8));
	tc_close(&hog);
	tc_close(&c);
	tc_close(&big);
	pump(5);
	CHECK(rpc_server_client_mem(srv) == idle0);
	srv_stop();
}

/* A call carries room for the files its request declared, not a fixed
 * array of RPC_MAX_FILES. */
TEST(test_call_size)
{
	CHECK(sizeof(struct rpc_call) < 256);
}

/* The connection limit follows RLIMIT_NOFILE unless set. */
TEST(test_conn_limit_from_rlimit)
{
	struct rlimit old, low;
	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = 400;
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	srv_start(NULL);
	/* (400 - 1 - RPC_FDS_OWN - fd_reserve 256) / 2 */
	CHECK(rpc_server_limits(srv)->max_conns == (400 - 1 - RPC_FDS_OWN - 256) / 2);
	srv_stop();
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	srv_start(NULL);
	uint64_t want = old.rlim_cur == RLIM_INFINITY ? RPC_CONNS_CAP
						      : (old.rlim_cur - 1 - RPC_FDS_OWN - 256) / 2;
	if (want > RPC_CONNS_CAP)
		want = RPC_CONNS_CAP;
	CHECK(rpc_server_limits(srv)->max_conns == want);
	srv_stop();
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
}

UNIT_MAIN(test_round_trip, test_pipelined_out_of_order, test_unknown_method,
	  test_malformed_messages, test_one_byte_at_a_time, test_parse_error_closes,
	  test_files_received, test_files_short, test_unclaimed_fds_closed, test_message_too_large,
	  test_disconnect_cancels, test_server_free_cancels, test_inflight_limit, test_conn_limit,
	  test_conn_idle_evicted, test_fd_quota, test_fd_budget_evicts_hoarder,
	  test_parked_call_releases_request,
	  test_reply_with_fd_raw, test_client_against_server, test_client_eof,
	  test_scan_split_anywhere, test_huge_declared_length, test_backpressure,
	  test_client_mem_budget, test_call_size, test_conn_limit_from_rlimit)

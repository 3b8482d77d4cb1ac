/* RPC benchmark client: talks MessagePack-RPC to a sandbox's control socket
 * with msgpack-c and a raw socket (no dependency on cvisor's sources, so it
 * measures the server as any client would see it).
 *
 *   rpc_bench SOCK CID rtt  N          N sequential ContainerRuntimeState calls:
 *                                      p50/p99 round trip in µs
 *   rpc_bench SOCK CID pipe N DEPTH    N ContainerRuntimeState calls, DEPTH in
 *                                      flight: calls/s
 *   rpc_bench SOCK CID exec N          N x (ExecuteAsync /bin/true + WaitPID):
 *                                      p50/p99 of the pair in µs
 *
 * Prints one JSON line; any error reply or protocol surprise exits 1 with
 * the reason on stderr. */
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	msgpack_unpacker up;
	msgpack_unpacked msg;
	msgpack_sbuffer out;
	msgpack_packer pk;
	uint32_t next_id;
	size_t last_req_bytes; /* size of the last request sent */
	size_t last_rep_bytes; /* size of the last reply received */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rpc_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		die("socket path %s is longer than %zu bytes", path, sizeof sa.sun_path - 1);
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connecting to %s: %s", path, strerror(errno));
	if (!msgpack_unpacker_init(&c->up, 64 * 1024))
		die("out of memory");
	msgpack_unpacked_init(&c->msg);
	msgpack_sbuffer_init(&c->out);
	msgpack_packer_init(&c->pk, &c->out, msgpack_sbuffer_write);
	c->next_id = 1;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Starts a request in c->out: [0, id, method, [ ... caller packs one arg. */
static uint32_t begin(struct conn *c, const char *method)
{
	uint32_t id = c->next_id++;
	msgpack_pack_array(&c->pk, 4);
	msgpack_pack_int(&c->pk, 0);
	msgpack_pack_uint32(&c->pk, id);
	pack_str(&c->pk, method);
	msgpack_pack_array(&c->pk, 1);
	return id;
}

/* Writes everything buffered in c->out. */
static void flush(struct conn *c)
{
	size_t off = 0;
	while (off < c->out.size) {
		ssize_t n = write(c->fd, c->out.data + off, c->out.size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("writing to the control socket: %s", n < 0 ? strerror(errno) : "closed");
		off += (size_t)n;
	}
	c->last_req_bytes = c->out.size;
	msgpack_sbuffer_clear(&c->out);
}

static uint32_t req_state(struct conn *c, const char *cid)
{
	uint32_t id = begin(c, "containerManager.ContainerRuntimeState");
	pack_str(&c->pk, cid);
	return id;
}

/* Next reply: checks it is [1, id, nil, result] and returns the result as
 * an integer (int results only; every call used here answers an int). */
static int64_t recv_reply(struct conn *c, uint32_t *id_out)
{
	for (;;) {
		msgpack_unpack_return r = msgpack_unpacker_next_with_size(&c->up, &c->msg,
									  &c->last_rep_bytes);
		if (r == MSGPACK_UNPACK_SUCCESS)
			break;
		if (r != MSGPACK_UNPACK_CONTINUE)
			die("the server sent bytes that are not msgpack");
		if (msgpack_unpacker_buffer_capacity(&c->up) < 4096 &&
		    !msgpack_unpacker_reserve_buffer(&c->up, 64 * 1024))
			die("out of memory");
		ssize_t n = read(c->fd, msgpack_unpacker_buffer(&c->up),
				 msgpack_unpacker_buffer_capacity(&c->up));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("reading the control socket: %s", n < 0 ? strerror(errno) : "closed by the server");
		msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
	}
	msgpack_object o = c->msg.data;
	if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4 ||
	    o.via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o.via.array.ptr[0].via.u64 != 1 ||
	    o.via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		die("the server sent something that is not a response");
	msgpack_object err = o.via.array.ptr[2], res = o.via.array.ptr[3];
	if (err.type == MSGPACK_OBJECT_STR)
		die("call failed: %.*s", (int)err.via.str.size, err.via.str.ptr);
	if (err.type != MSGPACK_OBJECT_NIL)
		die("the response's error is neither nil nor a string");
	*id_out = (uint32_t)o.via.array.ptr[1].via.u64;
	if (res.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)res.via.u64;
	if (res.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return res.via.i64;
	die("expected an integer result");
}

static int64_t call_sync(struct conn *c, uint32_t id)
{
	flush(c);
	uint32_t got;
	int64_t v = recv_reply(c, &got);
	if (got != id)
		die("reply for msgid %u while only %u was in flight", got, id);
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report_latency(const char *mode, double *lat, long n, const struct conn *c)
{
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("{\"mode\":\"%s\",\"n\":%ld,\"req_bytes\":%zu,\"rep_bytes\":%zu,"
	       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples_us\":[",
	       mode, n, c->last_req_bytes, c->last_rep_bytes, lat[n / 2], lat[(n * 99) / 100]);
	/* Every sample (sorted), so that a caller can pool interleaved runs. */
	for (long i = 0; i < n; i++)
		printf("%s%.1f", i ? "," : "", lat[i]);
	printf("]}\n");
}

static void bench_rtt(struct conn *c, const char *cid, long n)
{
	double *lat = calloc((size_t)n, sizeof *lat);
	if (!lat)
		die("out of memory");
	for (long i = 0; i < n; i++) {
		double t0 = now_us();
		int64_t st = call_sync(c, req_state(c, cid));
		lat[i] = now_us() - t0;
		if (st != 2)
			die("ContainerRuntimeState(%s) = %lld, expected 2 (running)", cid, (long long)st);
	}
	report_latency("rtt", lat, n, c);
	free(lat);
}

static void bench_pipe(struct conn *c, const char *cid, long n, long depth)
{
	long sent = 0, got = 0;
	double t0 = now_us();
	while (got < n) {
		while (sent < n && sent - got < depth) {
			req_state(c, cid);
			sent++;
		}
		flush(c);
		uint32_t id;
		if (recv_reply(c, &id) != 2)
			die("ContainerRuntimeState(%s) is not 2 (running)", cid);
		got++;
	}
	double secs = (now_us() - t0) / 1e6;
	printf("{\"mode\":\"pipe\",\"n\":%ld,\"depth\":%ld,\"calls_per_s\":%.0f}\n", n, depth,
	       (double)n / secs);
}

static uint32_t req_exec(struct conn *c, const char *cid)
{
	uint32_t id = begin(c, "containerManager.ExecuteAsync");
	msgpack_packer *pk = &c->pk;
	msgpack_pack_map(pk, 8);
	pack_str(pk, "ContainerID");
	pack_str(pk, cid);
	pack_str(pk, "filename");
	pack_str(pk, "/bin/true");
	pack_str(pk, "argv");
	msgpack_pack_array(pk, 1);
	pack_str(pk, "/bin/true");
	pack_str(pk, "envv");
	msgpack_pack_array(pk, 1);
	pack_str(pk, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	pack_str(pk, "wd");
	pack_str(pk, "/");
	pack_str(pk, "KUID");
	msgpack_pack_uint32(pk, 0);
	pack_str(pk, "KGID");
	msgpack_pack_uint32(pk, 0);
	pack_str(pk, "GuestFDs");
	msgpack_pack_array(pk, 0);
	return id;
}

static uint32_t req_waitpid(struct conn *c, const char *cid, int64_t pid)
{
	uint32_t id = begin(c, "containerManager.WaitPID");
	msgpack_pack_map(&c->pk, 2);
	pack_str(&c->pk, "PID");
	msgpack_pack_int64(&c->pk, pid);
	pack_str(&c->pk, "CID");
	pack_str(&c->pk, cid);
	return id;
}

static void bench_exec(struct conn *c, const char *cid, long n)
{
	double *lat = calloc((size_t)n, sizeof *lat);
	if (!lat)
		die("out of memory");
	for (long i = 0; i < n; i++) {
		double t0 = now_us();
		int64_t pid = call_sync(c, req_exec(c, cid));
		int64_t st = call_sync(c, req_waitpid(c, cid, pid));
		lat[i] = now_us() - t0;
		if (st != 0)
			die("/bin/true (pid %lld) ended with wait status %lld", (long long)pid,
			    (long long)st);
	}
	report_latency("exec", lat, n, c);
	free(lat);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: rpc_bench SOCK CID rtt|exec N | rpc_bench SOCK CID pipe N DEPTH\n");
		return 2;
	}
	const char *path = argv[1], *cid = argv[2], *mode = argv[3];
	long n = atol(argv[4]);
	if (n <= 0)
		die("N must be a positive number, got %s", argv[4]);
	struct conn c;
	conn_open(&c, path);
	if (strcmp(mode, "rtt") == 0) {
		bench_rtt(&c, cid, n);
	} else if (strcmp(mode, "pipe") == 0) {
		long depth = argc > 5 ? atol(argv[5]) : 0;
		if (depth <= 0)
			die("pipe mode needs DEPTH > 0");
		bench_pipe(&c, cid, n, depth);
	} else if (strcmp(mode, "exec") == 0) {
		bench_exec(&c, cid, n);
	} else {
		die("unknown mode %s (rtt, pipe or exec)", mode);
	}
	close(c.fd);
	msgpack_unpacked_destroy(&c.msg);
	msgpack_unpacker_destroy(&c.up);
	msgpack_sbuffer_destroy(&c.out);
	return 0;
}

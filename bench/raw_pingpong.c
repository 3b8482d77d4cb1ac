/* Baseline for the RPC benchmark: the cheapest possible request/response
 * over an AF_UNIX stream socket between two processes, with the same
 * message sizes as a ContainerRuntimeState call (a 40-byte request, a
 * 10-byte reply) and no parsing at all.
 *
 *   raw_pingpong rtt  N [REQ REP]        N sequential round trips: p50/p99 in µs
 *   raw_pingpong pipe N DEPTH [REQ REP]  N round trips with DEPTH in flight: calls/s
 *
 * REQ and REP override the message sizes (bytes, at most 4096), so the
 * harness can match what rpc_bench measured on the wire.
 *
 * Prints one JSON line. Depends on nothing but libc. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 4096

static size_t req_size = 40, rep_size = 10;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const char *buf, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t r = write(fd, buf + put, n - put);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		put += (size_t)r;
	}
	return 0;
}

/* The "server": reads requests, answers each with a fixed reply. */
static void serve(int fd)
{
	char req[MAX_SIZE], rep[MAX_SIZE];
	memset(rep, 'r', rep_size);
	while (read_full(fd, req, req_size) == 0)
		if (write_full(fd, rep, rep_size) < 0)
			break;
	_exit(0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int usage(void)
{
	fprintf(stderr, "usage: raw_pingpong rtt N [REQ REP] | raw_pingpong pipe N DEPTH [REQ REP]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *mode = argv[1];
	long n = atol(argv[2]);
	int pipe_mode = strcmp(mode, "pipe") == 0;
	if (!pipe_mode && strcmp(mode, "rtt"))
		return usage();
	long depth = 1;
	int sizes_at = 3;
	if (pipe_mode) {
		if (argc < 4)
			return usage();
		depth = atol(argv[3]);
		sizes_at = 4;
	}
	if (argc > sizes_at) {
		if (argc != sizes_at + 2)
			return usage();
		req_size = (size_t)atol(argv[sizes_at]);
		rep_size = (size_t)atol(argv[sizes_at + 1]);
	}
	if (n <= 0 || depth <= 0 || req_size == 0 || rep_size == 0 || req_size > MAX_SIZE ||
	    rep_size > MAX_SIZE)
		return usage();

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("raw_pingpong: socketpair");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("raw_pingpong: fork");
		return 1;
	}
	if (child == 0) {
		close(sv[0]);
		serve(sv[1]);
	}
	close(sv[1]);
	int fd = sv[0];
	char req[MAX_SIZE], rep[MAX_SIZE];
	memset(req, 'q', req_size);
	int rc = 0;

	if (strcmp(mode, "rtt") == 0) {
		double *lat = calloc((size_t)n, sizeof *lat);
		if (!lat) {
			perror("raw_pingpong: calloc");
			return 1;
		}
		for (long i = 0; i < n; i++) {
			double t0 = now_us();
			if (write_full(fd, req, req_size) || read_full(fd, rep, rep_size)) {
				fprintf(stderr, "raw_pingpong: peer went away\n");
				rc = 1;
				break;
			}
			lat[i] = now_us() - t0;
		}
		if (rc == 0) {
			qsort(lat, (size_t)n, sizeof *lat, cmp_double);
			printf("{\"mode\":\"rtt\",\"n\":%ld,\"req_bytes\":%zu,\"rep_bytes\":%zu,"
			       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples_us\":[",
			       n, req_size, rep_size, lat[n / 2], lat[(n * 99) / 100]);
			/* Every sample (sorted), so that a caller can pool runs. */
			for (long i = 0; i < n; i++)
				printf("%s%.1f", i ? "," : "", lat[i]);
			printf("]}\n");
		}
		free(lat);
	} else {
		long sent = 0, got = 0;
		double t0 = now_us();
		while (got < n) {
			while (sent < n && sent - got < depth) {
				if (write_full(fd, req, req_size)) {
					rc = 1;
					break;
				}
				sent++;
			}
			if (rc || read_full(fd, rep, rep_size)) {
				fprintf(stderr, "raw_pingpong: peer went away\n");
				rc = 1;
				break;
			}
			got++;
		}
		double secs = (now_us() - t0) / 1e6;
		if (rc == 0)
			printf("{\"mode\":\"pipe\",\"n\":%ld,\"depth\":%ld,\"calls_per_s\":%.0f}\n", n,
			       depth, (double)n / secs);
	}
	close(fd);
	waitpid(child, NULL, 0);
	return rc;
}

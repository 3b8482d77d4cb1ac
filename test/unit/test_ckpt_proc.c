/* Unit tests for kernel/ckpt_capture.c and kernel/restore_proc.c: the
 * static counter (test/integration/ckpt/counter.c) is captured, killed and
 * restored into a fresh process; it must go on at the next counter value
 * with its heap, FP state, O_APPEND file, stdout pipe and SIGUSR1 handler
 * intact. A process holding a socket must be refused by name. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/ckpt_image.h"
#include "kernel/ckpt_proc.h"
#include "kernel/ckpt_tree.h"
#include <sys/mman.h>
#include "test/unit/unit.h"

/* The build directory's copy (make check builds into build-asan). */
#ifndef VICTIM
#define VICTIM "build/ckpt/counter"
#endif

static pid_t spawn(int out, const char *file, const char *mib, const char *threads)
{
	pid_t pid = fork();
	if (pid == 0) {
		/* stdin and stderr /dev/null (under make and run.sh they are
		 * pipes), stdout the test's pipe, nothing else. */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 2);
		dup2(out, 1);
		close_range(3, ~0U, 0);
		execl(VICTIM, VICTIM, mib, file, "20", threads, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Reads one line from fd (1 s timeout); returns its counter or -1. */
static long next_n(int fd, char *line, size_t cap)
{
	size_t k = 0;
	while (k + 1 < cap) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 2000) <= 0 || read(fd, line + k, 1) != 1)
			return -1;
		if (line[k++] == '\n')
			break;
	}
	line[k] = '\0';
	return strncmp(line, "n=", 2) == 0 ? strtol(line + 2, NULL, 10) : -1;
}

struct ext {
	char link[64];
};

static int is_ext(void *data, int fd, const char *link, int *src)
{
	*src = fd;
	return strcmp(((struct ext *)data)->link, link) == 0;
}

/* Writes cp as a state file into a memfd (the caller closes it). */
static int save_image(const struct ckpt_proc *cp, struct cv_error *err)
{
	int fd = memfd_create("ckpt-unit", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, err);
	if (!w || ckpt_image_put(w, cp, err) < 0 || sf_writer_finish(w, err) < 0) {
		sf_writer_free(w);
		close(fd);
		return -1;
	}
	sf_writer_free(w);
	return fd;
}

static int load_image(int fd, struct ckpt_loader *l, struct cv_error *err)
{
	lseek(fd, 0, SEEK_SET);
	memset(l, 0, sizeof(*l));
	if (sf_read_fd(fd, ckpt_image_event, l, err) != 0 || ckpt_image_done(l, err) < 0)
		return -1;
	return 0;
}

static void round_trip(const char *threads)
{
	if (access(VICTIM, X_OK) != 0) {
		CHECK(!"victim not built");
		return;
	}
	int fds_before = unit_count_fds();
	char dir[] = "/tmp/ckpt-unit-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char file[64];
	snprintf(file, sizeof(file), "%s/log", dir);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = spawn(p[1], file, "8", threads);
	char line[256];
	long n = -1;
	for (int i = 0; i < 4; i++)
		n = next_n(p[0], line, sizeof(line));
	CHECK(n >= 3);

	struct ext ext;
	struct stat st;
	fstat(p[1], &st);
	snprintf(ext.link, sizeof(ext.link), "pipe:[%lu]", (unsigned long)st.st_ino);
	struct ckpt_proc cp = {0};
	struct cv_error err = {0};
	int rc = ckpt_seize_all(pid, &cp, &err);
	if (rc == 0)
		rc = ckpt_capture(&cp, is_ext, &ext, &err);
	if (rc < 0)
		fprintf(stderr, "  capture: %s\n", err.msg);
	CHECK(rc == 0);
	CHECK(cp.page_bytes >= 8u << 20);
	/* Written while the process is still held: its pages stream from it. */
	int img = rc == 0 ? save_image(&cp, &err) : -1;
	CHECK(img >= 0);
	ckpt_kill_all(&cp);
	waitpid(pid, NULL, 0);
	/* What it printed before we took it; the last is where it stopped. */
	long last = n;
	int fl = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	for (long m; (m = next_n(p[0], line, sizeof(line))) >= 0;)
		last = m;
	fcntl(p[0], F_SETFL, fl);

	/* Through the state file and back; a flipped byte is refused. */
	struct ckpt_loader l = {0};
	if (img >= 0) {
		rc = load_image(img, &l, &err);
		if (rc < 0)
			fprintf(stderr, "  load: %s\n", err.msg);
		CHECK(rc == 0 && l.nprocs == 1 && l.procs[0].page_bytes == cp.page_bytes);
		off_t size = lseek(img, 0, SEEK_END);
		unsigned char b;
		pread(img, &b, 1, size / 2);
		b ^= 0x40;
		pwrite(img, &b, 1, size / 2);
		struct ckpt_loader bad = {0};
		struct cv_error berr = {0};
		CHECK(load_image(img, &bad, &berr) < 0);
		if (getenv("CKPT_UNIT_VERBOSE"))
			fprintf(stderr, "  flipped: %s\n", berr.msg);
		CHECK(strstr(berr.msg, "checksum") != NULL || strstr(berr.msg, "state file") != NULL);
		ckpt_loader_free(&bad);
		close(img);
	}
	pid_t npid = -1;
	int one = 1;
	if (rc == 0) {
		rc = restore_proc(&l.procs[0], VICTIM, &one, &p[1], 1, &npid, &err);
		if (rc < 0)
			fprintf(stderr, "  restore: %s\n", err.msg);
	}
	CHECK(rc == 0);
	if (rc == 0) {
		long m = next_n(p[0], line, sizeof(line));
		CHECK(m == last + 1);
		CHECK(strstr(line, "heap=ok fp=ok usr1=0") != NULL);
		kill(npid, SIGUSR1);
		m = next_n(p[0], line, sizeof(line));
		m = next_n(p[0], line, sizeof(line));
		CHECK(strstr(line, "heap=ok fp=ok usr1=1") != NULL);
		if (threads[0] != '0') {
			/* The worker threads count on after restore. */
			long a = strtol(strstr(line, "threads=") + 8, NULL, 10);
			next_n(p[0], line, sizeof(line));
			next_n(p[0], line, sizeof(line));
			CHECK(strtol(strstr(line, "threads=") + 8, NULL, 10) > a);
		}
		kill(npid, SIGKILL);
		waitpid(npid, NULL, 0);
		/* The file got the same lines, appended, in order. */
		FILE *f = fopen(file, "r");
		long prev = -1, ok = 1;
		while (f && fgets(line, sizeof(line), f)) {
			long k = strtol(line + 2, NULL, 10);
			ok &= prev < 0 || k == prev + 1;
			prev = k;
		}
		if (f)
			fclose(f);
		CHECK(ok && prev > last);
	}
	ckpt_proc_free(&cp);
	ckpt_loader_free(&l);
	close(p[0]);
	close(p[1]);
	unlink(file);
	rmdir(dir);
	CHECK(unit_count_fds() == fds_before);
}

TEST(test_single_thread_round_trip)
{
	round_trip("0");
}

TEST(test_threads_round_trip)
{
	round_trip("2");
}

TEST(test_socket_is_refused_by_name)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 2);
		dup2(sv[1], 5);
		dup2(p[1], 1);
		close_range(6, ~0U, 0);
		close(3);
		close(4);
		execl(VICTIM, VICTIM, "0", "/dev/null", "20", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	char line[256];
	CHECK(next_n(p[0], line, sizeof(line)) == 0);
	struct ckpt_proc cp = {0};
	struct cv_error err = {0};
	CHECK(ckpt_seize_all(pid, &cp, &err) == 0);
	CHECK(ckpt_capture(&cp, NULL, NULL, &err) < 0);
	char want[64];
	snprintf(want, sizeof(want), "process %d fd 5 (socket:", pid);
	CHECK(strstr(err.msg, want) != NULL && strstr(err.msg, "kind: socket"));
	ckpt_detach_all(&cp);
	ckpt_proc_free(&cp);
	/* The process runs on after a refused checkpoint. */
	CHECK(next_n(p[0], line, sizeof(line)) > 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(sv[0]);
	close(p[0]);
	close(p[1]);
}


/* A pipe whose other end is outside the processes taken (here: ours) is
 * refused when the pipes are paired, naming the process, fd and end. */
TEST(test_pipe_to_outside_is_refused_by_name)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 2);
		dup2(p[1], 1);
		close_range(3, ~0U, 0);
		execl(VICTIM, VICTIM, "0", "/dev/null", "20", (char *)NULL);
		_exit(127);
	}
	char line[256];
	CHECK(next_n(p[0], line, sizeof(line)) == 0);
	struct ckpt_proc cp = {0};
	struct cv_error err = {0};
	CHECK(ckpt_seize_all(pid, &cp, &err) == 0);
	CHECK(ckpt_capture(&cp, NULL, NULL, &err) == 0);
	struct ckpt_pipe *pipes = NULL;
	size_t npipes = 0;
	CHECK(ckpt_pipes_collect(&cp, 1, &pipes, &npipes, &err) < 0);
	char want[64];
	snprintf(want, sizeof(want), "process %d fd 1 (pipe:", pid);
	CHECK(strstr(err.msg, want) != NULL && strstr(err.msg, "holds its read end"));
	CHECK(pipes == NULL);
	ckpt_detach_all(&cp);
	ckpt_proc_free(&cp);
	CHECK(next_n(p[0], line, sizeof(line)) > 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
	close(p[1]);
}

UNIT_MAIN(test_single_thread_round_trip, test_threads_round_trip, test_socket_is_refused_by_name,
	  test_pipe_to_outside_is_refused_by_name)

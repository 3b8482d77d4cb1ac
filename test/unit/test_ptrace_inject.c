/* Unit tests for kernel/ptrace_inject.c: syscalls injected into a child
 * that sleeps in a loop, remote memory through /proc/PID/mem, and the
 * child carrying on unharmed after we put its registers back. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/ptrace_inject.h"
#include "test/unit/unit.h"

/* The child writes one byte per 5 ms to the pipe, sleeping in between, so
 * we catch it in nanosleep (an interrupted syscall to restart) most of
 * the time. */
static pid_t spawn_ticker(int *rfd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		struct timespec ts = {0, 5 * 1000 * 1000};
		for (unsigned char c = 0;; c++) {
			if (write(p[1], &c, 1) != 1)
				_exit(1);
			nanosleep(&ts, NULL);
		}
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

TEST(test_inject_and_resume)
{
	int fds_before = unit_count_fds();
	int rfd = -1;
	pid_t pid = spawn_ticker(&rfd);
	CHECK(pid > 0);
	unsigned char c;
	CHECK(read(rfd, &c, 1) == 1);

	struct pti t;
	struct cv_error err = {0};
	if (pti_seize(&t, pid, 0, &err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(rfd);
		SKIP("cannot ptrace here: %s", err.msg);
	}
	CHECK(pti_find_syscall(&t, &err) == 0);
	int64_t ret = 0;
	CHECK(pti_sys(&t, &ret, &err, SYS_getpid, 0, 0, 0, 0, 0, 0) == 0);
	CHECK(ret == pid);

	/* An anonymous mapping made in the child, written and read back
	 * through /proc/PID/mem even though it is read-only. */
	CHECK(pti_sys(&t, &ret, &err, SYS_mmap, 0, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		      (uint64_t)-1, 0) == 0);
	CHECK(ret > 0 && (ret & 4095) == 0);
	uint64_t addr = (uint64_t)ret;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int memfd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(memfd >= 0);
	char out[8192], in[8192];
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	CHECK(pti_mem_write(memfd, addr, out, sizeof(out), &err) == 0);
	CHECK(pti_mem_read(memfd, addr, in, sizeof(in), &err) == 0);
	CHECK(memcmp(in, out, sizeof(in)) == 0);
	/* A failing syscall reports its errno, not a driving error. */
	CHECK(pti_sys(&t, &ret, &err, SYS_close, 9999, 0, 0, 0, 0, 0) == 0);
	CHECK(ret == -EBADF);
	CHECK(pti_sys(&t, &ret, &err, SYS_munmap, addr, 8192, 0, 0, 0, 0) == 0);
	CHECK(ret == 0);
	/* Unmapped now: reading fails with an error naming the address. */
	CHECK(pti_mem_read(memfd, addr, in, 16, &err) < 0);
	CHECK(strstr(err.msg, "reading tracee memory at 0x") != NULL);
	close(memfd);

	CHECK(pti_restore_regs(&t, &err) == 0);
	CHECK(ptrace(PTRACE_DETACH, pid, 0, 0) == 0);
	/* The ticker carries on: bytes keep coming in order. */
	unsigned char prev = 0, cur = 0;
	int ok = 1;
	/* Drain what queued while it ran before the seize. */
	int fl = fcntl(rfd, F_GETFL);
	fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
	while (read(rfd, &cur, 1) == 1)
		prev = cur;
	fcntl(rfd, F_SETFL, fl);
	for (int i = 0; i < 5; i++) {
		if (read(rfd, &cur, 1) != 1 || cur != (unsigned char)(prev + 1))
			ok = 0;
		prev = cur;
	}
	CHECK(ok);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(rfd);
	CHECK(unit_count_fds() == fds_before);
}

TEST(test_dead_tracee_is_an_error)
{
	struct pti t;
	struct cv_error err = {0};
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	CHECK(pti_seize(&t, pid, 0, &err) < 0);
	CHECK(strstr(err.msg, "ptrace seize of thread") != NULL);
	t.sys_ip = 0;
	int64_t ret;
	CHECK(pti_sys(&t, &ret, &err, SYS_getpid, 0, 0, 0, 0, 0, 0) < 0);
	CHECK(strstr(err.msg, "no syscall instruction") != NULL);
}

UNIT_MAIN(test_inject_and_resume, test_dead_tracee_is_an_error)

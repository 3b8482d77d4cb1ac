/* Unit tests for kernel/ptrace_batch.c: batches of syscalls run in a
 * seized child in one ptrace resume each (counted), results and links
 * checked, a failing call stops the batch and is named, the bounds are
 * refused, and a signal or a ptrace event during a batch is an error (a
 * signal leaves the child stopped and drivable). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/ptrace_batch.h"
#include "test/unit/unit.h"

/* A seized child waiting in pause(), with the batch loop written into an
 * executable page of its own and a writable area for the table. */
struct child {
	pid_t pid;
	struct pti t;
	int memfd;
	struct ptb b;
};

static int take_child_opts(struct child *c, unsigned opts, struct cv_error *err)
{
	c->memfd = -1;
	c->pid = fork();
	if (c->pid == 0) {
		for (;;)
			pause();
	}
	if (c->pid < 0)
		return cv_errf(err, errno, "fork");
	if (pti_seize(&c->t, c->pid, opts, err) < 0 || pti_find_syscall(&c->t, err) < 0)
		return -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", c->pid);
	c->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (c->memfd < 0)
		return cv_errf(err, errno, "open %s", path);
	int64_t code, area;
	if (pti_sys(&c->t, &code, err, SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0) < 0 ||
	    pti_sys(&c->t, &area, err, SYS_mmap, 0, PTB_AREA_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0) < 0)
		return -1;
	if (code < 0 || area < 0)
		return cv_errf(err, 0, "mapping the trampoline in the child");
	if (ptb_write_code(c->memfd, (uint64_t)code, err) < 0)
		return -1;
	ptb_init(&c->b, (uint64_t)code, (uint64_t)area);
	return 0;
}

static int take_child(struct child *c, struct cv_error *err)
{
	return take_child_opts(c, 0, err);
}

static void drop_child(struct child *c)
{
	if (c->memfd >= 0)
		close(c->memfd);
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
}

TEST(test_batch_runs_in_one_resume_with_links)
{
	int fds_before = unit_count_fds();
	struct child c;
	struct cv_error err = {0};
	if (take_child(&c, &err) < 0) {
		drop_child(&c);
		SKIP("cannot seize a child here: %s", err.msg);
	}
	struct ptb *b = &c.b;
	static const char path[] = "/proc/self/status";
	uint64_t at;
	CHECK(ptb_data(b, path, sizeof(path), &at, &err) == 0);
	int pid = ptb_add(b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &err);
	int map = ptb_add(b, "mmap of a page", SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &err);
	/* getcwd into the page just mapped: its address is a linked result. */
	int cwd = ptb_add(b, "getcwd", SYS_getcwd, 0, 4096, 0, 0, 0, 0, &err);
	CHECK(ptb_link(b, cwd, 1, map, &err) == 0);
	int open = ptb_add(b, "open /proc/self/status", SYS_openat, (uint64_t)AT_FDCWD, at,
			   O_RDONLY | O_CLOEXEC, 0, 0, 0, &err);
	/* dup3 of an fd onto itself is skipped, not EINVAL; onto another
	 * number it runs. */
	int same = ptb_add(b, "dup3 onto itself", SYS_dup3, 1, 1, 0, 0, 0, 0, &err);
	CHECK(ptb_set_flags(b, same, PTB_SKIP_SAME, &err) == 0);
	int moved = ptb_add(b, "dup3 to 100", SYS_dup3, 0, 100, 0, 0, 0, 0, &err);
	CHECK(ptb_link(b, moved, 1, open, &err) == 0);
	CHECK(ptb_set_flags(b, moved, PTB_SKIP_SAME, &err) == 0);
	int cl100 = ptb_add(b, "close 100", SYS_close, 100, 0, 0, 0, 0, 0, &err);
	int gone = ptb_add(b, "close of fd 9999", SYS_close, 9999, 0, 0, 0, 0, 0, &err);
	CHECK(ptb_set_flags(b, gone, PTB_MAY_FAIL, &err) == 0);
	int cl = ptb_add(b, "close", SYS_close, 0, 0, 0, 0, 0, 0, &err);
	CHECK(ptb_link(b, cl, 1, open, &err) == 0);
	CHECK(pid == 0 && cl == 8);

	unsigned long before = pti_resume_count();
	CHECK(ptb_run(&c.t, c.memfd, b, &err) == 0);
	CHECK(pti_resume_count() == before + 1);
	CHECK(b->ran == 9);
	CHECK(ptb_result(b, pid) == c.pid);
	int64_t page = ptb_result(b, map);
	CHECK(page > 0 && (page & 4095) == 0);
	CHECK(ptb_result(b, cwd) > 0);
	CHECK(ptb_result(b, open) >= 0);
	CHECK(ptb_result(b, same) == 0);
	CHECK(ptb_result(b, moved) == 100 && ptb_result(b, cl100) == 0);
	CHECK(ptb_result(b, gone) == -EBADF);
	CHECK(ptb_result(b, cl) == 0);
	/* The cwd the child wrote into its new page, read back. */
	char got[4096] = {0}, want[4096] = {0};
	CHECK(pti_mem_read(c.memfd, (uint64_t)page, got, 64, &err) == 0);
	CHECK(getcwd(want, sizeof(want)) != NULL);
	CHECK(strncmp(got, want, 63) == 0);
	/* The fds were closed by the batch: nothing left open in the child. */
	char fdp[64];
	struct stat st;
	snprintf(fdp, sizeof(fdp), "/proc/%d/fd/%lld", c.pid, (long long)ptb_result(b, open));
	CHECK(lstat(fdp, &st) < 0 && errno == ENOENT);
	snprintf(fdp, sizeof(fdp), "/proc/%d/fd/100", c.pid);
	CHECK(lstat(fdp, &st) < 0 && errno == ENOENT);

	/* The thread carries on: registers back, detach, still alive. */
	CHECK(pti_restore_regs(&c.t, &err) == 0);
	CHECK(ptrace(PTRACE_DETACH, c.pid, 0, 0) == 0);
	CHECK(kill(c.pid, 0) == 0);
	drop_child(&c);
	CHECK(unit_count_fds() == fds_before);
}

TEST(test_failing_call_stops_the_batch_and_is_named)
{
	int fds_before = unit_count_fds();
	struct child c;
	struct cv_error err = {0};
	if (take_child(&c, &err) < 0) {
		drop_child(&c);
		SKIP("cannot seize a child here: %s", err.msg);
	}
	struct ptb *b = &c.b;
	int64_t ret;
	CHECK(pti_sys(&c.t, &ret, &err, SYS_umask, 022, 0, 0, 0, 0, 0) == 0);
	ptb_add(b, "umask 0", SYS_umask, 0, 0, 0, 0, 0, 0, &err);
	ptb_add(b, "close of fd 9999", SYS_close, 9999, 0, 0, 0, 0, 0, &err);
	ptb_add(b, "umask 077", SYS_umask, 077, 0, 0, 0, 0, 0, &err);
	CHECK(ptb_run(&c.t, c.memfd, b, &err) < 0);
	CHECK_STR(err.msg, "close of fd 9999: Bad file descriptor");
	CHECK(err.code == EBADF);
	CHECK(b->ran == 1);
	CHECK(ptb_result(b, 0) == 022);
	CHECK(ptb_result(b, 1) == -EBADF);
	/* The third never ran: the umask is still the first call's 0. */
	CHECK(pti_sys(&c.t, &ret, &err, SYS_umask, 022, 0, 0, 0, 0, 0) == 0);
	CHECK(ret == 0);

	/* The same batch again runs again (it was left as built). */
	cv_error_reset(&err);
	CHECK(ptb_run(&c.t, c.memfd, b, &err) < 0 && err.code == EBADF);
	drop_child(&c);
	CHECK(unit_count_fds() == fds_before);
}

TEST(test_bounds_are_refused)
{
	struct ptb *b = calloc(1, sizeof(*b));
	CHECK(b != NULL);
	if (!b)
		return;
	struct cv_error err = {0};
	ptb_init(b, 0x1000, 0x2000);
	CHECK(ptb_room(b, PTB_MAX_CALLS, PTB_DATA_MAX, 10));
	CHECK(!ptb_room(b, PTB_MAX_CALLS + 1, 0, 0));
	for (int i = 0; i < PTB_MAX_CALLS; i++)
		CHECK(ptb_add(b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &err) == i);
	CHECK(!ptb_room(b, 1, 0, 0));
	CHECK(ptb_add(b, "one too many", SYS_getpid, 0, 0, 0, 0, 0, 0, &err) < 0);
	CHECK(strstr(err.msg, "one too many: more than 64 calls") != NULL);
	CHECK(b->ncalls == PTB_MAX_CALLS);

	/* Data: aligned to 8, bounded; the addresses follow the table. */
	ptb_reset(b);
	uint64_t a1, a2;
	static unsigned char big[PTB_DATA_MAX + 1];
	CHECK(ptb_data(b, "abc", 3, &a1, &err) == 0 && ptb_data(b, "d", 1, &a2, &err) == 0);
	CHECK(a1 == 0x2000 + PTB_MAX_CALLS * PTB_CALL_SIZE && a2 == a1 + 8);
	CHECK(ptb_data(b, big, sizeof(big), &a1, &err) < 0);
	CHECK(strstr(err.msg, "do not fit") != NULL);
	CHECK(!ptb_room(b, 0, PTB_DATA_MAX - 8, 0));
	CHECK(ptb_room(b, 0, PTB_DATA_MAX - 16, 0));

	/* Links: only to an earlier call that must succeed, arguments 1..6. */
	ptb_reset(b);
	int x = ptb_add(b, "a", SYS_getpid, 0, 0, 0, 0, 0, 0, &err);
	int y = ptb_add(b, "b", SYS_getpid, 0, 0, 0, 0, 0, 0, &err);
	CHECK(ptb_link(b, x, 1, y, &err) < 0);
	CHECK(ptb_link(b, y, 7, x, &err) < 0);
	CHECK(ptb_link(b, y, 1, 5, &err) < 0);
	CHECK(ptb_link(b, y, 2, x, &err) == 0);
	CHECK(ptb_link(b, y, 3, x, &err) < 0); /* one per call */
	b->calls[y].link_arg = 0;
	CHECK(ptb_set_flags(b, x, PTB_MAY_FAIL, &err) == 0);
	CHECK(ptb_link(b, y, 1, x, &err) < 0);
	CHECK(ptb_set_flags(b, x, 0x80, &err) < 0);
	free(b);
}

TEST(test_signal_during_a_batch_is_an_error_and_leaves_it_stopped)
{
	int fds_before = unit_count_fds();
	struct child c;
	struct cv_error err = {0};
	if (take_child(&c, &err) < 0) {
		drop_child(&c);
		SKIP("cannot seize a child here: %s", err.msg);
	}
	struct ptb *b = &c.b;
	/* The child signals itself: the signal stops it as the kill returns,
	 * before the loop goes on. SIGUSR1 would kill it if delivered. */
	ptb_add(b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &err);
	ptb_add(b, "kill itself", SYS_kill, (uint64_t)c.pid, SIGUSR1, 0, 0, 0, 0, &err);
	ptb_add(b, "umask 077", SYS_umask, 077, 0, 0, 0, 0, 0, &err);
	CHECK(ptb_run(&c.t, c.memfd, b, &err) < 0);
	CHECK(strstr(err.msg, "stopped by signal 10") != NULL);
	CHECK(strstr(err.msg, "at call 2: kill itself") != NULL);
	/* Left in its signal stop, not resumed: the caller decides. Here it
	 * drops the signal by driving the thread on, and a batch runs. */
	char path[64], st[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", c.pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, st, sizeof(st) - 1) : -1;
	if (fd >= 0)
		close(fd);
	CHECK(n > 0);
	st[n > 0 ? n : 0] = '\0';
	const char *state = strrchr(st, ')');
	CHECK(state && state[2] == 't');
	ptb_reset(b);
	ptb_add(b, "getppid", SYS_getppid, 0, 0, 0, 0, 0, 0, &err);
	cv_error_reset(&err);
	CHECK(ptb_run(&c.t, c.memfd, b, &err) == 0);
	CHECK(ptb_result(b, 0) == getpid());
	drop_child(&c);
	CHECK(unit_count_fds() == fds_before);
}

TEST(test_ptrace_event_during_a_batch_is_an_error)
{
	int fds_before = unit_count_fds();
	struct child c;
	struct cv_error err = {0};
	if (take_child_opts(&c, PTRACE_O_TRACEFORK, &err) < 0) {
		drop_child(&c);
		SKIP("cannot seize a child here: %s", err.msg);
	}
	struct ptb *b = &c.b;
	ptb_add(b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &err);
	ptb_add(b, "fork", SYS_fork, 0, 0, 0, 0, 0, 0, &err);
	ptb_add(b, "umask 077", SYS_umask, 077, 0, 0, 0, 0, 0, &err);
	CHECK(ptb_run(&c.t, c.memfd, b, &err) < 0);
	CHECK(strstr(err.msg, "ptrace event 1 during a batch of 3 syscalls (at call 2: fork)") !=
	      NULL);
	/* The fork's child is traced too (TRACEFORK): ours to end. */
	unsigned long grandchild = 0;
	CHECK(ptrace(PTRACE_GETEVENTMSG, c.pid, 0, &grandchild) == 0 && grandchild > 0);
	if (grandchild > 0) {
		kill((pid_t)grandchild, SIGKILL);
		waitpid((pid_t)grandchild, NULL, __WALL);
	}
	drop_child(&c);
	CHECK(unit_count_fds() == fds_before);
}

UNIT_MAIN(test_batch_runs_in_one_resume_with_links, test_failing_call_stops_the_batch_and_is_named,
	  test_bounds_are_refused, test_signal_during_a_batch_is_an_error_and_leaves_it_stopped,
	  test_ptrace_event_during_a_batch_is_an_error)

/* Unit tests for kernel/cgroup.c on the real host (needs root): create a
 * node with limits, join it from a child, list, freeze, kill, destroy. */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "kernel/cgroup.h"
#include "test/unit/unit.h"

static bool read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return false;
	buf[r] = '\0';
	return true;
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Mount point of the v1 hierarchy carrying `ctrl`, or NULL: from the mount
 * table (a "cgroup" mount whose super options name the controller), not
 * from where this host happens to mount it. */
static const char *v1_mnt(const char *ctrl, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	char line[4096];
	const char *found = NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[1024], fstype[64], src[256], sopts[1024];
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %255s %1023s", fstype, src, sopts) != 3 ||
		    strcmp(fstype, "cgroup") != 0)
			continue;
		char *save = NULL;
		for (char *t = strtok_r(sopts, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (strcmp(t, ctrl) == 0) {
				snprintf(out, n, "%s", mnt);
				found = out;
				break;
			}
		}
	}
	fclose(f);
	return found;
}

TEST(test_v2_root)
{
	const char *v2 = cgroup_v2_root();
	CHECK(v2 != NULL);
	if (v2) {
		char p[256];
		snprintf(p, sizeof(p), "%s/cgroup.procs", v2);
		CHECK(exists(p));
	}
}

/* Waits (bounded) until cgroup.events says "frozen <want>". */
static bool wait_frozen(const struct cgroup *cg, int want)
{
	char needle[16];
	snprintf(needle, sizeof(needle), "frozen %d", want);
	for (int i = 0; i < 2000; i++) {
		struct cv_error err;
		int fd = cgroup_events_fd(cg, &err);
		if (fd < 0)
			return false;
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, needle))
				return true;
		}
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

TEST(test_lifecycle)
{
	if (geteuid() != 0)
		SKIP("needs root (creates cgroups)");
	/* A parent of our own: other test runs on this host use theirs, and
	 * removing a shared parent would kill what runs in their nodes. */
	char path[128], top[64];
	snprintf(top, sizeof(top), "cvisor-unit-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/node", top);
	struct oci_resources res = { 0 };
	res.has_pids = true;
	res.pids.has_limit = true;
	res.pids.limit = 10;
	res.has_memory = true;
	res.memory.has_limit = true;
	res.memory.limit = 64 << 20;
	struct cgroup cg;
	struct cv_error err;
	int r = cgroup_create(&cg, path, &res, &err);
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	const char *v2 = cgroup_v2_root();
	CHECK(cg.v2_dirfd >= 0);
	char mem[256], pids[256], p[512], buf[4096];
	bool v1 = v1_mnt("memory", mem, sizeof(mem)) && v1_mnt("pids", pids, sizeof(pids));
	if (v1) {
		CHECK(cg.n_v1 >= 4); /* memory, pids, cpu(acct), freezer */
		snprintf(p, sizeof(p), "%s/%s/pids.max", pids, path);
		CHECK(read_file(p, buf, sizeof(buf)) && strcmp(buf, "10\n") == 0);
		snprintf(p, sizeof(p), "%s/%s/memory.limit_in_bytes", mem, path);
		CHECK(read_file(p, buf, sizeof(buf)) && strcmp(buf, "67108864\n") == 0);
	} else {
		snprintf(p, sizeof(p), "%s/%s/pids.max", v2, path);
		CHECK(read_file(p, buf, sizeof(buf)) && strcmp(buf, "10\n") == 0);
		snprintf(p, sizeof(p), "%s/%s/memory.max", v2, path);
		CHECK(read_file(p, buf, sizeof(buf)) && strcmp(buf, "67108864\n") == 0);
	}

	/* An update with a bad value names the file. */
	struct oci_resources bad = { 0 };
	bad.has_cpu = true;
	bad.cpu.has_quota = true;
	bad.cpu.quota = 1; /* below the kernel's 1 ms minimum */
	CHECK(cgroup_update(&cg, &bad, &err) < 0);
	CHECK(strstr(err.msg, "writing \"1\" to ") && strstr(err.msg, path) &&
	      strstr(err.msg, ": Invalid argument"));

	/* A child joins the v1 nodes itself, the v2 node through cgroup.procs. */
	int sync[2];
	CHECK(pipe(sync) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(sync[0]);
		int jr = cgroup_join_self_v1(&cg);
		char c = jr == 0 ? 'y' : 'n';
		if (write(sync[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	char c = 0;
	CHECK(read(sync[0], &c, 1) == 1 && c == 'y');
	close(sync[0]);
	if (v1) {
		snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
		char want[256];
		snprintf(want, sizeof(want), ":memory:/%s\n", path);
		CHECK(read_file(p, buf, sizeof(buf)) && strstr(buf, want));
		snprintf(want, sizeof(want), ":pids:/%s\n", path);
		CHECK(strstr(buf, want) != NULL);
	}
	snprintf(p, sizeof(p), "%s/%s/cgroup.procs", v2, path);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fprintf(f, "%d", (int)pid);
		CHECK(fclose(f) == 0);
	}
	pid_t *list = NULL;
	size_t n = 0;
	CHECK(cgroup_pids(&cg, &list, &n, &err) == 0);
	CHECK(n == 1 && list && list[0] == pid);
	free(list);

	uint64_t usage = 0;
	CHECK(cgroup_memory_usage(&cg, &usage, &err) == 0);
	CHECK(usage > 0);

	CHECK(cgroup_freeze(&cg, true, &err) == 0);
	CHECK(wait_frozen(&cg, 1));
	CHECK(cgroup_freeze(&cg, false, &err) == 0);
	CHECK(wait_frozen(&cg, 0));

	CHECK(cgroup_kill(&cg, &err) == 0);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	CHECK(cgroup_destroy(&cg, &err) == 0);
	CHECK(cg.path == NULL && cg.v2_dirfd == -1 && cg.n_v1 == 0);
	snprintf(p, sizeof(p), "%s/%s", v2, path);
	CHECK(!exists(p));
	if (v1) {
		snprintf(p, sizeof(p), "%s/%s", mem, path);
		CHECK(!exists(p));
		snprintf(p, sizeof(p), "%s/%s", pids, path);
		CHECK(!exists(p));
	}
	/* The parent is empty now: removing it succeeds and removes it from
	 * every hierarchy. */
	CHECK(cgroup_remove_path(top, &err) == 0);
	snprintf(p, sizeof(p), "%s/%s", v2, top);
	CHECK(!exists(p));
	if (v1) {
		snprintf(p, sizeof(p), "%s/%s", mem, top);
		CHECK(!exists(p));
	}
}

/* A bad limit fails the creation and leaves nothing behind. */
TEST(test_create_failure_cleans_up)
{
	if (geteuid() != 0)
		SKIP("needs root (creates cgroups)");
	char path[128], p[512];
	snprintf(path, sizeof(path), "cvisor-unit-fail-%d/ctr", (int)getpid());
	struct oci_resources res = { 0 };
	res.has_cpu = true;
	res.cpu.has_quota = true;
	res.cpu.quota = 1;
	struct cgroup cg;
	struct cv_error err;
	CHECK(cgroup_create(&cg, path, &res, &err) < 0);
	CHECK(strstr(err.msg, "Invalid argument") != NULL);
	CHECK(cg.path == NULL && cg.v2_dirfd == -1);
	snprintf(p, sizeof(p), "%s/cvisor-unit-fail-%d", cgroup_v2_root(), (int)getpid());
	CHECK(!exists(p));
	char mem[256];
	if (v1_mnt("memory", mem, sizeof(mem))) {
		snprintf(p, sizeof(p), "%s/cvisor-unit-fail-%d", mem, (int)getpid());
		CHECK(!exists(p));
	}
	CHECK(cgroup_create(&cg, "a/../b", NULL, &err) < 0);
	CHECK(strstr(err.msg, "\"..\"") != NULL);
}

/* remove_path kills what is left and removes child nodes depth-first. */
TEST(test_remove_path_tree)
{
	if (geteuid() != 0)
		SKIP("needs root (creates cgroups)");
	char sb[128], ctr[160], p[512];
	snprintf(sb, sizeof(sb), "cvisor-unit-rm-%d", (int)getpid());
	snprintf(ctr, sizeof(ctr), "%s/web", sb);
	struct cgroup cg;
	struct cv_error err;
	CHECK(cgroup_create(&cg, ctr, NULL, &err) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	snprintf(p, sizeof(p), "%s/%s/cgroup.procs", cgroup_v2_root(), ctr);
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "%d", (int)pid);
		fclose(f);
	}
	cgroup_close(&cg);
	struct cgroup op;
	CHECK(cgroup_open(&op, ctr, &err) == 0);
	CHECK(op.v2_dirfd >= 0);
	cgroup_close(&op);

	CHECK(cgroup_remove_path(sb, &err) == 0);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	snprintf(p, sizeof(p), "%s/%s", cgroup_v2_root(), sb);
	CHECK(!exists(p));
	char mem[256];
	if (v1_mnt("memory", mem, sizeof(mem))) {
		snprintf(p, sizeof(p), "%s/%s", mem, sb);
		CHECK(!exists(p));
	}
	/* Missing nodes are fine; opening one is not. */
	CHECK(cgroup_remove_path(sb, &err) == 0);
	CHECK(cgroup_open(&op, ctr, &err) < 0);
}

/* cpus/mems make a v1 cpuset node whose mems are inherited, so a task can
 * join (only a host with a v1 cpuset hierarchy has such nodes). */
TEST(test_cpuset_v1_hierarchy)
{
	char cs[256];
	if (geteuid() != 0)
		SKIP("needs root (creates cgroups)");
	if (!v1_mnt("cpuset", cs, sizeof(cs)))
		SKIP("no cgroup v1 cpuset hierarchy on this host");
	char path[128], p[512], buf[256];
	snprintf(path, sizeof(path), "cvisor-unit-cs-%d/ctr", (int)getpid());
	struct oci_resources res = { 0 };
	res.has_cpu = true;
	res.cpu.cpus = "0";
	res.cpu.has_shares = true;
	res.cpu.shares = 256;
	struct cgroup cg;
	struct cv_error err;
	int r = cgroup_create(&cg, path, &res, &err);
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	snprintf(p, sizeof(p), "%s/%s/cpuset.cpus", cs, path);
	CHECK(read_file(p, buf, sizeof(buf)) && strcmp(buf, "0\n") == 0);
	snprintf(p, sizeof(p), "%s/%s/cpuset.mems", cs, path);
	CHECK(read_file(p, buf, sizeof(buf)) && buf[0] != '\n');
	char cpu[256];
	if (v1_mnt("cpu", cpu, sizeof(cpu))) {
		snprintf(p, sizeof(p), "%s/%s/cpu.shares", cpu, path);
		CHECK(read_file(p, buf, sizeof(buf)) && strcmp(buf, "256\n") == 0);
	}
	pid_t pid = fork();
	if (pid == 0)
		_exit(cgroup_join_self_v1(&cg) == 0 ? 0 : 1);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(cgroup_destroy(&cg, &err) == 0);
	snprintf(p, sizeof(p), "cvisor-unit-cs-%d", (int)getpid());
	CHECK(cgroup_remove_path(p, &err) == 0);
	snprintf(p, sizeof(p), "%s/cvisor-unit-cs-%d", cs, (int)getpid());
	CHECK(!exists(p));
}

/* Shared pending signals (ShdPnd) of pid, from /proc. */
static unsigned long long shd_pending(pid_t pid)
{
	char p[64], buf[4096];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	if (!read_file(p, buf, sizeof(buf)))
		return 0;
	const char *l = strstr(buf, "ShdPnd:");
	return l ? strtoull(l + 7, NULL, 16) : 0;
}

static int usr1_pipe = -1;
static void on_usr1(int sig)
{
	(void)sig;
	char c = 'u';
	if (write(usr1_pipe, &c, 1) != 1)
		_exit(3);
}

/* Signals to a frozen node stay queued until the thaw (what `kill --all` of
 * a paused container relies on); SIGKILL ends a frozen node. */
TEST(test_frozen_node_signals)
{
	if (geteuid() != 0)
		SKIP("needs root (creates cgroups)");
	char path[128], p[512], top[64];
	snprintf(top, sizeof(top), "cvisor-unit-frz-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/node", top);
	struct cgroup cg;
	struct cv_error err;
	int r = cgroup_create(&cg, path, NULL, &err);
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	int sync[2], got[2];
	CHECK(pipe(sync) == 0 && pipe(got) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(sync[0]);
		close(got[0]);
		usr1_pipe = got[1];
		signal(SIGUSR1, on_usr1);
		char c = cgroup_join_self_v1(&cg) == 0 ? 'y' : 'n';
		if (write(sync[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	close(got[1]);
	char c = 0;
	CHECK(read(sync[0], &c, 1) == 1 && c == 'y');
	close(sync[0]);
	snprintf(p, sizeof(p), "%s/%s/cgroup.procs", cgroup_v2_root(), path);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fprintf(f, "%d", (int)pid);
		CHECK(fclose(f) == 0);
	}

	bool frozen = true;
	CHECK(cgroup_freeze_requested(&cg, &frozen, &err) == 0 && !frozen);
	CHECK(cgroup_freeze(&cg, true, &err) == 0);
	CHECK(cgroup_freeze_requested(&cg, &frozen, &err) == 0 && frozen);
	CHECK(wait_frozen(&cg, 1));
	CHECK(cgroup_signal_all(&cg, SIGUSR1, &err) == 0);
	/* Queued, not handled: pending in the frozen process, nothing written. */
	CHECK(shd_pending(pid) & (1ULL << (SIGUSR1 - 1)));
	struct pollfd pf = { .fd = got[0], .events = POLLIN };
	CHECK(poll(&pf, 1, 0) == 0);
	CHECK(cgroup_freeze(&cg, false, &err) == 0);
	CHECK(cgroup_freeze_requested(&cg, &frozen, &err) == 0 && !frozen);
	CHECK(poll(&pf, 1, 10000) == 1 && read(got[0], &c, 1) == 1 && c == 'u');
	close(got[0]);

	CHECK(cgroup_freeze(&cg, true, &err) == 0);
	CHECK(wait_frozen(&cg, 1));
	CHECK(cgroup_kill(&cg, &err) == 0);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	CHECK(cgroup_freeze(&cg, false, &err) == 0);
	CHECK(cgroup_destroy(&cg, &err) == 0);
	CHECK(cgroup_remove_path(top, &err) == 0);
	snprintf(p, sizeof(p), "%s/%s", cgroup_v2_root(), top);
	CHECK(!exists(p));
}

/* ---- the timer-driven variants boot's loop uses ---- */

struct op_result {
	int calls, rc;
};

static void on_op_done(void *data, int rc, const struct cv_error *err)
{
	struct op_result *r = data;
	r->calls++;
	r->rc = rc;
	if (rc < 0)
		fprintf(stderr, "cgroup op: %s\n", err->msg);
	ev_break(core_loop(), EVBREAK_ALL);
}

static void on_op_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until done or 5 s. */
static void run_op_loop(void)
{
	ev_timer deadline;
	ev_timer_init(&deadline, on_op_deadline, 5.0, 0);
	ev_timer_start(core_loop(), &deadline);
	ev_run(core_loop(), 0);
	ev_timer_stop(core_loop(), &deadline);
}

static pid_t child_in(const char *rel)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	char p[512];
	snprintf(p, sizeof(p), "%s/%s/cgroup.procs", cgroup_v2_root(), rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "%d", (int)pid);
		fclose(f);
	}
	return pid;
}

TEST(test_async_kill_and_remove)
{
	if (geteuid() != 0)
		SKIP("needs root (creates cgroups)");
	if (!cgroup_v2_root())
		SKIP("no unified cgroup hierarchy on this host");
	struct cv_error err;
	if (!core_loop() && core_loop_init(&err) < 0) {
		CHECK(!"core_loop_init");
		return;
	}
	char sb[128], ctr[160], p[512];
	snprintf(sb, sizeof(sb), "cvisor-unit-async-%d", (int)getpid());
	snprintf(ctr, sizeof(ctr), "%s/web", sb);
	struct cgroup cg;
	CHECK(cgroup_create(&cg, ctr, NULL, &err) == 0);

	/* Kill: done from the loop, never inline; the member is dead. */
	pid_t pid = child_in(ctr);
	struct op_result r = { 0 };
	struct cgroup_op *op = cgroup_kill_start(&cg, on_op_done, &r, &err);
	CHECK(op != NULL);
	CHECK(r.calls == 0);
	run_op_loop();
	CHECK(r.calls == 1 && r.rc == 0);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* Cancelled: done never runs, nothing is left to fire. */
	pid = child_in(ctr);
	struct op_result rc = { 0 };
	op = cgroup_remove_start(sb, on_op_done, &rc, &err);
	CHECK(op != NULL);
	cgroup_op_cancel(op);
	ev_run(core_loop(), EVRUN_NOWAIT);
	CHECK(rc.calls == 0);
	CHECK(kill(pid, 0) == 0);

	/* Removal: kills the member, waits for it to leave, removes every
	 * hierarchy's node. */
	cgroup_close(&cg);
	struct op_result rr = { 0 };
	op = cgroup_remove_start(sb, on_op_done, &rr, &err);
	CHECK(op != NULL);
	CHECK(rr.calls == 0);
	run_op_loop();
	CHECK(rr.calls == 1 && rr.rc == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	snprintf(p, sizeof(p), "%s/%s", cgroup_v2_root(), sb);
	CHECK(!exists(p));
	char mem[256];
	if (v1_mnt("memory", mem, sizeof(mem))) {
		snprintf(p, sizeof(p), "%s/%s", mem, sb);
		CHECK(!exists(p));
	}
	/* A missing node is no error, as for cgroup_remove_path. */
	struct op_result rm = { 0 };
	op = cgroup_remove_start(sb, on_op_done, &rm, &err);
	CHECK(op != NULL);
	run_op_loop();
	CHECK(rm.calls == 1 && rm.rc == 0);
	/* A bad path is refused up front. */
	CHECK(cgroup_remove_start("a/../b", on_op_done, &rm, &err) == NULL);
	CHECK(strstr(err.msg, "..") != NULL);
}

UNIT_MAIN(test_v2_root, test_lifecycle, test_create_failure_cleans_up,
	  test_remove_path_tree, test_cpuset_v1_hierarchy, test_frozen_node_signals,
	  test_async_kill_and_remove)

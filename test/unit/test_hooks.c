/* kernel/hooks.c: the OCI hook runner (status, stderr tail, exec failure,
 * timeout with the process group killed, stdin from offset 0 for every
 * hook, no fd of ours in the hook, env) and the spec's hooks block. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/hooks.h"
#include "unit.h"

static struct oci_hook sh_hook(const char *script, char *argv[4])
{
	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = (char *)script;
	argv[3] = NULL;
	struct oci_hook h = { .path = "/bin/sh", .args = argv, .n_args = 3 };
	return h;
}

static int state(const char *text)
{
	struct cv_error err = { 0 };
	int fd = hooks_state_fd(text, strlen(text), &err);
	CHECK(fd >= 0);
	return fd;
}

static void read_file(const char *path, char *buf, size_t n)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t k = fread(buf, 1, n - 1, f);
	buf[k] = '\0';
	fclose(f);
	while (k > 0 && buf[k - 1] == '\n')
		buf[--k] = '\0';
}

static char tmpdir[64];

static const char *tmp(const char *name)
{
	static char path[2][128];
	static int i;
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/cvhooksXXXXXX");
		if (!mkdtemp(tmpdir))
			return NULL;
	}
	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tmpdir, name);
	return path[i];
}

TEST(test_every_hook_reads_the_whole_state)
{
	char script[256], *av1[4], *av2[4];
	snprintf(script, sizeof(script), "cat >> %s; echo >> %s", tmp("stdin"), tmp("stdin"));
	struct oci_hook h[2] = { sh_hook(script, av1), sh_hook(script, av2) };
	int fd = state("{\"status\":\"creating\"}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(h, 2, "prestart", fd, NULL, &err) == 0);
	char buf[256];
	read_file(tmp("stdin"), buf, sizeof(buf));
	CHECK_STR(buf, "{\"status\":\"creating\"}\n{\"status\":\"creating\"}");
	/* Sealed: a hook cannot change what the next one reads. */
	CHECK(write(fd, "x", 1) < 0 && errno == EPERM);
	close(fd);
}

TEST(test_no_fd_of_ours_reaches_the_hook)
{
	int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
	CHECK(leak >= 3);
	char script[256], *av[4];
	/* The shell looks at its own fd table with builtins only: no pipeline
	 * or redirection is active while it does (setting one up makes the
	 * shell hold pipe ends or a saved copy of stdout, which an `ls` of
	 * it listed under load). */
	snprintf(script, sizeof(script),
		 "i=3; r=; while [ $i -lt 256 ]; do [ -e /proc/$$/fd/$i ] && r=\"$r $i\"; "
		 "i=$((i+1)); done; echo \"open above 2:$r\" > %s",
		 tmp("fds"));
	struct oci_hook h = sh_hook(script, av);
	int fd = state("{}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(&h, 1, "poststart", fd, NULL, &err) == 0);
	char buf[256];
	read_file(tmp("fds"), buf, sizeof(buf));
	CHECK_STR(buf, "open above 2:");
	close(fd);
	close(leak);
}

TEST(test_failure_names_the_hook_with_stderr_tail)
{
	char *av[4];
	struct oci_hook h[2] = {
		{ .path = "/bin/true" },
		sh_hook("echo out; echo 'it broke' >&2; exit 3", av),
	};
	int fd = state("{}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(h, 2, "createRuntime", fd, NULL, &err) < 0);
	CHECK_STR(err.msg, "spec.hooks.createRuntime[1]: /bin/sh exited with status 3; stderr: it broke");
	/* stdout when stderr says nothing. */
	struct oci_hook o = sh_hook("echo only out; exit 4", av);
	CHECK(hooks_run(&o, 1, "poststop", fd, NULL, &err) < 0);
	CHECK_STR(err.msg, "spec.hooks.poststop[0]: /bin/sh exited with status 4; stdout: only out");
	/* Killed by a signal. */
	struct oci_hook k = sh_hook("kill -TERM $$", av);
	CHECK(hooks_run(&k, 1, "poststart", fd, NULL, &err) < 0);
	CHECK(strstr(err.msg, "spec.hooks.poststart[0]: /bin/sh was killed by signal 15") == err.msg);
	close(fd);
}

TEST(test_long_stderr_keeps_its_tail)
{
	char *av[4];
	struct oci_hook h =
		sh_hook("i=0; while [ $i -lt 300 ]; do printf 'line%03d ' $i >&2; i=$((i+1)); done; "
			"echo END >&2; exit 1", av);
	int fd = state("{}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(&h, 1, "prestart", fd, NULL, &err) < 0);
	size_t n = strlen(err.msg);
	CHECK(n > 4 && strcmp(err.msg + n - 4, " END") == 0);
	CHECK(strstr(err.msg, "line299") != NULL);
	CHECK(strstr(err.msg, "line000") == NULL);
	close(fd);
}

TEST(test_missing_binary)
{
	struct oci_hook h = { .path = "/nonexistent/hook" };
	int fd = state("{}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(&h, 1, "createContainer", fd, NULL, &err) < 0);
	CHECK_STR(err.msg, "spec.hooks.createContainer[0]: executing /nonexistent/hook: No such "
			   "file or directory");
	close(fd);
}

TEST(test_timeout_kills_the_process_group)
{
	char script[256], *av[4];
	snprintf(script, sizeof(script), "sleep 600 & echo $! > %s; wait", tmp("child"));
	struct oci_hook h = sh_hook(script, av);
	h.timeout = 1;
	h.has_timeout = true;
	int fd = state("{}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(&h, 1, "startContainer", fd, NULL, &err) < 0);
	CHECK_STR(err.msg, "spec.hooks.startContainer[0]: /bin/sh did not exit within its timeout "
			   "of 1 s and was killed");
	char buf[32];
	read_file(tmp("child"), buf, sizeof(buf));
	pid_t child = (pid_t)atoi(buf);
	CHECK(child > 0);
	/* Killed with its group (a zombie until its new parent reaps it):
	 * SIGKILL lands asynchronously, so wait for it, bounded. */
	char path[64], st[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", child);
	bool dead = false;
	for (int i = 0; i < 500 && !dead; i++) {
		read_file(path, st, sizeof(st));
		const char *p = strrchr(st, ')');
		dead = !st[0] || (p && p[1] && p[2] == 'Z');
		if (!dead)
			usleep(10000);
	}
	CHECK(dead);
	close(fd);
}

TEST(test_env)
{
	char script[256], *av[4];
	snprintf(script, sizeof(script), "echo \"$HOOK_X|$PATH\" > %s", tmp("env"));
	char *env[] = { "HOOK_X=given", NULL };
	struct oci_hook h = sh_hook(script, av);
	h.env = env;
	h.n_env = 1;
	h.has_env = true;
	int fd = state("{}");
	struct cv_error err = { 0 };
	CHECK(hooks_run(&h, 1, "prestart", fd, NULL, &err) == 0);
	char buf[256];
	read_file(tmp("env"), buf, sizeof(buf));
	CHECK(strncmp(buf, "given|", 6) == 0);
	/* Absent: the default given by the caller. */
	char *def[] = { "HOOK_X=default", "PATH=/bin", NULL };
	h.has_env = false;
	CHECK(hooks_run(&h, 1, "prestart", fd, def, &err) == 0);
	read_file(tmp("env"), buf, sizeof(buf));
	CHECK_STR(buf, "default|/bin");
	close(fd);
}

TEST(test_budget)
{
	struct oci_hook h[2] = { { .timeout = 2, .has_timeout = true },
				 { .timeout = 3, .has_timeout = true } };
	CHECK(hooks_budget_ms(h, 2) == 5000);
	CHECK(hooks_budget_ms(h, 0) == 0);
	h[1].has_timeout = false;
	CHECK(hooks_budget_ms(h, 2) == -1);
}

static void cleanup(void)
{
	if (!tmpdir[0])
		return;
	const char *names[] = { "stdin", "fds", "child", "env" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		unlink(tmp(names[i]));
	rmdir(tmpdir);
}

TEST(test_cleanup)
{
	cleanup();
}

UNIT_MAIN(test_every_hook_reads_the_whole_state, test_no_fd_of_ours_reaches_the_hook,
	  test_failure_names_the_hook_with_stderr_tail, test_long_stderr_keeps_its_tail,
	  test_missing_binary, test_timeout_kills_the_process_group, test_env, test_budget,
	  test_cleanup)

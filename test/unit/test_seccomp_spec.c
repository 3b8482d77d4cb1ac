/* Unit tests for kernel/seccomp_spec.c: a filter built from a spec really
 * denies what it says (loaded in a forked child), and bad fields are named. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/seccomp_spec.h"
#include "test/unit/unit.h"

static char *mkdir_names[] = { "mkdir", "mkdirat", "no_such_syscall_xyz", NULL };
static char *arches[] = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", NULL };
static char *flags[] = { "SECCOMP_FILTER_FLAG_TSYNC", NULL };

static void base(struct oci_seccomp *s, struct oci_seccomp_syscall *sc)
{
	memset(s, 0, sizeof(*s));
	memset(sc, 0, sizeof(*sc));
	sc->names = mkdir_names;
	sc->n_names = 3; /* the unknown name is skipped, not an error */
	sc->action = "SCMP_ACT_ERRNO";
	sc->errno_ret = 38;
	sc->has_errno_ret = true;
	s->default_action = "SCMP_ACT_ALLOW";
	s->architectures = arches;
	s->n_architectures = 2;
	s->flags = flags;
	s->n_flags = 1;
	s->syscalls = sc;
	s->n_syscalls = 1;
}

TEST(test_filter_denies_mkdir)
{
	struct oci_seccomp s;
	struct oci_seccomp_syscall sc;
	base(&s, &sc);
	scmp_filter_ctx ctx;
	struct cv_error err;
	int r = seccomp_spec_build(&s, &ctx, &err);
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		if (seccomp_load(ctx) < 0)
			_exit(10);
		char d[64];
		snprintf(d, sizeof(d), "/tmp/cvisor-seccomp-%d", (int)getpid());
		if (mkdir(d, 0700) == 0) {
			rmdir(d);
			_exit(11);
		}
		if (errno != 38)
			_exit(12);
		if (getpid() <= 0)
			_exit(13);
		_exit(0);
	}
	seccomp_release(ctx);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* An argument condition: only mkdir(..., 0700) is denied (default errno EPERM). */
TEST(test_arg_condition)
{
	struct oci_seccomp s;
	struct oci_seccomp_syscall sc;
	base(&s, &sc);
	static char *only_mkdir[] = { "mkdir", NULL };
	sc.names = only_mkdir;
	sc.n_names = 1;
	sc.has_errno_ret = false;
	struct oci_seccomp_arg arg = { .index = 1, .value = 0700, .op = "SCMP_CMP_EQ" };
	sc.args = &arg;
	sc.n_args = 1;
	scmp_filter_ctx ctx;
	struct cv_error err;
	CHECK(seccomp_spec_build(&s, &ctx, &err) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		if (seccomp_load(ctx) < 0)
			_exit(10);
		char d[64];
		snprintf(d, sizeof(d), "/tmp/cvisor-seccomp-%d", (int)getpid());
		if (mkdir(d, 0700) == 0 || errno != EPERM)
			_exit(11);
		if (mkdir(d, 0755) < 0)
			_exit(12);
		rmdir(d);
		_exit(0);
	}
	seccomp_release(ctx);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void expect_err(struct oci_seccomp *s, const char *want)
{
	scmp_filter_ctx ctx = (scmp_filter_ctx)1;
	struct cv_error err;
	CHECK(seccomp_spec_build(s, &ctx, &err) < 0);
	CHECK(ctx == NULL);
	CHECK_STR(err.msg, want);
}

TEST(test_errors_name_the_field)
{
	struct oci_seccomp s;
	struct oci_seccomp_syscall sc[4];
	base(&s, &sc[0]);
	for (int i = 1; i < 4; i++)
		sc[i] = sc[0];
	s.syscalls = sc;
	s.n_syscalls = 4;
	sc[3].action = "SCMP_ACT_FOO";
	expect_err(&s, "spec.linux.seccomp.syscalls[3].action: unknown action \"SCMP_ACT_FOO\"");
	sc[3].action = "SCMP_ACT_NOTIFY";
	expect_err(&s, "spec.linux.seccomp.syscalls[3].action: SCMP_ACT_NOTIFY in the spec needs a "
		       "listenerPath, which cvisor does not support");
	sc[3].action = "SCMP_ACT_ERRNO";

	struct oci_seccomp_arg arg = { .index = 0, .op = "SCMP_CMP_ALMOST" };
	sc[1].args = &arg;
	sc[1].n_args = 1;
	expect_err(&s, "spec.linux.seccomp.syscalls[1].args[0].op: unknown operator \"SCMP_CMP_ALMOST\"");
	arg.op = "SCMP_CMP_EQ";
	arg.index = 6;
	expect_err(&s, "spec.linux.seccomp.syscalls[1].args[0].index: 6 is not an argument index (0-5)");
	sc[1].n_args = 0;

	static char *bad_arch[] = { "SCMP_ARCH_VAX", NULL };
	s.architectures = bad_arch;
	s.n_architectures = 1;
	expect_err(&s, "spec.linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_VAX\"");
	s.n_architectures = 0;

	static char *bad_flag[] = { "SECCOMP_FILTER_FLAG_NOPE", NULL };
	s.flags = bad_flag;
	expect_err(&s, "spec.linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_NOPE\"");
	s.n_flags = 0;

	s.default_action = "SCMP_ACT_BAR";
	expect_err(&s, "spec.linux.seccomp.defaultAction: unknown action \"SCMP_ACT_BAR\"");
	s.default_action = NULL;
	expect_err(&s, "spec.linux.seccomp.defaultAction: missing");
}

/* A rule equal to the default action is skipped (libseccomp would refuse
 * it); an ERRNO default with defaultErrnoRet denies everything else. */
TEST(test_rule_equal_to_default_and_default_errno)
{
	struct oci_seccomp s;
	struct oci_seccomp_syscall sc[2];
	base(&s, &sc[0]);
	/* The sanitizers' runtime needs a few more in the child. */
	static char *allowed[] = { "exit_group", "exit", "getpid", "write", "sigaltstack", "mmap", "munmap", "rt_sigaction", "rt_sigprocmask", "madvise", NULL };
	sc[0].names = allowed;
	sc[0].n_names = 10;
	sc[0].action = "SCMP_ACT_ALLOW";
	sc[1] = sc[0];
	sc[1].action = "SCMP_ACT_ERRNO";
	sc[1].errno_ret = 7;
	sc[1].has_errno_ret = true;
	sc[1].names = mkdir_names;
	sc[1].n_names = 1;
	s.syscalls = sc;
	s.n_syscalls = 2;
	s.default_action = "SCMP_ACT_ERRNO";
	s.has_default_errno_ret = true;
	s.default_errno_ret = 7; /* equal to sc[1]: skipped */
	scmp_filter_ctx ctx;
	struct cv_error err;
	CHECK(seccomp_spec_build(&s, &ctx, &err) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		if (seccomp_load(ctx) < 0)
			_exit(10);
		if (syscall(SYS_getppid) != -1 || errno != 7) /* denied by the default */
			_exit(11);
		if (getpid() <= 0)
			_exit(12);
		_exit(0);
	}
	seccomp_release(ctx);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "  child exit %d\n", WEXITSTATUS(st));
}

UNIT_MAIN(test_filter_denies_mkdir, test_arg_condition, test_errors_name_the_field,
	  test_rule_equal_to_default_and_default_errno)

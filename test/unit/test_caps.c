/* Unit tests for kernel/caps.c: the name table, spec conversion, and
 * caps_apply in a forked child. */
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/caps.h"
#include "test/unit/unit.h"

TEST(test_names_and_numbers)
{
	int cap = -1;
	CHECK(caps_from_name("CAP_CHOWN", &cap) == 0 && cap == 0);
	CHECK(caps_from_name("CAP_NET_ADMIN", &cap) == 0 && cap == 12);
	CHECK(caps_from_name("CAP_SYS_ADMIN", &cap) == 0 && cap == 21);
	CHECK(caps_from_name("CAP_CHECKPOINT_RESTORE", &cap) == 0 && cap == 40);
	CHECK(caps_from_name("CAP_FOO", &cap) == -1);
	CHECK(caps_from_name("", &cap) == -1);
	CHECK_STR(caps_name(0), "CAP_CHOWN");
	CHECK_STR(caps_name(38), "CAP_PERFMON");
	CHECK(caps_name(41) == NULL);
	CHECK(caps_name(-1) == NULL);
	/* Every name maps back to its own number. */
	for (int i = 0; i <= 40; i++) {
		int c = -1;
		CHECK(caps_name(i) != NULL && caps_from_name(caps_name(i), &c) == 0 && c == i);
	}
}

TEST(test_last_cap_and_all)
{
	int last = caps_last_cap();
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int want = -1;
	if (f) {
		CHECK(fscanf(f, "%d", &want) == 1);
		fclose(f);
	}
	CHECK(last == want);
	uint64_t all = caps_all();
	CHECK(all & ((uint64_t)1 << last));
	CHECK(last >= 63 || !(all >> (last + 1)));
	CHECK(all & 1);
}

TEST(test_from_spec)
{
	char *bounding[] = { "CAP_KILL", "CAP_CHOWN", NULL };
	char *eff[] = { "CAP_KILL", NULL };
	char *amb[] = { "CAP_NET_RAW", NULL };
	struct oci_capabilities c = { 0 };
	c.bounding = bounding;
	c.n_bounding = 2;
	c.effective = eff;
	c.n_effective = 1;
	c.permitted = eff;
	c.n_permitted = 1;
	c.ambient = amb;
	c.n_ambient = 1;
	struct cap_sets s;
	struct cv_error err;
	CHECK(caps_from_spec(&c, &s, &err) == 0);
	CHECK(s.bounding == ((1ull << 5) | 1ull));
	CHECK(s.effective == (1ull << 5) && s.permitted == (1ull << 5));
	CHECK(s.inheritable == 0);
	CHECK(s.ambient == (1ull << 13));

	char *bad[] = { "CAP_KILL", "CAP_FOO", NULL };
	c.inheritable = bad;
	c.n_inheritable = 2;
	CHECK(caps_from_spec(&c, &s, &err) < 0);
	CHECK_STR(err.msg, "spec.process.capabilities.inheritable: unknown capability \"CAP_FOO\"");
}

/* In a child: keep only CAP_KILL and CAP_SETPCAP in every set; check the
 * kernel's view, then that chown (CAP_CHOWN) is gone from the bounding set. */
TEST(test_apply_in_child)
{
	if (geteuid() != 0)
		SKIP("needs root (caps_apply keeps capabilities it must hold)");
	pid_t pid = fork();
	if (pid == 0) {
		struct cap_sets s = { 0 };
		uint64_t keep = (1ull << 5) | (1ull << 8);
		s.bounding = keep;
		s.effective = s.permitted = s.inheritable = keep;
		s.ambient = 1ull << 5;
		struct cv_error err;
		if (caps_apply(&s, &err) < 0) {
			fprintf(stderr, "  child: %s\n", err.msg);
			_exit(10);
		}
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		if (syscall(SYS_capget, &h, d) < 0)
			_exit(11);
		if (d[0].effective != keep || d[0].permitted != keep || d[1].effective != 0)
			_exit(12);
		if (prctl(PR_CAPBSET_READ, 0, 0, 0, 0) != 0 || prctl(PR_CAPBSET_READ, 5, 0, 0, 0) != 1)
			_exit(13);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 5, 0, 0) != 1 ||
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 8, 0, 0) != 0)
			_exit(14);
		/* Raising a cap that is not permitted fails with a clear message. */
		s.effective = s.permitted = (1ull << 5) | (1ull << 21);
		if (caps_apply(&s, &err) == 0 || strcmp(err.msg, "setting capabilities: Operation not permitted") != 0)
			_exit(15);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "  child exit %d\n", WEXITSTATUS(st));
}

UNIT_MAIN(test_names_and_numbers, test_last_cap_and_all, test_from_spec, test_apply_in_child)

/* Unit tests for kernel/cgroup_devices.c: the rule list (spec rules, then
 * runc's defaults), the v1 lines, the BPF instructions rule by rule, and,
 * as root on a host with cgroup2, the program loaded, attached to a fresh
 * v2 node and enforced on a child in it (then replaced by an update). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/cgroup.h"
#include "kernel/cgroup_devices.h"
#include "test/unit/unit.h"

static bool insn_is(const struct bpf_insn *i, uint8_t code, uint8_t dst, uint8_t src, int16_t off,
		    int32_t imm)
{
	bool ok = i->code == code && i->dst_reg == dst && i->src_reg == src && i->off == off &&
		  i->imm == imm;
	if (!ok)
		fprintf(stderr, "  insn {code %#x dst %u src %u off %d imm %d}, want {%#x %u %u %d %d}\n",
			i->code, i->dst_reg, i->src_reg, i->off, i->imm, code, dst, src, off, imm);
	return ok;
}

#define LDXW (BPF_LDX | BPF_W | BPF_MEM)
#define JNE32K (BPF_JMP32 | BPF_JNE | BPF_K)
#define MOV64K (BPF_ALU64 | BPF_MOV | BPF_K)
#define EXIT (BPF_JMP | BPF_EXIT)

static void check_prologue(const struct bpf_insn *p)
{
	CHECK(insn_is(&p[0], LDXW, 2, 1, 0, 0));
	CHECK(insn_is(&p[1], BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xFFFF));
	CHECK(insn_is(&p[2], LDXW, 3, 1, 0, 0));
	CHECK(insn_is(&p[3], BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16));
	CHECK(insn_is(&p[4], LDXW, 4, 1, 4, 0));
	CHECK(insn_is(&p[5], LDXW, 5, 1, 8, 0));
}

TEST(test_one_allow_rule_encodes)
{
	const struct cgdev_rule r = { true, 'c', 1, 3, CGDEV_ACC_R | CGDEV_ACC_W };
	struct bpf_insn p[CGDEV_BPF_MAX_INSNS(1)];
	size_t n = cgdev_bpf_build(&r, 1, p);
	CHECK(n == 16);
	check_prologue(p);
	/* Each failed test jumps to the first instruction after the block. */
	CHECK(insn_is(&p[6], JNE32K, 2, 0, 7, BPF_DEVCG_DEV_CHAR));
	CHECK(insn_is(&p[7], BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0));
	CHECK(insn_is(&p[8], BPF_ALU | BPF_AND | BPF_K, 1, 0, 0,
		      BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE));
	CHECK(insn_is(&p[9], BPF_JMP32 | BPF_JNE | BPF_X, 1, 3, 4, 0));
	CHECK(insn_is(&p[10], JNE32K, 4, 0, 3, 1));
	CHECK(insn_is(&p[11], JNE32K, 5, 0, 2, 3));
	CHECK(insn_is(&p[12], MOV64K, 0, 0, 0, 1));
	CHECK(insn_is(&p[13], EXIT, 0, 0, 0, 0));
	/* Default deny. */
	CHECK(insn_is(&p[14], MOV64K, 0, 0, 0, 0));
	CHECK(insn_is(&p[15], EXIT, 0, 0, 0, 0));
}

TEST(test_later_rule_comes_first)
{
	const struct cgdev_rule r[] = {
		{ true, 'a', -1, -1, CGDEV_ACC_ALL },   /* allow everything */
		{ false, 'b', 8, -1, CGDEV_ACC_W },     /* then deny writes to sd* */
	};
	struct bpf_insn p[CGDEV_BPF_MAX_INSNS(2)];
	size_t n = cgdev_bpf_build(r, 2, p);
	/* The first rule matches everything: no default deny after it. */
	CHECK(n == 6 + 7 + 2);
	check_prologue(p);
	/* The deny (the later rule) is tested first: type, access, major. */
	CHECK(insn_is(&p[6], JNE32K, 2, 0, 6, BPF_DEVCG_DEV_BLOCK));
	CHECK(insn_is(&p[7], BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0));
	CHECK(insn_is(&p[8], BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, BPF_DEVCG_ACC_WRITE));
	/* A deny matches when any requested bit is denied. */
	CHECK(insn_is(&p[9], BPF_JMP32 | BPF_JEQ | BPF_K, 1, 0, 3, 0));
	CHECK(insn_is(&p[10], JNE32K, 4, 0, 2, 8));
	CHECK(insn_is(&p[11], MOV64K, 0, 0, 0, 0));
	CHECK(insn_is(&p[12], EXIT, 0, 0, 0, 0));
	/* "a *:* rwm" has no test at all. */
	CHECK(insn_is(&p[13], MOV64K, 0, 0, 0, 1));
	CHECK(insn_is(&p[14], EXIT, 0, 0, 0, 0));
}

TEST(test_rules_append_runc_defaults)
{
	struct oci_device_cgroup spec[] = {
		{ .allow = false, .access = "rwm" },
		{ .allow = true, .type = "c", .major = 10, .has_major = true, .minor = 229,
		  .has_minor = true, .access = "rw" },
	};
	struct cgdev_rule out[2 + CGDEV_N_DEFAULT];
	size_t n = cgdev_rules(spec, 2, out);
	CHECK(n == 2 + CGDEV_N_DEFAULT);
	CHECK(!out[0].allow && out[0].type == 'a' && out[0].major == -1 && out[0].minor == -1 &&
	      out[0].access == CGDEV_ACC_ALL);
	CHECK(out[1].allow && out[1].type == 'c' && out[1].major == 10 && out[1].minor == 229 &&
	      out[1].access == (CGDEV_ACC_R | CGDEV_ACC_W));
	char line[64];
	const char *want[] = { "a",           "c 10:229 rw", "c *:* m",  "b *:* m",
			       "c 1:3 rwm",   "c 1:5 rwm",   "c 1:7 rwm", "c 1:8 rwm",
			       "c 1:9 rwm",   "c 5:0 rwm",   "c 5:2 rwm", "c 136:* rwm" };
	for (size_t i = 0; i < n; i++) {
		CHECK(cgdev_v1_line(&out[i], line, sizeof(line)) > 0);
		CHECK_STR(line, want[i]);
	}
	/* The defaults are allows: nothing the spec denies outlives them. */
	for (size_t i = 2; i < n; i++)
		CHECK(out[i].allow);
}

TEST(test_v1_line_partial_a)
{
	const struct cgdev_rule r = { true, 'a', -1, -1, CGDEV_ACC_R };
	char line[64];
	CHECK(cgdev_v1_line(&r, line, sizeof(line)) > 0);
	/* v1 has no partial "a": the char half (the block half is a second line). */
	CHECK_STR(line, "c *:* r");
}

TEST(test_v1_refuses_a_hole_in_a_wildcard)
{
	struct cv_error err = { 0 };
	const struct cgdev_rule hole[] = {
		{ true, 'c', -1, -1, CGDEV_ACC_ALL },   /* allow every char device */
		{ false, 'c', 10, 229, CGDEV_ACC_ALL }, /* v1 would ignore this */
	};
	CHECK(cgdev_v1_check(hole, 2, &err) < 0);
	CHECK(strstr(err.msg, "denying \"c 10:229 rwm\" would cut a hole in the earlier allowed "
			      "\"c *:* rwm\"") != NULL);
	/* Removing exactly what was added, or after "a", is fine. */
	const struct cgdev_rule ok[] = {
		{ true, 'c', 10, 229, CGDEV_ACC_ALL }, { false, 'c', 10, 229, CGDEV_ACC_W },
		{ true, 'a', -1, -1, CGDEV_ACC_ALL },  { false, 'c', 10, 229, CGDEV_ACC_ALL },
		{ true, 'c', 1, 3, CGDEV_ACC_ALL },    { true, 'c', -1, -1, CGDEV_ACC_M },
	};
	CHECK(cgdev_v1_check(ok, ARRAY_SIZE(ok), &err) == 0);
	/* A deny wider than an allowed exception would leave it allowed. */
	const struct cgdev_rule wide[] = {
		{ true, 'c', 10, 229, CGDEV_ACC_ALL },
		{ false, 'c', -1, -1, CGDEV_ACC_ALL },
	};
	CHECK(cgdev_v1_check(wide, 2, &err) < 0);
	CHECK(strstr(err.msg, "denying \"c *:* rwm\"") != NULL);
	/* Under default allow, an allow cannot cut into a wildcard deny. */
	const struct cgdev_rule hole2[] = {
		{ true, 'a', -1, -1, CGDEV_ACC_ALL },
		{ false, 'b', 8, -1, CGDEV_ACC_W },
		{ true, 'b', 8, 1, CGDEV_ACC_W },
	};
	CHECK(cgdev_v1_check(hole2, 3, &err) < 0);
}

TEST(test_default_program_loads)
{
	if (geteuid() != 0)
		SKIP("loading a BPF program needs root");
	struct cgdev_rule r[CGDEV_N_DEFAULT + 1];
	const struct oci_device_cgroup deny_all = { .allow = false };
	size_t n = cgdev_rules(&deny_all, 1, r);
	struct bpf_insn p[CGDEV_BPF_MAX_INSNS(CGDEV_N_DEFAULT + 1)];
	size_t k = cgdev_bpf_build(r, n, p);
	struct cv_error err = { 0 };
	int fd = cgdev_bpf_load(p, k, &err);
	if (fd < 0 && err.code == ENOSYS)
		SKIP("no bpf(2) here: %s", err.msg);
	if (fd < 0)
		fprintf(stderr, "  %s\n", err.msg);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
}

/* In a child: joins dir, then opens each device; the exit status has bit i
 * set when path i opened. */
static int probe(const char *dir, const char *const *paths, int n)
{
	pid_t pid = fork();
	if (pid == 0) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(200);
		close(fd);
		int bits = 0;
		for (int i = 0; i < n; i++) {
			int d = open(paths[i], O_RDONLY | O_CLOEXEC);
			if (d >= 0) {
				bits |= 1 << i;
				close(d);
			} else if (errno != EPERM) {
				_exit(201);
			}
		}
		_exit(bits);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static uint32_t attached(int cgfd)
{
	uint32_t ids[8];
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.query.target_fd = (uint32_t)cgfd;
	a.query.attach_type = BPF_CGROUP_DEVICE;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = 8;
	if (syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof(a)) < 0)
		return 999;
	return a.query.prog_cnt;
}

static int attach_rules(int cgfd, const struct oci_device_cgroup *spec, size_t n)
{
	struct cv_error err = { 0 };
	/* No v1 dir: the BPF path, whatever this host mounts. */
	int r = cgdev_apply(NULL, cgfd, spec, n, &err);
	if (r < 0)
		fprintf(stderr, "  %s\n", err.msg);
	return r;
}

TEST(test_program_enforced_and_replaced)
{
	if (geteuid() != 0)
		SKIP("attaching a device program needs root");
	const char *v2 = cgroup_v2_root();
	if (!v2)
		SKIP("no cgroup2 hierarchy mounted on this host");
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/cvisor-unit-devices-%d", v2, (int)getpid());
	if (mkdir(dir, 0755) < 0)
		SKIP("cannot make a v2 node %s: %s", dir, strerror(errno));
	int cgfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	CHECK(cgfd >= 0);
	/* /dev/full (1:7) is in runc's default list; /dev/zero and /dev/null
	 * are denied unless a rule allows them. "a" deny then allow null. */
	const struct oci_device_cgroup only_null[] = {
		{ .allow = false },
		{ .allow = false, .type = "c", .major = 1, .has_major = true, .minor = 5,
		  .has_minor = true }, /* zero: denied, then allowed again by the defaults */
	};
	const char *paths[] = { "/dev/full", "/dev/zero", "/dev/hwrng", "/dev/fuse" };
	/* /dev/hwrng (10:183) and /dev/fuse (10:229) must be refused. */
	if (cgfd >= 0 && attach_rules(cgfd, only_null, 2) == 0) {
		CHECK(attached(cgfd) == 1);
		int bits = probe(dir, paths, 4);
		CHECK(bits >= 0 && bits < 200);
		CHECK(bits == 0x3); /* full and zero (defaults win, as in runc); not hwrng, fuse */
		/* An update: fuse allowed. The old program is detached. */
		const struct oci_device_cgroup with_fuse[] = {
			{ .allow = false },
			{ .allow = true, .type = "c", .major = 10, .has_major = true, .minor = 229,
			  .has_minor = true, .access = "r" },
		};
		CHECK(attach_rules(cgfd, with_fuse, 2) == 0);
		CHECK(attached(cgfd) == 1);
		bits = probe(dir, paths, 4);
		if (access("/dev/fuse", F_OK) == 0)
			CHECK(bits == 0xB);
	} else {
		CHECK(!"attaching the device program");
	}
	if (cgfd >= 0)
		close(cgfd);
	CHECK(rmdir(dir) == 0);
}

UNIT_MAIN(test_one_allow_rule_encodes, test_later_rule_comes_first, test_rules_append_runc_defaults,
	  test_v1_line_partial_a, test_v1_refuses_a_hole_in_a_wildcard, test_default_program_loads, test_program_enforced_and_replaced)

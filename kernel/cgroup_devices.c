/* linux.resources.devices on the v1 devices controller or as a cgroup
 * device BPF program (kernel/cgroup_devices.h). The program is written by
 * hand, instruction by instruction, through the bpf(2) syscall: no libbpf,
 * as runc's devicefilter and crun's ebpf.c do it. */
#include "kernel/cgroup_devices.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

/* runc's AllowedDevices: mknod of any char or block node (so an image can
 * still make nodes it cannot open), the standard nodes and the ptys. */
static const struct cgdev_rule default_rules[CGDEV_N_DEFAULT] = {
	{ true, 'c', -1, -1, CGDEV_ACC_M },    { true, 'b', -1, -1, CGDEV_ACC_M },
	{ true, 'c', 1, 3, CGDEV_ACC_ALL },    /* null */
	{ true, 'c', 1, 5, CGDEV_ACC_ALL },    /* zero */
	{ true, 'c', 1, 7, CGDEV_ACC_ALL },    /* full */
	{ true, 'c', 1, 8, CGDEV_ACC_ALL },    /* random */
	{ true, 'c', 1, 9, CGDEV_ACC_ALL },    /* urandom */
	{ true, 'c', 5, 0, CGDEV_ACC_ALL },    /* tty */
	{ true, 'c', 5, 2, CGDEV_ACC_ALL },    /* ptmx */
	{ true, 'c', 136, -1, CGDEV_ACC_ALL }, /* /dev/pts/N */
};

static unsigned parse_access(const char *a)
{
	unsigned acc = 0;
	for (; a && *a; a++)
		acc |= *a == 'r' ? CGDEV_ACC_R : *a == 'w' ? CGDEV_ACC_W : *a == 'm' ? CGDEV_ACC_M : 0;
	return acc ? acc : CGDEV_ACC_ALL;
}

size_t cgdev_rules(const struct oci_device_cgroup *spec, size_t n, struct cgdev_rule *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct oci_device_cgroup *s = &spec[i];
		out[k++] = (struct cgdev_rule){
			.allow = s->allow,
			.type = s->type && *s->type ? s->type[0] : 'a',
			.major = s->has_major ? s->major : -1,
			.minor = s->has_minor ? s->minor : -1,
			.access = parse_access(s->access),
		};
	}
	for (size_t i = 0; i < CGDEV_N_DEFAULT; i++)
		out[k++] = default_rules[i];
	return k;
}

/* ---- v1 ---- */

static void num(char *b, size_t n, int64_t v)
{
	if (v < 0)
		snprintf(b, n, "*");
	else
		snprintf(b, n, "%" PRId64, v);
}

static int line_for(const struct cgdev_rule *r, char type, char *buf, size_t n)
{
	char maj[24], min[24], acc[4];
	size_t a = 0;
	num(maj, sizeof(maj), r->major);
	num(min, sizeof(min), r->minor);
	if (r->access & CGDEV_ACC_R)
		acc[a++] = 'r';
	if (r->access & CGDEV_ACC_W)
		acc[a++] = 'w';
	if (r->access & CGDEV_ACC_M)
		acc[a++] = 'm';
	acc[a] = '\0';
	int w = snprintf(buf, n, "%c %s:%s %s", type, maj, min, acc);
	return w < 0 || (size_t)w >= n ? -1 : w;
}

int cgdev_v1_line(const struct cgdev_rule *r, char *buf, size_t n)
{
	if (r->type == 'a' && r->major < 0 && r->minor < 0 && r->access == CGDEV_ACC_ALL) {
		int w = snprintf(buf, n, "a");
		return w < 0 || (size_t)w >= n ? -1 : w;
	}
	return line_for(r, r->type == 'a' ? 'c' : r->type, buf, n);
}

static int v1_write(const char *dir, const char *file, const char *line, size_t i,
		    struct cv_error *err)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "linux.resources.devices: opening %s", p);
	ssize_t w = write(fd, line, strlen(line));
	int e = errno;
	close(fd);
	if (w < 0) {
		if (i == (size_t)-1)
			return cv_errf(err, e, "linux.resources.devices: writing \"%s\" to %s", line, p);
		return cv_errf(err, e, "linux.resources.devices (rule %zu): writing \"%s\" to %s", i,
			       line, p);
	}
	return 0;
}

/* v1 keeps a default (allow or deny) and a list of exceptions; a rule of
 * the other kind adds one, a rule of the same kind only removes an exception
 * naming exactly the same devices, and the kernel silently ignores the
 * rest: "deny c 10:229" after "allow c *:*" under default deny does nothing.
 * Refused, as runc's v1 emulator does ("cannot punch hole in existing
 * wildcard rule"); and so is a deny wider than an allowed exception it
 * overlaps (the exception would stay). An allow wider than a denied
 * exception leaves that exception, which only denies more: a warning. */
static bool num_overlap(int64_t a, int64_t b)
{
	return a < 0 || b < 0 || a == b;
}

static bool overlaps(const struct cgdev_rule *a, const struct cgdev_rule *b)
{
	return (a->type == 'a' || b->type == 'a' || a->type == b->type) &&
	       num_overlap(a->major, b->major) && num_overlap(a->minor, b->minor) &&
	       (a->access & b->access);
}

/* Every device of b is one of a (a is b or wider). */
static bool covers(const struct cgdev_rule *a, const struct cgdev_rule *b)
{
	return (a->type == 'a' || a->type == b->type) && (a->major < 0 || a->major == b->major) &&
	       (a->minor < 0 || a->minor == b->minor);
}

static bool is_all(const struct cgdev_rule *r)
{
	return r->type == 'a' && r->major < 0 && r->minor < 0 && r->access == CGDEV_ACC_ALL;
}

int cgdev_v1_check(const struct cgdev_rule *rules, size_t n, struct cv_error *err)
{
	struct cgdev_rule *ex = malloc((n ? n : 1) * 2 * sizeof(*ex));
	if (!ex)
		return cv_errf(err, ENOMEM, "linux.resources.devices");
	size_t nex = 0;
	bool dflt_allow = false; /* after "deny a" */
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (is_all(&rules[i])) {
			dflt_allow = rules[i].allow;
			nex = 0;
			continue;
		}
		/* A partial "a" is written as a c line and a b line. */
		struct cgdev_rule half[2] = { rules[i], rules[i] };
		size_t nh = 1;
		if (rules[i].type == 'a') {
			half[0].type = 'c';
			half[1].type = 'b';
			nh = 2;
		}
		for (size_t h = 0; h < nh && r == 0; h++) {
			const struct cgdev_rule *q = &half[h];
			if (q->allow != dflt_allow) {
				ex[nex++] = *q;
				continue;
			}
			for (size_t e = 0; e < nex; e++) {
				if (!overlaps(&ex[e], q))
					continue;
				if (ex[e].type == q->type && ex[e].major == q->major &&
				    ex[e].minor == q->minor) {
					ex[e].access &= ~q->access;
					continue;
				}
				char a[80], b[80];
				cgdev_v1_line(q, a, sizeof(a));
				cgdev_v1_line(&ex[e], b, sizeof(b));
				if (!covers(&ex[e], q) && q->allow) {
					LOG(LL_WARN, "linux.resources.devices: allowing \"%s\" leaves the "
						     "earlier denied \"%s\" in the v1 devices cgroup", a, b);
					continue;
				}
				r = cv_errf(err, EINVAL,
					    "linux.resources.devices: %s \"%s\" would cut a hole in the "
					    "earlier %s \"%s\", which the v1 devices cgroup cannot do",
					    q->allow ? "allowing" : "denying", a,
					    ex[e].allow ? "allowed" : "denied", b);
				break;
			}
		}
	}
	free(ex);
	return r;
}

int cgdev_v1_apply(const char *dir, const struct cgdev_rule *rules, size_t n, struct cv_error *err)
{
	/* Refused before anything is written. */
	if (cgdev_v1_check(rules, n, err) < 0)
		return -1;
	/* Deny all first: a fresh node inherits its parent's (allow-all) list. */
	if (v1_write(dir, "devices.deny", "a", (size_t)-1, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct cgdev_rule *r = &rules[i];
		const char *file = r->allow ? "devices.allow" : "devices.deny";
		char line[80];
		if (cgdev_v1_line(r, line, sizeof(line)) < 0)
			return cv_errf(err, E2BIG, "linux.resources.devices (rule %zu): too long", i);
		if (v1_write(dir, file, line, i, err) < 0)
			return -1;
		/* v1 cannot say "a" with partial access: the block half of the
		 * rule goes on a second line. */
		if (r->type == 'a' && strcmp(line, "a") != 0) {
			if (line_for(r, 'b', line, sizeof(line)) < 0 || v1_write(dir, file, line, i, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- BPF ---- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

/* The context: struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
 * access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*. */
static size_t prologue(struct bpf_insn *p)
{
	size_t k = 0;
	p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
	p[k++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xFFFF);
	p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0);
	p[k++] = INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
	p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0);
	p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0);
	return k;
}

static int32_t bpf_access(unsigned a)
{
	return (int32_t)(((a & CGDEV_ACC_M) ? BPF_DEVCG_ACC_MKNOD : 0) |
			 ((a & CGDEV_ACC_R) ? BPF_DEVCG_ACC_READ : 0) |
			 ((a & CGDEV_ACC_W) ? BPF_DEVCG_ACC_WRITE : 0));
}

/* One rule's block: every test jumps past the block when it does not hold
 * (the offsets are patched once the block's length is known). */
static size_t block(const struct cgdev_rule *r, struct bpf_insn *p)
{
	size_t k = 0, jumps[4], nj = 0;
	if (r->type != 'a') {
		jumps[nj++] = k;
		p[k++] = INSN(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_2, 0, 0,
			      r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
	}
	if (r->access != CGDEV_ACC_ALL) {
		/* R1 = requested & rule: an allow must cover all of the request
		 * (R1 == R3), a deny only some of it (R1 != 0). R1 (the context)
		 * is no longer needed. */
		p[k++] = INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
		p[k++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, bpf_access(r->access));
		jumps[nj++] = k;
		p[k++] = r->allow ? INSN(BPF_JMP32 | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0)
				  : INSN(BPF_JMP32 | BPF_JEQ | BPF_K, BPF_REG_1, 0, 0, 0);
	}
	if (r->major >= 0) {
		jumps[nj++] = k;
		p[k++] = INSN(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)(uint32_t)r->major);
	}
	if (r->minor >= 0) {
		jumps[nj++] = k;
		p[k++] = INSN(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int32_t)(uint32_t)r->minor);
	}
	p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
	p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	for (size_t j = 0; j < nj; j++)
		p[jumps[j]].off = (int16_t)(k - jumps[j] - 1);
	return k;
}

size_t cgdev_bpf_build(const struct cgdev_rule *rules, size_t n, struct bpf_insn *out)
{
	size_t k = prologue(out);
	for (size_t i = n; i-- > 0;) {
		const struct cgdev_rule *r = &rules[i];
		k += block(r, out + k);
		/* A rule for every device and access ends the program: what
		 * would follow is unreachable, which the verifier refuses. */
		if (r->type == 'a' && r->major < 0 && r->minor < 0 && r->access == CGDEV_ACC_ALL)
			return k;
	}
	out[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	out[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return k;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int cgdev_bpf_load(const struct bpf_insn *insns, size_t n, struct cv_error *err)
{
	static char log[4096];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)n;
	attr.license = (uint64_t)(uintptr_t) "Apache";
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	log[0] = '\0';
	int fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0 && errno == ENOSPC) {
		/* The log did not fit: load again without it for the real error. */
		attr.log_buf = 0;
		attr.log_size = 0;
		attr.log_level = 0;
		fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
	}
	if (fd < 0)
		return cv_errf(err, errno, "linux.resources.devices: loading the device BPF program "
					   "(%zu instructions)%s%.300s",
			       n, log[0] ? ": " : "", log);
	return fd;
}

/* The ids of the device programs attached to this very node. */
static int query(int cgroup_fd, uint32_t *ids, uint32_t *n, struct cv_error *err)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)cgroup_fd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = *n;
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
		return cv_errf(err, errno, "linux.resources.devices: listing the cgroup's device programs");
	*n = attr.query.prog_cnt;
	return 0;
}

int cgdev_bpf_attach(int cgroup_fd, int prog_fd, struct cv_error *err)
{
	uint32_t old[64], n_old = ARRAY_SIZE(old);
	if (query(cgroup_fd, old, &n_old, err) < 0)
		return -1;
	if (n_old > ARRAY_SIZE(old))
		return cv_errf(err, E2BIG, "linux.resources.devices: %u device programs already on the "
					   "cgroup", n_old);
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		return cv_errf(err, errno, "linux.resources.devices: attaching the device BPF program");
	/* With several programs on a node all must allow: the old rules would
	 * still apply. The new one is in place first, so there is no window
	 * where the node has none. */
	for (uint32_t i = 0; i < n_old; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = old[i];
		int fd = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* detached meanwhile */
			return cv_errf(err, errno, "linux.resources.devices: opening the old device "
						   "program %u", old[i]);
		}
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)cgroup_fd;
		attr.attach_bpf_fd = (uint32_t)fd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		long r = sys_bpf(BPF_PROG_DETACH, &attr);
		int e = errno;
		close(fd);
		if (r < 0 && e != ENOENT)
			return cv_errf(err, e, "linux.resources.devices: detaching the old device "
					       "program %u", old[i]);
	}
	return 0;
}

static int bpf_apply(int v2_fd, const struct cgdev_rule *rules, size_t n, struct cv_error *err)
{
	struct bpf_insn *insns = malloc(CGDEV_BPF_MAX_INSNS(n) * sizeof(*insns));
	if (!insns)
		return cv_errf(err, ENOMEM, "linux.resources.devices: building the device program");
	size_t k = cgdev_bpf_build(rules, n, insns);
	int prog = cgdev_bpf_load(insns, k, err);
	free(insns);
	if (prog < 0)
		return -1;
	int r = cgdev_bpf_attach(v2_fd, prog, err);
	close(prog); /* the attachment keeps the program alive */
	return r;
}

int cgdev_apply(const char *v1_dir, int v2_fd, const struct oci_device_cgroup *spec, size_t n,
		struct cv_error *err)
{
	/* A BPF program has at most 4096 instructions without extra privileges:
	 * 1024 rules stay well inside it at 8 instructions per rule. */
	if (n > CGDEV_MAX_RULES)
		return cv_errf(err, E2BIG, "linux.resources.devices: %zu rules (at most %d)", n,
			       CGDEV_MAX_RULES);
	if (!v1_dir && v2_fd < 0)
		return cv_errf(err, 0, "linux.resources.devices: this host has neither a v1 devices "
				       "cgroup nor a cgroup2 node to attach a device program to");
	struct cgdev_rule *rules = malloc((n + CGDEV_N_DEFAULT) * sizeof(*rules));
	if (!rules)
		return cv_errf(err, ENOMEM, "linux.resources.devices");
	size_t k = cgdev_rules(spec, n, rules);
	int r = v1_dir ? cgdev_v1_apply(v1_dir, rules, k, err) : bpf_apply(v2_fd, rules, k, err);
	free(rules);
	return r;
}

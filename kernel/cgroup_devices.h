#pragma once
/* linux.resources.devices enforced on a container's cgroup: through the v1
 * devices controller where the host mounts it, otherwise through a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's v2 node
 * (as runc and crun do). Both start from "deny everything", take the spec's
 * rules in order and then runc's default allow list (AllowedDevices), the
 * later rule winning: the default list therefore always applies, as in runc.
 *
 * A BPF program's lifetime: once attached it belongs to the cgroup, not to
 * the fd it was loaded through. The fd is closed right after the attach; the
 * program stays attached until it is replaced (cgdev_bpf_apply detaches the
 * programs it finds on the node after attaching the new one) or the cgroup
 * is removed, which frees it. */
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/spec.h"

#define CGDEV_ACC_R 1u
#define CGDEV_ACC_W 2u
#define CGDEV_ACC_M 4u
#define CGDEV_ACC_ALL (CGDEV_ACC_R | CGDEV_ACC_W | CGDEV_ACC_M)

/* One rule, normalised: type 'a', 'c' or 'b'; major/minor -1 for any. */
struct cgdev_rule {
	bool allow;
	char type;
	int64_t major, minor;
	unsigned access; /* CGDEV_ACC_* bits, never 0 */
};

/* How many entries runc's default allow list adds. */
#define CGDEV_N_DEFAULT 10
/* The rules a container gets: spec rules (validated by
 * oci_device_rules_validate) in order, then the default allow list. out must
 * hold n + CGDEV_N_DEFAULT entries; returns how many were written. */
size_t cgdev_rules(const struct oci_device_cgroup *spec, size_t n, struct cgdev_rule *out);

/* The v1 form of one rule ("c 1:3 rwm"; a type-'a' rule with full access
 * and no numbers is "a"). Returns the length or -1 if n is too small. */
int cgdev_v1_line(const struct cgdev_rule *r, char *buf, size_t n);
/* v1 can only add an exception to its default or remove one naming the
 * very same devices: refuses a list where a later rule would cut into an
 * earlier wildcard exception (the kernel would silently ignore it). */
int cgdev_v1_check(const struct cgdev_rule *rules, size_t n, struct cv_error *err);
/* v1: cgdev_v1_check, then "a" to devices.deny of dir, then each rule to
 * devices.allow or devices.deny, in order. */
int cgdev_v1_apply(const char *dir, const struct cgdev_rule *rules, size_t n, struct cv_error *err);

/* Most rules linux.resources.devices may have. */
#define CGDEV_MAX_RULES 1024
/* Upper bound of instructions for n rules (prologue, 8 per rule, epilogue). */
#define CGDEV_BPF_MAX_INSNS(n) (6 + 8 * (n) + 2)
/* Builds the device program: a prologue splitting the context into type
 * (R2), access (R3), major (R4) and minor (R5), one block per rule from the
 * last to the first (so the first block that matches is the latest rule:
 * an allow needs every requested access bit in its access, a deny matches
 * any of them), each returning 1 or 0, and a final "return 0" (deny). A
 * rule matching everything ("a *:* rwm") ends the program there.
 * Returns the instruction count; out holds CGDEV_BPF_MAX_INSNS(n). */
size_t cgdev_bpf_build(const struct cgdev_rule *rules, size_t n, struct bpf_insn *out);
/* Loads instructions as a BPF_PROG_TYPE_CGROUP_DEVICE program (the
 * verifier's log goes into the error). Returns the program fd. */
int cgdev_bpf_load(const struct bpf_insn *insns, size_t n, struct cv_error *err);
/* Attaches prog_fd to the v2 cgroup directory fd with BPF_F_ALLOW_MULTI,
 * then detaches the device programs that were attached to that node before
 * (an update replaces the rules instead of adding to them). */
int cgdev_bpf_attach(int cgroup_fd, int prog_fd, struct cv_error *err);

/* The whole job for a container's cgroup: v1_dir (the node in the v1
 * devices hierarchy) when the host has it, else v2_fd (the node's directory
 * fd) for a BPF program. Errors name linux.resources.devices. */
int cgdev_apply(const char *v1_dir, int v2_fd, const struct oci_device_cgroup *spec, size_t n,
		struct cv_error *err);

/* The spec's linux.seccomp profile compiled with libseccomp
 * (kernel/seccomp_spec.h). Tables map the OCI names to libseccomp values;
 * errors name the field they come from. */
#include "kernel/seccomp_spec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"


#define SC "spec.linux.seccomp"

static const struct {
	const char *name;
	uint32_t arch;
} arches[] = {
	{ "SCMP_ARCH_X86", SCMP_ARCH_X86 },
	{ "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 },
	{ "SCMP_ARCH_X32", SCMP_ARCH_X32 },
	{ "SCMP_ARCH_ARM", SCMP_ARCH_ARM },
	{ "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
	{ "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS },
	{ "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64 },
	{ "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32 },
	{ "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL },
	{ "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64 },
	{ "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32 },
	{ "SCMP_ARCH_PPC", SCMP_ARCH_PPC },
	{ "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64 },
	{ "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE },
	{ "SCMP_ARCH_S390", SCMP_ARCH_S390 },
	{ "SCMP_ARCH_S390X", SCMP_ARCH_S390X },
	{ "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC },
	{ "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64 },
	{ "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64 },
};

static const struct {
	const char *name;
	enum scmp_compare op;
} ops[] = {
	{ "SCMP_CMP_NE", SCMP_CMP_NE },	{ "SCMP_CMP_LT", SCMP_CMP_LT },
	{ "SCMP_CMP_LE", SCMP_CMP_LE },	{ "SCMP_CMP_EQ", SCMP_CMP_EQ },
	{ "SCMP_CMP_GE", SCMP_CMP_GE },	{ "SCMP_CMP_GT", SCMP_CMP_GT },
	{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

enum action_kind { ACT_KILL_THREAD, ACT_KILL_PROCESS, ACT_TRAP, ACT_ERRNO, ACT_TRACE, ACT_ALLOW, ACT_LOG };

/* SCMP_ACT_NOTIFY is not here: it needs a listenerPath to hand the
 * notification fd to, which cvisor does not have. */
static const struct {
	const char *name;
	enum action_kind kind;
} actions[] = {
	{ "SCMP_ACT_ALLOW", ACT_ALLOW }, { "SCMP_ACT_ERRNO", ACT_ERRNO },
	{ "SCMP_ACT_KILL", ACT_KILL_THREAD }, { "SCMP_ACT_KILL_PROCESS", ACT_KILL_PROCESS },
	{ "SCMP_ACT_KILL_THREAD", ACT_KILL_THREAD }, { "SCMP_ACT_LOG", ACT_LOG },
	{ "SCMP_ACT_TRACE", ACT_TRACE }, { "SCMP_ACT_TRAP", ACT_TRAP },
};

/* SECCOMP_FILTER_FLAG_* and the libseccomp attribute that sets each (0:
 * _SCMP_FLTATR_MIN: nothing to do, the child is single-threaded so TSYNC
 * has nothing to sync). */
static const struct {
	const char *name;
	enum scmp_filter_attr attr;
} flags[] = {
	{ "SECCOMP_FILTER_FLAG_TSYNC", _SCMP_FLTATR_MIN },
	{ "SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG },
	{ "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB },
};

const char *seccomp_spec_action_name(size_t i)
{
	return i < ARRAY_SIZE(actions) ? actions[i].name : NULL;
}

const char *seccomp_spec_op_name(size_t i)
{
	return i < ARRAY_SIZE(ops) ? ops[i].name : NULL;
}

const char *seccomp_spec_arch_name(size_t i)
{
	return i < ARRAY_SIZE(arches) ? arches[i].name : NULL;
}

bool seccomp_spec_arch_usable(size_t i)
{
	if (i >= ARRAY_SIZE(arches))
		return false;
	/* What add_arches does with it, on a scratch filter: libseccomp
	 * refuses to mix byte orders with the native architecture (EDOM). */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return false;
	int r = seccomp_arch_add(ctx, arches[i].arch);
	seccomp_release(ctx);
	return r == 0 || r == -EEXIST;
}

const char *seccomp_spec_flag_name(size_t i)
{
	return i < ARRAY_SIZE(flags) ? flags[i].name : NULL;
}

/* `field` is the spec path of the action, for messages. */
static int parse_action(const char *name, bool has_errno, uint32_t errno_ret, const char *field,
			uint32_t *out, struct cv_error *err)
{
	uint32_t e = has_errno ? errno_ret : EPERM;
	if (!name)
		return cv_errf(err, 0, "%s: missing", field);
	if (!strcmp(name, "SCMP_ACT_NOTIFY"))
		return cv_errf(err, 0,
			       "%s: SCMP_ACT_NOTIFY in the spec needs a listenerPath, which cvisor does not support",
			       field);
	size_t k = 0;
	while (k < ARRAY_SIZE(actions) && strcmp(actions[k].name, name) != 0)
		k++;
	if (k == ARRAY_SIZE(actions))
		return cv_errf(err, 0, "%s: unknown action \"%s\"", field, name);
	switch (actions[k].kind) {
	case ACT_KILL_THREAD:
		*out = SCMP_ACT_KILL_THREAD;
		break;
	case ACT_KILL_PROCESS:
		*out = SCMP_ACT_KILL_PROCESS;
		break;
	case ACT_TRAP:
		*out = SCMP_ACT_TRAP;
		break;
	case ACT_ERRNO:
		*out = SCMP_ACT_ERRNO(e);
		break;
	case ACT_TRACE:
		*out = SCMP_ACT_TRACE(e);
		break;
	case ACT_ALLOW:
		*out = SCMP_ACT_ALLOW;
		break;
	case ACT_LOG:
		*out = SCMP_ACT_LOG;
		break;
	}
	return 0;
}

static int add_arches(scmp_filter_ctx ctx, const struct oci_seccomp *s, struct cv_error *err)
{
	for (size_t i = 0; i < s->n_architectures; i++) {
		const char *a = s->architectures[i];
		size_t k = 0;
		while (k < ARRAY_SIZE(arches) && strcmp(arches[k].name, a) != 0)
			k++;
		if (k == ARRAY_SIZE(arches))
			return cv_errf(err, 0, SC ".architectures[%zu]: unknown architecture \"%s\"", i, a);
		int r = seccomp_arch_add(ctx, arches[k].arch);
		if (r < 0 && r != -EEXIST)
			return cv_errf(err, -r, SC ".architectures[%zu]: adding %s", i, a);
	}
	return 0;
}

static int set_flags(scmp_filter_ctx ctx, const struct oci_seccomp *s, struct cv_error *err)
{
	for (size_t i = 0; i < s->n_flags; i++) {
		const char *f = s->flags[i];
		size_t k = 0;
		while (k < ARRAY_SIZE(flags) && strcmp(flags[k].name, f) != 0)
			k++;
		if (k == ARRAY_SIZE(flags))
			return cv_errf(err, 0, SC ".flags[%zu]: unknown flag \"%s\"", i, f);
		if (flags[k].attr == _SCMP_FLTATR_MIN)
			continue;
		int r = seccomp_attr_set(ctx, flags[k].attr, 1);
		if (r < 0)
			return cv_errf(err, -r, SC ".flags[%zu]: setting %s", i, f);
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const struct scmp_arg_cmp *cmps,
		    unsigned n, size_t idx, const char *name, struct cv_error *err)
{
	int r = seccomp_rule_add_array(ctx, action, nr, n, cmps);
	if (r < 0)
		return cv_errf(err, -r, SC ".syscalls[%zu]: adding the rule for \"%s\"", idx, name);
	return 0;
}

static int add_syscall(scmp_filter_ctx ctx, uint32_t def, const struct oci_seccomp_syscall *sc,
		       size_t idx, struct cv_error *err)
{
	char field[96];
	snprintf(field, sizeof(field), SC ".syscalls[%zu].action", idx);
	uint32_t action;
	if (parse_action(sc->action, sc->has_errno_ret, sc->errno_ret, field, &action, err) < 0)
		return -1;

	if (sc->n_args > 6)
		return cv_errf(err, 0, SC ".syscalls[%zu].args: %zu conditions, at most 6 are possible",
			       idx, sc->n_args);
	struct scmp_arg_cmp cmps[6];
	bool repeated = false;
	unsigned seen = 0;
	for (size_t i = 0; i < sc->n_args; i++) {
		const struct oci_seccomp_arg *a = &sc->args[i];
		if (a->index >= 6)
			return cv_errf(err, 0, SC ".syscalls[%zu].args[%zu].index: %u is not an argument index (0-5)",
				       idx, i, a->index);
		size_t k = 0;
		while (k < ARRAY_SIZE(ops) && strcmp(ops[k].name, a->op) != 0)
			k++;
		if (k == ARRAY_SIZE(ops))
			return cv_errf(err, 0, SC ".syscalls[%zu].args[%zu].op: unknown operator \"%s\"", idx,
				       i, a->op);
		cmps[i] = (struct scmp_arg_cmp){ .arg = a->index, .op = ops[k].op,
						 .datum_a = a->value, .datum_b = a->value_two };
		if (seen & (1u << a->index))
			repeated = true;
		seen |= 1u << a->index;
	}

	/* libseccomp refuses a rule whose action is the default one, and it
	 * would change nothing anyway. */
	if (action == def)
		return 0;

	for (size_t i = 0; i < sc->n_names; i++) {
		const char *name = sc->names[i];
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR)
			continue; /* unknown to this libseccomp/arch: skipped, as runc does */
		if (!repeated) {
			if (add_rule(ctx, action, nr, cmps, (unsigned)sc->n_args, idx, name, err) < 0)
				return -1;
			continue;
		}
		/* libseccomp takes one comparison per argument per rule; several
		 * on the same argument mean "any of them" (runc's reading), so
		 * each becomes its own rule. */
		for (size_t k = 0; k < sc->n_args; k++)
			if (add_rule(ctx, action, nr, &cmps[k], 1, idx, name, err) < 0)
				return -1;
	}
	return 0;
}

int seccomp_spec_build(const struct oci_seccomp *s, scmp_filter_ctx *out, struct cv_error *err)
{
	*out = NULL;
	uint32_t def;
	if (parse_action(s->default_action, s->has_default_errno_ret, s->default_errno_ret,
			 SC ".defaultAction", &def, err) < 0)
		return -1;
	scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx)
		return cv_errf(err, ENOMEM, "creating the seccomp filter (" SC ")");
	if (add_arches(ctx, s, err) < 0 || set_flags(ctx, s, err) < 0)
		goto fail;
	for (size_t i = 0; i < s->n_syscalls; i++)
		if (add_syscall(ctx, def, &s->syscalls[i], i, err) < 0)
			goto fail;
	*out = ctx; /* the caller releases it */
	return 0;
fail:
	seccomp_release(ctx);
	return -1;
}

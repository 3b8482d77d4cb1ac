/* The armed syscall set (kernel/trace_arm.h). */
#include "kernel/trace_arm.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int armed[TRACE_ARM_MAX];
/* libseccomp hands names out malloc'd: kept here once per armed syscall. */
static char names[TRACE_ARM_MAX][32];
static size_t n_armed;

static int add(int sysno)
{
	for (size_t i = 0; i < n_armed; i++)
		if (armed[i] == sysno)
			return 0;
	if (n_armed == TRACE_ARM_MAX)
		return -1;
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, sysno);
	snprintf(names[n_armed], sizeof(names[n_armed]), "%s", name ? name : "?");
	free(name);
	armed[n_armed++] = sysno;
	return 0;
}

int trace_arm_configure(const char *spec, struct cv_error *err)
{
	n_armed = 0;
	if (!spec || !*spec || strcmp(spec, "none") == 0)
		return 0;
	if (strcmp(spec, "default") == 0)
		spec = TRACE_ARM_DEFAULT;
	char buf[4096];
	if (strlen(spec) >= sizeof(buf))
		return cv_errf(err, E2BIG, "--trace-syscalls: the list is longer than %zu bytes",
			       sizeof(buf) - 1);
	strcpy(buf, spec);
	char *save = NULL;
	for (char *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		/* clone3 passes its flags in a struct the filter cannot see, and
		 * process creation is reported already, for clone3 as for clone,
		 * fork and vfork, by sentry/clone (the proc connector); the
		 * reference has no syscall/clone3 point either. */
		if (strcmp(name, "clone3") == 0) {
			n_armed = 0;
			return cv_errf(err, 0, "--trace-syscalls: clone3 cannot be armed (its "
						    "arguments sit in a struct; process creation is "
						    "reported by the sentry/clone point instead)");
		}
		int nr = seccomp_syscall_resolve_name(name);
		if (nr < 0 || nr >= TRACE_SYSNO_MAX) {
			n_armed = 0;
			return cv_errf(err, 0, "--trace-syscalls: unknown syscall \"%s\"", name);
		}
		if (add(nr) < 0) {
			n_armed = 0;
			return cv_errf(err, E2BIG, "--trace-syscalls: more than %d syscalls",
				       TRACE_ARM_MAX);
		}
	}
	/* sentry/execve is built from these two notifications. */
	if (n_armed && (add(seccomp_syscall_resolve_name("execve")) < 0 ||
			add(seccomp_syscall_resolve_name("execveat")) < 0)) {
		n_armed = 0;
		return cv_errf(err, E2BIG, "--trace-syscalls: more than %d syscalls", TRACE_ARM_MAX);
	}
	return 0;
}

size_t trace_arm_count(void)
{
	return n_armed;
}

const int *trace_arm_list(void)
{
	return armed;
}

bool trace_arm_has(int sysno)
{
	for (size_t i = 0; i < n_armed; i++)
		if (armed[i] == sysno)
			return true;
	return false;
}

const char *trace_arm_name(int sysno)
{
	for (size_t i = 0; i < n_armed; i++)
		if (armed[i] == sysno)
			return names[i];
	return NULL;
}

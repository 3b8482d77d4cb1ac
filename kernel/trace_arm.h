#pragma once
/* The syscalls armed for tracing (Conf TraceSyscalls, the global flag
 * --trace-syscalls): every container process gets a SCMP_ACT_NOTIFY rule
 * for each (kernel/child_trace.c), so a trace session or strace can only
 * report those (docs/DESIGN.md, "Trace sessions"). Set once in boot
 * before any container exists; the children inherit it through fork. */
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define TRACE_ARM_MAX 64
/* Raw syscall numbers are below this (x86_64 ends near 470). */
#define TRACE_SYSNO_MAX 512

/* "none" (or NULL/""): nothing armed; "default": TRACE_ARM_DEFAULT; else
 * a comma list of syscall names. execve and execveat are added whenever
 * anything is armed (sentry/execve comes from them). clone3 is refused:
 * see trace_arm.c. Errors name the offending entry. */
#define TRACE_ARM_DEFAULT \
	"execve,execveat,openat,connect,bind,listen,accept4,socket,clone,chdir,setuid,ptrace"
int trace_arm_configure(const char *spec, struct cv_error *err);

size_t trace_arm_count(void);
const int *trace_arm_list(void);
bool trace_arm_has(int sysno);
/* The name of an armed sysno (static storage), or NULL when not armed. */
const char *trace_arm_name(int sysno);

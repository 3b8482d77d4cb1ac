#pragma once
/* strace of the armed syscalls (kernel/strace.c), configured by
 * Logging.Change (kernel/logging.c). */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

/* enable false: off. enable true: on for the allowlist's syscalls, every
 * armed one when it is empty. An allowlisted name that is not armed, or
 * nothing armed at all, is an error ("error configuring strace: ...")
 * and changes nothing. */
int strace_configure(bool enable, char *const *allowlist, size_t n, struct cv_error *err);
bool strace_enabled(void);

struct sc_syscall;
/* The line strace_log writes, without the "strace: " prefix (unit tests). */
void strace_format(const struct sc_syscall *s, pid_t ns_tid, char *out, size_t cap);

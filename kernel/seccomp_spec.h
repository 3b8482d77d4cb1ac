#pragma once
/* The spec's linux.seccomp profile compiled with libseccomp. */
#include <seccomp.h>
#include <stdbool.h>

#include "core/err.h"
#include "core/spec.h"

/* Builds (does not load) a filter. Errors name the field:
 * "spec.linux.seccomp.syscalls[3].action: unknown action \"SCMP_ACT_FOO\"".
 * Unknown syscall names are skipped (as runc does) but unknown actions,
 * operators and architectures are errors. The caller releases *out. */
int seccomp_spec_build(const struct oci_seccomp *s, scmp_filter_ctx *out, struct cv_error *err);

/* The names seccomp_spec_build accepts, for `cvisor features`: the i-th
 * action, operator, architecture or filter flag, NULL past the end. */
const char *seccomp_spec_action_name(size_t i);
const char *seccomp_spec_op_name(size_t i);
const char *seccomp_spec_arch_name(size_t i);
const char *seccomp_spec_flag_name(size_t i);
/* Whether a filter here can take the i-th architecture. */
bool seccomp_spec_arch_usable(size_t i);

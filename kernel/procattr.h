#pragma once
/* Process attributes from the spec applied in a child before execve, for
 * the container init and for exec'd processes: the session keyring,
 * process.ioPriority, process.scheduler, linux.personality and the LSM
 * exec labels (process.apparmorProfile, process.selinuxLabel). Errors name
 * the spec field. */
#include <stdbool.h>

#include "core/err.h"
#include "core/spec.h"

/* Checks ioPriority, scheduler and personality without applying them
 * (names, ranges, flags): "spec.process.scheduler.policy: unknown policy
 * \"SCHED_X\"". Pure. */
int procattr_check(const struct oci_spec *spec, struct cv_error *err);

/* Joins a new session keyring "_ses.<spec->session_keyring>" (runc's name;
 * anonymous when it is NULL; nothing when it is "": --no-new-keyring), so
 * the container
 * does not share the caller's, and lets its user search it (as runc). */
int procattr_join_keyring(const struct oci_spec *spec, struct cv_error *err);

/* ioprio_set and sched_setattr on the calling thread. */
int procattr_set_io_priority(const struct oci_process *p, struct cv_error *err);
int procattr_set_scheduler(const struct oci_process *p, struct cv_error *err);

/* personality(2): survives execve. */
int procattr_set_personality(const struct oci_spec *spec, struct cv_error *err);

/* Writes the AppArmor profile / SELinux label for the next execve to the
 * current /proc/thread-self/attr (the container's procfs, checked to be
 * procfs) when that LSM is enabled on the host; otherwise logs a warning
 * and goes on, as runc does. */
int procattr_set_exec_labels(const struct oci_process *p, struct cv_error *err);

/* process.oomScoreAdj for an exec'd process, through the container's
 * /proc (checked to be procfs). Refused (lowering it from inside a user
 * namespace): a logged warning, the process keeps the inherited value. */
int procattr_set_oom_score_adj(const struct oci_process *p, struct cv_error *err);

/* The names the code accepts, for `cvisor features`: NULL-terminated. */
extern const char *const procattr_sched_policies[];

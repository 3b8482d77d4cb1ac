#pragma once
/* pidns.c helpers beyond model.h's: translating what procfs already read. */
#include "kernel/model.h"
#include "kernel/procfs.h"

/* The PID in the sandbox root namespace from a status already read, or -1
 * when the process is not in that namespace. */
pid_t pidns_of_status(const struct sandbox *sb, const struct proc_status *st);

#pragma once
/* What the restore helper process does (kernel/restore_helper.c); boot's
 * side is kernel/restore.c. */
#include <sys/types.h>

#include "core/err.h"

struct restore_job_args {
	int image_fd;             /* the state file (the caller's) */
	pid_t init_pid;           /* host pid of the created container's init */
	const char *container_id;
	int report_fd;            /* one byte 'R' once the file is checked and the init seized */
};

/* Reads and checks the whole state file, seizes the init, says 'R' on
 * report_fd, waits for the init's exec (boot releases it) and rebuilds the
 * saved process in it. 0, or -1 with err set: before 'R' nothing ran. */
int restore_helper_run(const struct restore_job_args *a, struct cv_error *err);

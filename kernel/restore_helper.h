#pragma once
/* What the restore helper process does (kernel/restore_helper.c); boot's
 * side is kernel/restore.c. */
#include <sys/types.h>

#include "core/err.h"

struct restore_job_args {
	int image_fd;             /* the state file (the caller's) */
	pid_t init_pid;           /* host pid of the created container's init */
	const char *container_id;
	int report_fd;            /* one byte 'R' once the records are checked and the init seized */
};

/* Reads and checks every record of the state file (a small file whole,
 * checksums included; a large one is checked whole by a second thread),
 * seizes the init, says 'R' on report_fd, waits for the init's exec (boot
 * releases it) and rebuilds the saved processes in it, which run only once
 * the whole file was found whole. 0, or -1 with err set: nothing restored
 * ran; before 'R' the init was not even released. */
int restore_helper_run(const struct restore_job_args *a, struct cv_error *err);

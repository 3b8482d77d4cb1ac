#pragma once
/* A short-lived helper process forked by boot for work that would block
 * the reactor (ptrace waits, large copies): checkpoint and restore. The
 * child runs one function and writes a failure's text down a pipe; boot
 * watches the child's pidfd on the loop and collects the outcome when it
 * ends. */
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

struct helper_proc {
	pid_t pid;
	int pidfd;     /* from clone3 itself: no moment where the child runs unwatched */
	int report_fd; /* the pipe's read end, non-blocking */
};

/* Runs in the child. report_fd is the pipe's write end, for a protocol of
 * the caller's own before the end (restore's 'R'); a -1 return writes
 * err's text after whatever was written there and exits 1. */
typedef int (*helper_fn)(void *arg, int report_fd, struct cv_error *err);

/* Forks the helper running fn(arg). 0, or -1 with err set and no child. */
int helper_proc_start(helper_fn fn, void *arg, struct helper_proc *h, struct cv_error *err);

/* Called when the pidfd is readable. 1: not ended yet. 0: exited with
 * status 0. -1: failed. msg gets what the pipe holds (after one leading
 * byte equal to skip, when skip is not 0), or for a failure with nothing
 * written, how the helper named `what` ended. */
int helper_proc_reap(const struct helper_proc *h, char skip, const char *what, char *msg,
		     size_t n);

/* Closes the pidfd and the pipe (the child must have been reaped). */
void helper_proc_close(struct helper_proc *h);

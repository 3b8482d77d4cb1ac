/* Batches of injected syscalls for a restore (kernel/restore_internal.h,
 * over kernel/ptrace_batch.h).
 *
 * The restore helper is one thread rebuilding one process at a time, so
 * there is one batch, owned by this file: it belongs to the process whose
 * step queued its first call, and must run (or be dropped) before another
 * process queues anything. Its addresses are that process's trampoline:
 * the loop in the code page, the table and data in the writable area
 * after it. */
#include <stdio.h>
#include <string.h>

#include "kernel/restore_internal.h"

static struct ptb batch;
static const struct rst *owner; /* NULL: empty */
static bool ran;                /* results held: the next add starts over */

static int own(struct rst *r, struct cv_error *err)
{
	/* Starts over after a run, and for another process when nothing of
	 * the last one's waits (a step that failed before adding any). */
	bool idle = batch.ncalls == 0 && batch.data_len == 0;
	if (ran || !owner || (owner != r && idle)) {
		ptb_init(&batch, r->tramp + BATCH_CODE_OFF, r->tramp + RST_PAGE);
		owner = r;
		ran = false;
	}
	if (owner != r)
		return cv_errf(err, 0, "restoring process %d: calls of process %d still wait to run",
			       r->p->pid, owner->p->pid);
	return 0;
}

int rst_batch_run(struct rst *r, struct cv_error *err)
{
	if (!owner || ran)
		return 0;
	if (owner != r)
		return cv_errf(err, 0, "restoring process %d: the waiting calls are process %d's",
			       r->p->pid, owner->p->pid);
	ran = true;
	if (ptb_run(&r->t, r->memfd, &batch, err) < 0)
		return cv_error_wrap(err, "restoring process %d", r->p->pid);
	return 0;
}

void rst_batch_drop(void)
{
	owner = NULL;
	ran = false;
}

int rst_batch_fit(struct rst *r, size_t calls, size_t data, size_t text, struct cv_error *err)
{
	if (calls > PTB_MAX_CALLS || data > PTB_DATA_MAX || text > PTB_TEXT_MAX)
		return cv_errf(err, 0, "restoring process %d: %zu calls with %zu bytes cannot be one "
				       "batch", r->p->pid, calls, data);
	if (own(r, err) < 0)
		return -1;
	if (ptb_room(&batch, calls, data, text))
		return 0;
	if (rst_batch_run(r, err) < 0)
		return -1;
	return own(r, err);
}

int rst_batch_data(struct rst *r, const void *buf, size_t len, uint64_t *addr,
		   struct cv_error *err)
{
	if (own(r, err) < 0 || ptb_data(&batch, buf, len, addr, err) < 0)
		return cv_error_wrap(err, "restoring process %d", r->p->pid);
	return 0;
}

int rst_batch_add(struct rst *r, const char *what, long nr, uint64_t a1, uint64_t a2,
		  uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err)
{
	if (own(r, err) < 0)
		return -1;
	int i = ptb_add(&batch, what, nr, a1, a2, a3, a4, a5, a6, err);
	return i < 0 ? cv_error_wrap(err, "restoring process %d", r->p->pid) : i;
}

int rst_batch_call(struct rst *r, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		   uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err)
{
	if (rst_batch_fit(r, 1, 0, strlen(what) + 1, err) < 0)
		return -1;
	return rst_batch_add(r, what, nr, a1, a2, a3, a4, a5, a6, err);
}

int rst_batch_link(struct rst *r, int call, int arg, int from, struct cv_error *err)
{
	if (ptb_link(&batch, call, arg, from, err) < 0)
		return cv_error_wrap(err, "restoring process %d", r->p->pid);
	return 0;
}

int rst_batch_flags(struct rst *r, int call, unsigned flags, struct cv_error *err)
{
	if (ptb_set_flags(&batch, call, flags, err) < 0)
		return cv_error_wrap(err, "restoring process %d", r->p->pid);
	return 0;
}

int64_t rst_batch_result(int call)
{
	return ptb_result(&batch, call);
}

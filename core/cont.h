#pragma once
/* Explicit continuations: every wait in the controller is a `struct cont`
 * parked on a wait queue, never a blocked thread (docs/DESIGN.md, "The reactor"). */
#include <stdint.h>

#include "core/list.h"

struct cont {
	void (*fn)(struct cont *k, int err); /* run from the loop when woken */
	const char *what;      /* what it waits for, for debug.Stacks */
	struct list_node link; /* on a waitq while parked, on the run list when woken */
	int err;               /* delivered to fn */
	int state;             /* private to cont.c */
};

struct waitq {
	struct list_head waiters;
	const char *name; /* for debug.Stacks */
};

void cont_init(struct cont *k, void (*fn)(struct cont *k, int err), const char *what);
void waitq_init(struct waitq *q, const char *name);
void waitq_park(struct waitq *q, struct cont *k);
/* Moves every waiter to the run list; each fn runs from the loop (an ev_idle
 * hook), never inline in the caller. */
void waitq_wake_all(struct waitq *q, int err);
/* Schedules one continuation to run from the loop (not inline). */
void cont_post(struct cont *k, int err);
/* Unparks (or unschedules) k; safe if k is neither parked nor scheduled. */
void cont_cancel(struct cont *k);
bool cont_is_pending(const struct cont *k);
/* Called after each continuation ran from the loop with its `what` and
 * when it ran (ns, CLOCK_MONOTONIC): Profile.Trace names callbacks with
 * it. NULL (the default): nothing is timed. */
void cont_set_run_hook(void (*fn)(const char *what, uint64_t start_ns, uint64_t dur_ns));
/* Calls fn for every continuation scheduled to run (woken, not yet run), for
 * debug.Stacks. */
void cont_for_each_scheduled(void (*fn)(const struct cont *k, void *data), void *data);
/* Visits every parked continuation of q (for debug output). */
#define waitq_for_each(pos, q) list_for_each(pos, &(q)->waiters)

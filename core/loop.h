#pragma once
/* The process's one libev loop. Made with ev_loop_new(), never
 * ev_default_loop(): the default loop reaps every child with waitpid(-1)
 * and steals exit statuses from pidfd waiters (waitid(P_PIDFD) then fails
 * with ECHILD). */
#include <ev.h>

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

int core_loop_init(struct cv_error *err);
struct ev_loop *core_loop(void);
void core_loop_destroy(void);

/* Reactor statistics (kernel/metrics.c, Profile.Trace). Off by default:
 * core_loop_stats_enable() before core_loop_init() wraps libev's
 * invoke-pending step (ev_set_invoke_pending_cb) to count the loop's
 * turns that ran callbacks and time them. One clock read per turn, not
 * per callback. */
void core_loop_stats_enable(bool on);
struct core_loop_stats {
	uint64_t turns;        /* turns of the loop that ran callbacks */
	uint64_t callback_ns;  /* time spent running them */
	uint64_t hist[16];     /* turns by duration, bounds in core_loop_stats_bounds_ns */
};
#define CORE_LOOP_HIST_N 16
extern const uint64_t core_loop_stats_bounds_ns[CORE_LOOP_HIST_N - 1]; /* last bucket: +Inf */
const struct core_loop_stats *core_loop_stats(void);
/* Called after every timed turn with its start and duration (ns, monotonic):
 * Profile.Trace records turns through it. NULL: none. */
void core_loop_set_turn_hook(void (*fn)(uint64_t start_ns, uint64_t dur_ns, void *data),
			     void *data);
uint64_t core_now_ns(void); /* CLOCK_MONOTONIC */

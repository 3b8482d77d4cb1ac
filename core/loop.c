/* The process's one libev loop (core/loop.h). */
#include "core/loop.h"

#include <time.h>

static struct ev_loop *the_loop;
static bool stats_on;
static struct core_loop_stats stats;
static void (*turn_hook)(uint64_t start_ns, uint64_t dur_ns, void *data);
static void *turn_hook_data;

/* Turn durations: 10 µs .. 1 s, then +Inf. */
const uint64_t core_loop_stats_bounds_ns[CORE_LOOP_HIST_N - 1] = {
	10000,    25000,    50000,     100000,    250000,    500000,     1000000,   2500000,
	5000000,  10000000, 25000000,  50000000,  100000000, 500000000, 1000000000,
};

uint64_t core_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* libev calls this once per turn with watchers pending: the whole batch
 * of callbacks is timed at once, so the cost is two clock reads per turn
 * however many callbacks ran. */
static void invoke_timed(struct ev_loop *loop)
{
	uint64_t t0 = core_now_ns();
	ev_invoke_pending(loop);
	uint64_t d = core_now_ns() - t0;
	stats.turns++;
	stats.callback_ns += d;
	size_t i = 0;
	while (i < CORE_LOOP_HIST_N - 1 && d > core_loop_stats_bounds_ns[i])
		i++;
	stats.hist[i]++;
	if (turn_hook)
		turn_hook(t0, d, turn_hook_data);
}

void core_loop_stats_enable(bool on)
{
	stats_on = on;
	if (the_loop)
		ev_set_invoke_pending_cb(the_loop, on ? invoke_timed : ev_invoke_pending);
}

const struct core_loop_stats *core_loop_stats(void)
{
	return &stats;
}

void core_loop_set_turn_hook(void (*fn)(uint64_t start_ns, uint64_t dur_ns, void *data),
			     void *data)
{
	turn_hook = fn;
	turn_hook_data = data;
}

int core_loop_init(struct cv_error *err)
{
	if (the_loop)
		return 0;
	/* EVFLAG_NOSIGMASK: we use signalfd, libev must not touch the mask. */
	the_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (!the_loop)
		the_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!the_loop)
		return cv_errf(err, 0, "creating the event loop failed");
	if (stats_on)
		ev_set_invoke_pending_cb(the_loop, invoke_timed);
	return 0;
}

struct ev_loop *core_loop(void)
{
	return the_loop;
}

void core_loop_destroy(void)
{
	if (the_loop) {
		ev_loop_destroy(the_loop);
		the_loop = NULL;
	}
}

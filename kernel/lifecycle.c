/* Lifecycle.Pause / Resume (SEED-REFERENCE §4.12): freeze or thaw every
 * container of the sandbox. Reference-counted; an unmatched Resume is an
 * error (runsc panics there). Pause answers once the freezer reports every
 * cgroup frozen, polled from a timer so the loop stays live. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/methods.h"
#include "kernel/model.h"

#define FREEZE_POLL_S 0.002
#define FREEZE_TIMEOUT_TICKS 2500 /* 5 s */

struct pause_wait {
	ev_timer tick;
	struct rpc_call *call;
	struct sandbox *sb;
	int ticks;
};

/* 1 when cgroup.events says "frozen 1", 0 when not yet, -1 on error. */
static int cgroup_is_frozen(const struct cgroup *cg)
{
	struct cv_error err;
	int fd = cgroup_events_fd(cg, &err);
	if (fd < 0)
		return -1;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strstr(buf, "frozen 1") != NULL;
}

static int sandbox_freeze(struct sandbox *sb, bool frozen, struct cv_error *err)
{
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		if (c->cg_made && cgroup_freeze(&c->cg, frozen, err) < 0)
			return -1;
	}
	return 0;
}

static void pause_wait_free(struct pause_wait *pw)
{
	ev_timer_stop(core_loop(), &pw->tick);
	free(pw);
}

static void pause_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	pause_wait_free(data);
}

static void on_pause_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pause_wait *pw = container_of(w, struct pause_wait, tick);
	bool all = true;
	list_for_each(n, &pw->sb->containers) {
		struct container *c = container_of(n, struct container, link);
		/* A cgroup without cgroup.events (no v2) froze synchronously. */
		if (c->cg_made && cgroup_is_frozen(&c->cg) == 0)
			all = false;
	}
	if (all) {
		rpc_reply_nil(pw->call);
		pause_wait_free(pw);
	} else if (++pw->ticks >= FREEZE_TIMEOUT_TICKS) {
		rpc_fail(pw->call, "pausing: the freezer did not report every container frozen within 5 s");
		pause_wait_free(pw);
	}
}

void lifecycle_pause(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	if (sb->pause_count++ > 0) {
		rpc_reply_nil(call);
		return;
	}
	if (sandbox_freeze(sb, true, &err) < 0) {
		sb->pause_count--;
		sandbox_freeze(sb, false, &err);
		rpc_fail(call, "pausing: %s", err.msg);
		return;
	}
	struct pause_wait *pw = calloc(1, sizeof(*pw));
	if (!pw) {
		rpc_fail(call, "pausing: out of memory");
		return;
	}
	pw->call = call;
	pw->sb = sb;
	ev_timer_init(&pw->tick, on_pause_tick, 0, FREEZE_POLL_S);
	ev_timer_start(core_loop(), &pw->tick);
	rpc_call_set_cancel(call, pause_cancel, pw);
}

void lifecycle_resume(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	if (sb->pause_count == 0) {
		rpc_fail(call, "sandbox is not paused");
		return;
	}
	if (--sb->pause_count > 0) {
		rpc_reply_nil(call);
		return;
	}
	if (sandbox_freeze(sb, false, &err) < 0) {
		rpc_fail(call, "resuming: %s", err.msg);
		return;
	}
	rpc_reply_nil(call);
}

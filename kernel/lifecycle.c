/* Lifecycle.Pause / Resume (docs/API.md): freeze or thaw every
 * container of the sandbox. Reference-counted; an unmatched Resume is an
 * error (runsc panics there). Pause answers once the freezer reports every
 * cgroup frozen. The v2 freezer says so in cgroup.events, which kernfs
 * announces as an inotify IN_MODIFY (its poll() flags POLLPRI, which the
 * epoll backend of libev does not watch), so the parked call waits on an
 * ev_io of an inotify fd, with a timer bounding the wait; nothing polls. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/methods.h"
#include "kernel/model.h"

#define FREEZE_TIMEOUT_S 5.0

struct pause_wait {
	ev_io ino_w;    /* inotify: a cgroup.events changed */
	ev_timer limit; /* the bound on the whole wait */
	int ino_fd;
	struct rpc_call *call;
	struct sandbox *sb;
};

/* 1 when cgroup.events says "frozen 1", 0 when not yet, -1 on error
 * (read once per change, not per tick). */
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
	ev_io_stop(core_loop(), &pw->ino_w);
	ev_timer_stop(core_loop(), &pw->limit);
	if (pw->ino_fd >= 0)
		close(pw->ino_fd);
	free(pw);
}

static void pause_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	pause_wait_free(data);
}

static bool all_frozen(const struct sandbox *sb)
{
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		/* A cgroup without cgroup.events (no v2) froze synchronously. */
		if (c->cg_made && cgroup_is_frozen(&c->cg) == 0)
			return false;
	}
	return true;
}

static void on_events_changed(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pause_wait *pw = container_of(w, struct pause_wait, ino_w);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	/* Drain the (non-blocking) queue: one check covers every event. */
	while (read(pw->ino_fd, buf, sizeof(buf)) > 0)
		;
	if (all_frozen(pw->sb)) {
		rpc_reply_nil(pw->call);
		pause_wait_free(pw);
	}
}

static void on_pause_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pause_wait *pw = container_of(w, struct pause_wait, limit);
	if (all_frozen(pw->sb)) /* an event lost or coalesced: trust the files */
		rpc_reply_nil(pw->call);
	else
		rpc_fail(pw->call, "pausing: the freezer did not report every container frozen within %g s",
			 FREEZE_TIMEOUT_S);
	pause_wait_free(pw);
}

/* Watches cgroup.events of every container; returns -1 with err set. */
static int watch_events(struct pause_wait *pw, struct cv_error *err)
{
	pw->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (pw->ino_fd < 0)
		return cv_errf(err, errno, "inotify_init1");
	const char *root = cgroup_v2_root();
	list_for_each(n, &pw->sb->containers) {
		struct container *c = container_of(n, struct container, link);
		if (!c->cg_made || !root)
			continue;
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s/cgroup.events", root, c->cg.path);
		if (inotify_add_watch(pw->ino_fd, p, IN_MODIFY) < 0 && errno != ENOENT)
			return cv_errf(err, errno, "watching %s", p);
	}
	return 0;
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
	pw->ino_fd = -1;
	ev_io_init(&pw->ino_w, on_events_changed, -1, EV_READ);
	ev_timer_init(&pw->limit, on_pause_timeout, FREEZE_TIMEOUT_S, 0);
	/* The watches go in before the first check, so a change between the
	 * two is not lost. */
	if (watch_events(pw, &err) < 0) {
		struct cv_error terr;
		sb->pause_count--;
		sandbox_freeze(sb, false, &terr);
		rpc_fail(call, "pausing: %s", err.msg);
		pause_wait_free(pw);
		return;
	}
	if (all_frozen(sb)) {
		rpc_reply_nil(call);
		pause_wait_free(pw);
		return;
	}
	ev_io_set(&pw->ino_w, pw->ino_fd, EV_READ);
	ev_io_start(core_loop(), &pw->ino_w);
	ev_timer_start(core_loop(), &pw->limit);
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

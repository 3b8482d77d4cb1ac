/* sentry/clone, sentry/task_exit and sentry/exit_notify_parent from the
 * proc connector (kernel/proc_connector.h): its events cover the whole
 * host, so each is kept only for a task of the sandbox's cgroups. The
 * socket is open only while the session has one of these points. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "kernel/model.h"
#include "kernel/proc_connector.h"
#include "kernel/seccheck_internal.h"

/* Events read per loop iteration: the rest waits for the next one. */
#define PROC_BATCH 64
#define PROC_RCVBUF (4 << 20)
/* Tasks remembered between their fork and exit (their ids are gone from
 * /proc by the time an exit is read, sometimes). */
#define TRACKED_MAX 4096

struct tracked {
	pid_t host; /* 0: free slot */
	pid_t tid, tgid, ptgid;
	const char *cid;
};

static struct {
	int fd;
	ev_io w;
	bool lost;
	struct tracked t[TRACKED_MAX];
} pc = { .fd = -1 };

static struct tracked *find(pid_t host)
{
	for (size_t i = 0; i < TRACKED_MAX; i++)
		if (pc.t[i].host == host)
			return &pc.t[i];
	return NULL;
}

/* The container whose cgroup (or a cgroup below it) holds the task: its
 * unified-hierarchy line of /proc/<pid>/cgroup, the kernel's text. */
static struct container *owner(pid_t host)
{
	if (!sc_sandbox)
		return NULL;
	char path[40], text[2048];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)host);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	text[n] = '\0';
	char *line = strstr(text, "0::/");
	if (!line || (line != text && line[-1] != '\n'))
		return NULL;
	line += 4;
	line[strcspn(line, "\n")] = '\0';
	list_for_each(node, &sc_sandbox->containers) {
		struct container *c = container_of(node, struct container, link);
		if (!c->cg.path)
			continue;
		size_t l = strlen(c->cg.path);
		if (strncmp(line, c->cg.path, l) == 0 && (line[l] == '\0' || line[l] == '/'))
			return c;
	}
	return NULL;
}

/* The task's entry, made (ids from /proc) when it belongs to the sandbox. */
static struct tracked *lookup(pid_t host, pid_t parent_host)
{
	struct tracked *t = find(host);
	if (t)
		return t;
	struct tracked *parent = parent_host ? find(parent_host) : NULL;
	const char *cid = parent ? parent->cid : NULL;
	if (!cid) {
		struct container *c = owner(host);
		if (!c)
			return NULL;
		cid = c->id;
	}
	t = find(0);
	if (!t)
		return NULL; /* full: the task is reported without remembered ids */
	struct sc_ctx ctx = { .host_tid = host, .cid = cid };
	/* Reads the ids from /proc into ctx; the packed bytes are dropped. */
	msgpack_packer *p = sc_begin();
	sc_pack_context(p, 1ull << SC_F_THREAD_ID | 1ull << SC_F_PARENT_TGID, &ctx);
	*t = (struct tracked){ .host = host, .tid = ctx.tid, .tgid = ctx.tgid, .ptgid = ctx.ptgid,
			       .cid = cid };
	return t;
}

static void ctx_of(const struct tracked *t, pid_t host, bool alive, struct sc_ctx *ctx)
{
	*ctx = (struct sc_ctx){ .host_tid = alive ? host : 0, .cid = t->cid, .tid = t->tid,
				.tgid = t->tgid, .ptgid = t->ptgid, .ids_known = true };
}

static void on_fork(const struct proc_event *ev)
{
	const struct sc_point_cfg *cfg = &sc_session.fixed[SC_P_CLONE];
	pid_t parent = ev->event_data.fork.parent_pid, child = ev->event_data.fork.child_pid;
	struct tracked *pt = lookup(parent, 0);
	struct tracked *ct = lookup(child, parent);
	if (!ct || !cfg->on)
		return;
	struct sc_ctx ctx;
	if (pt)
		ctx_of(pt, parent, true, &ctx);
	else
		ctx = (struct sc_ctx){ .cid = ct->cid }; /* forked by boot's intermediate */
	msgpack_packer *p = sc_begin();
	msgpack_pack_map(p, 3);
	sc_pack_context(p, cfg->ctx, &ctx);
	mpk_pack_key(p, "created_thread_id");
	msgpack_pack_int32(p, ct->tid);
	mpk_pack_key(p, "created_thread_group_id");
	msgpack_pack_int32(p, ct->tgid);
	sc_send(SC_MSG_CLONE_INFO);
}

static void on_exit_event(const struct proc_event *ev)
{
	pid_t host = ev->event_data.exit.process_pid;
	struct tracked *t = lookup(host, 0);
	if (!t)
		return;
	struct sc_ctx ctx;
	const struct sc_point_cfg *cfg = &sc_session.fixed[SC_P_TASK_EXIT];
	if (cfg->on) {
		ctx_of(t, host, true, &ctx);
		msgpack_packer *p = sc_begin();
		msgpack_pack_map(p, 2);
		sc_pack_context(p, cfg->ctx, &ctx);
		mpk_pack_key(p, "exit_status");
		msgpack_pack_int32(p, (int32_t)ev->event_data.exit.exit_code);
		sc_send(SC_MSG_TASK_EXIT);
	}
	cfg = &sc_session.fixed[SC_P_EXIT_NOTIFY];
	if (cfg->on && host == ev->event_data.exit.process_tgid) {
		/* The reference's exit_notify_parent has no cwd. */
		ctx_of(t, host, true, &ctx);
		msgpack_packer *p = sc_begin();
		msgpack_pack_map(p, 2);
		sc_pack_context(p, cfg->ctx & ~(1ull << SC_F_CWD), &ctx);
		mpk_pack_key(p, "exit_status");
		msgpack_pack_int32(p, (int32_t)ev->event_data.exit.exit_code);
		sc_send(SC_MSG_EXIT_NOTIFY);
	}
	t->host = 0;
}

static void on_event(const struct proc_event *ev, void *ctx)
{
	(void)ctx;
	if (!sc_session.active)
		return;
	if (ev->what == PROC_EVENT_FORK)
		on_fork(ev);
	else if (ev->what == PROC_EVENT_EXIT)
		on_exit_event(ev);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	bool lost = false;
	proc_connector_drain(pc.fd, PROC_BATCH, on_event, NULL, &lost);
	if (lost && !pc.lost)
		LOG(LL_WARN, "trace: process events were lost (the connector's queue overflowed)");
	pc.lost = pc.lost || lost;
}

int sc_proc_update(struct cv_error *err)
{
	bool need = sc_session.active &&
		    (sc_session.fixed[SC_P_CLONE].on || sc_session.fixed[SC_P_TASK_EXIT].on ||
		     sc_session.fixed[SC_P_EXIT_NOTIFY].on);
	if (!need) {
		sc_proc_close();
		return 0;
	}
	if (pc.fd >= 0)
		return 0;
	int fd = proc_connector_open(PROC_RCVBUF, err);
	if (fd < 0)
		return cv_error_wrap(err, "trace session");
	pc.fd = fd;
	pc.lost = false;
	ev_io_init(&pc.w, on_readable, fd, EV_READ);
	ev_io_start(core_loop(), &pc.w);
	return 0;
}

void sc_proc_close(void)
{
	if (pc.fd < 0)
		return;
	ev_io_stop(core_loop(), &pc.w);
	close(pc.fd);
	pc.fd = -1;
	memset(pc.t, 0, sizeof(pc.t));
}

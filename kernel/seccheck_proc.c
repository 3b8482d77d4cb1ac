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
	struct sc_ctx ctx; /* ids, name and credentials as last read */
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
	const char *cid = parent ? parent->ctx.cid : NULL;
	if (!cid) {
		struct container *c = owner(host);
		if (!c)
			return NULL;
		cid = c->id;
	}
	t = find(0);
	if (!t)
		return NULL; /* full: the task is reported without remembered ids */
	*t = (struct tracked){ .host = host, .ctx = { .host_tid = host, .cid = cid } };
	sc_ctx_read(&t->ctx);
	t->ctx.ids_known = true; /* even unread: never looked up again under a reused pid */
	return t;
}

static void on_fork(const struct proc_event *ev)
{
	const struct sc_point_cfg *cfg = &sc_session.fixed[SC_P_CLONE];
	pid_t parent = ev->event_data.fork.parent_pid, child = ev->event_data.fork.child_pid;
	struct tracked *pt = lookup(parent, 0);
	struct tracked *ct = lookup(child, parent);
	if (!ct || !cfg->on)
		return;
	struct sc_ctx ctx = pt ? pt->ctx : (struct sc_ctx){ .cid = ct->ctx.cid };
	msgpack_packer *p = sc_begin();
	msgpack_pack_map(p, 3);
	sc_pack_context(p, cfg->ctx, &ctx);
	mpk_pack_key(p, "created_thread_id");
	msgpack_pack_int32(p, ct->ctx.tid);
	mpk_pack_key(p, "created_thread_group_id");
	msgpack_pack_int32(p, ct->ctx.tgid);
	sc_send(SC_MSG_CLONE_INFO);
}

static void on_exit_event(const struct proc_event *ev)
{
	pid_t host = ev->event_data.exit.process_pid;
	struct tracked *t = lookup(host, 0);
	if (!t)
		return;
	/* A copy: a read of /proc that fails (reaped already) keeps what the
	 * fork or exec left. */
	struct sc_ctx ctx = t->ctx;
	const struct sc_point_cfg *cfg = &sc_session.fixed[SC_P_TASK_EXIT];
	if (cfg->on) {
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
		msgpack_packer *p = sc_begin();
		msgpack_pack_map(p, 2);
		sc_pack_context(p, cfg->ctx & ~(1ull << SC_F_CWD), &ctx);
		mpk_pack_key(p, "exit_status");
		msgpack_pack_int32(p, (int32_t)ev->event_data.exit.exit_code);
		sc_send(SC_MSG_EXIT_NOTIFY);
	}
	t->host = 0;
}

/* The name (and maybe the credentials) changed: read while it is there. */
static void on_exec(const struct proc_event *ev)
{
	struct tracked *t = find(ev->event_data.exec.process_pid);
	if (t)
		sc_ctx_read(&t->ctx);
}

static void on_event(const struct proc_event *ev, void *ctx)
{
	(void)ctx;
	if (!sc_session.active)
		return;
	if (ev->what == PROC_EVENT_FORK)
		on_fork(ev);
	else if (ev->what == PROC_EVENT_EXEC)
		on_exec(ev);
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

void sc_proc_describe(FILE *out)
{
	if (pc.fd < 0)
		return;
	fprintf(out, "  watcher trace proc connector (io fd %d): %s%s\n", pc.fd,
		ev_is_active(&pc.w) ? "active" : "stopped", pc.lost ? ", events were lost" : "");
}

void sc_proc_forget(const char *cid)
{
	for (size_t i = 0; i < TRACKED_MAX; i++)
		if (pc.t[i].host && pc.t[i].ctx.cid == cid)
			pc.t[i].host = 0;
}

void sc_proc_note_exec(pid_t host, const char *path)
{
	/* The task waits in its notification: /proc is reliably there now,
	 * whether or not its fork event was read yet. */
	struct tracked *t = pc.fd >= 0 && path ? lookup(host, 0) : NULL;
	if (!t)
		return;
	const char *base = strrchr(path, '/');
	snprintf(t->ctx.comm, sizeof(t->ctx.comm), "%s", base ? base + 1 : path);
}

bool sc_proc_open(void)
{
	return pc.fd >= 0;
}

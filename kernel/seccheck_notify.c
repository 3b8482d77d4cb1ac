/* The seccomp listeners of the container processes (one per process that
 * installed the trace filter, kernel/child_trace.c): each notification is
 * recorded for the session and strace, then answered with CONTINUE, so
 * the syscall runs exactly as it would have (the spec's own filter still
 * decides: ERRNO and KILL outrank NOTIFY). Nothing blocks: a burst is
 * drained SC_NOTIFY_BATCH at a time per loop iteration. */
#include <errno.h>
#include <poll.h>
/* Before seccomp.h: <elf.h> under it defines EV_NONE, a name libev uses. */
#include "core/loop.h"
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "kernel/model.h"
#include "kernel/seccheck.h"
#include "kernel/seccheck_internal.h"
#include "kernel/strace.h"

#define SC_NOTIFY_BATCH 32
#define SC_PATH_MAX 4096
#define SC_ARGV_MAX 64
#define SC_ARG_LEN 256
#define SC_ADDR_MAX 128

struct listener {
	struct list_node link;
	const struct container *c; /* identity only: closed by container_free */
	char *cid;
	int fd;
	ev_io w;
	/* Until the process's first execve the notifications are the
	 * runtime's own set-up (reading cap_last_cap, finding the binary):
	 * answered, not reported. */
	bool execed;
};

static struct list_head listeners = LIST_HEAD_INIT(listeners);
static struct seccomp_notif *req;
static struct seccomp_notif_resp *resp;

static void listener_free(struct listener *l)
{
	ev_io_stop(core_loop(), &l->w);
	close(l->fd);
	list_del(&l->link);
	free(l->cid);
	free(l);
}

/* Up to cap-1 bytes of the task's string at addr, NUL-terminated; reads
 * stop at page ends so a string near the end of a mapping still reads. */
static bool read_str(pid_t pid, uint64_t addr, char *out, size_t cap)
{
	size_t got = 0;
	if (!addr)
		return false;
	while (got + 1 < cap) {
		uint64_t at = addr + got;
		size_t chunk = 4096 - (size_t)(at & 4095);
		if (chunk > cap - 1 - got)
			chunk = cap - 1 - got;
		struct iovec l = { out + got, chunk }, r = { (void *)(uintptr_t)at, chunk };
		ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (n <= 0)
			break;
		if (memchr(out + got, '\0', (size_t)n))
			return true;
		got += (size_t)n;
	}
	out[got] = '\0';
	return got > 0;
}

static bool read_mem(pid_t pid, uint64_t addr, void *out, size_t len)
{
	struct iovec l = { out, len }, r = { (void *)(uintptr_t)addr, len };
	return addr && process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

/* argv of an execve: at most SC_ARGV_MAX strings of SC_ARG_LEN bytes. */
struct argv_buf {
	char *v[SC_ARGV_MAX + 1];
	char s[SC_ARGV_MAX][SC_ARG_LEN];
};

static void read_argv(pid_t pid, uint64_t addr, struct argv_buf *b)
{
	uint64_t ptrs[SC_ARGV_MAX];
	size_t n = 0;
	memset(b->v, 0, sizeof(b->v));
	for (; n < SC_ARGV_MAX; n++) {
		if (!read_mem(pid, addr + n * 8, &ptrs[n], 8) || !ptrs[n])
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (!read_str(pid, ptrs[i], b->s[i], SC_ARG_LEN))
			b->s[i][0] = '\0';
		b->v[i] = b->s[i];
	}
}

static void record(struct listener *l, const struct seccomp_notif *n)
{
	static char path[SC_PATH_MAX];
	static struct argv_buf argv;
	unsigned char addr[SC_ADDR_MAX];
	struct sc_syscall s = { .sysno = n->data.nr, .host_tid = (pid_t)n->pid, .cid = l->cid };
	memcpy(s.args, n->data.args, sizeof(s.args));
	int path_arg = -1, argv_arg = -1;
	switch (s.sysno) {
	case SYS_execve: path_arg = 0; argv_arg = 1; break;
	case SYS_execveat: path_arg = 1; argv_arg = 2; break;
	case SYS_openat: path_arg = 1; break;
	case SYS_chdir: path_arg = 0; break;
	case SYS_open: path_arg = 0; break;
	default: break;
	}
	if (path_arg >= 0 && read_str(s.host_tid, s.args[path_arg], path, sizeof(path)))
		s.path = path;
	if (argv_arg >= 0) {
		read_argv(s.host_tid, s.args[argv_arg], &argv);
		s.argv = argv.v;
	}
	if (s.sysno == SYS_connect || s.sysno == SYS_bind) {
		size_t len = s.args[2] < sizeof(addr) ? (size_t)s.args[2] : sizeof(addr);
		if (read_mem(s.host_tid, s.args[1], addr, len)) {
			s.addr = addr;
			s.addr_len = len;
		}
	}
	/* What was read belongs to this notification only if the task is
	 * still waiting in it: otherwise the pid may be someone else's now. */
	if (seccomp_notify_id_valid(l->fd, n->id) != 0)
		return;
	if (sc_session.active)
		sc_emit_syscall(&s);
	if (s.sysno == SYS_execve || s.sysno == SYS_execveat)
		sc_proc_note_exec(s.host_tid, s.path);
	if (strace_wants(s.sysno))
		strace_log(&s, sc_sandbox ? pidns_to_root(sc_sandbox, s.host_tid) : s.host_tid);
}

/* Whether anything reads this syscall's notification: only then are its
 * arguments read from the task. */
static bool wanted(int sysno)
{
	if (strace_wants(sysno))
		return true;
	if (!sc_session.active || sysno < 0 || sysno >= TRACE_SYSNO_MAX)
		return false;
	if (sc_session.sys[sysno].on || sc_session.sys_raw[sysno].on)
		return true;
	/* sentry/execve, and the name an exit will report. */
	return (sysno == SYS_execve || sysno == SYS_execveat) &&
	       (sc_session.fixed[SC_P_EXECVE].on || sc_proc_open());
}

/* Answers up to SC_NOTIFY_BATCH notifications; false once the listener
 * has no users left (every process of its filter is gone) and was freed. */
static bool drain(struct listener *l, bool pending)
{
	for (int i = 0; i < SC_NOTIFY_BATCH; i++) {
		/* RECV would block with nothing pending: ask poll first, unless
		 * the loop just said a notification waits (saves a syscall on
		 * every traced syscall). */
		struct pollfd p = { .fd = l->fd, .events = POLLIN, .revents = POLLIN };
		if (!(i == 0 && pending) && poll(&p, 1, 0) <= 0)
			return true;
		if (!(p.revents & POLLIN)) {
			if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
				listener_free(l);
				return false;
			}
			return true;
		}
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(l->fd, req) != 0)
			continue; /* the task was interrupted before we took it */
		int nr = req->data.nr;
		if (nr == SYS_execve || nr == SYS_execveat)
			l->execed = true;
		if (l->execed && wanted(nr))
			record(l, req);
		memset(resp, 0, sizeof(*resp));
		resp->id = req->id;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		/* ENOENT: the task went away meanwhile; nothing to answer. */
		seccomp_notify_respond(l->fd, resp);
	}
	return true;
}

static void on_listener(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	/* Watched for EV_WRITE too: libev reports a hang-up as both, and the
	 * listener is writable only with a notification received and not yet
	 * answered, which never outlives drain(). So EV_READ alone means a
	 * notification is pending. */
	drain(container_of(w, struct listener, w), revents == EV_READ);
}

void seccheck_listener_add(struct container *c, int fd)
{
	if (!req && seccomp_notify_alloc(&req, &resp) != 0) {
		req = NULL;
		LOG(LL_ERROR, "allocating seccomp notification buffers; closing the listener of %s "
			      "(its traced syscalls now fail with ENOSYS)", c->id);
		close(fd);
		return;
	}
	struct listener *l = calloc(1, sizeof(*l));
	char *cid = strdup(c->id);
	if (!l || !cid) {
		free(l);
		free(cid);
		LOG(LL_ERROR, "out of memory watching a seccomp listener of %s; closing it (its "
			      "traced syscalls now fail with ENOSYS)", c->id);
		close(fd);
		return;
	}
	l->c = c;
	l->cid = cid;
	l->fd = fd;
	ev_io_init(&l->w, on_listener, fd, EV_READ | EV_WRITE);
	ev_io_start(core_loop(), &l->w);
	list_add_tail(&listeners, &l->link);
	sc_sandbox = c->sb;
}

size_t seccheck_listener_pollfds(struct pollfd *out, size_t max)
{
	size_t n = 0;
	list_for_each(node, &listeners) {
		if (n == max)
			break;
		struct listener *l = container_of(node, struct listener, link);
		out[n++] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
	}
	return n;
}

void seccheck_listener_drain_all(void)
{
	list_for_each_safe(node, tmp, &listeners)
		drain(container_of(node, struct listener, link), false);
}

void seccheck_listener_close(const struct container *c)
{
	list_for_each_safe(node, tmp, &listeners) {
		struct listener *l = container_of(node, struct listener, link);
		if (!c || l->c == c)
			listener_free(l);
	}
	if (!c && req) {
		seccomp_notify_free(req, resp);
		req = NULL;
		resp = NULL;
	}
}

void seccheck_container_gone(const struct container *c)
{
	seccheck_listener_close(c);
	sc_proc_forget(c->id);
}

void seccheck_describe(FILE *out)
{
	list_for_each(node, &listeners) {
		const struct listener *l = container_of(node, struct listener, link);
		fprintf(out, "  watcher seccomp listener of %s (io fd %d%s): %s\n", l->cid, l->fd,
			l->execed ? "" : ", before its execve", ev_is_active(&l->w) ? "active" : "stopped");
	}
	sc_proc_describe(out);
	if (sc_session.active) {
		fprintf(out, "  trace session Default: %zu sinks", sc_session.nsinks);
		for (size_t i = 0; i < sc_session.nsinks; i++)
			fprintf(out, "%s%s dropped %llu", i ? ", " : " (",
				sc_session.sinks[i].kind == SC_SINK_REMOTE ? "remote" : "null",
				(unsigned long long)sc_session.sinks[i].dropped);
		fprintf(out, "%s\n", sc_session.nsinks ? ")" : "");
	}
	if (strace_enabled())
		fprintf(out, "  strace: on\n");
}

/* debug.Stacks (docs/API.md): a text dump of the sandbox. The reactor has
 * one thread and no goroutines, so its "stacks" are the waits: every
 * container and task with its state, every parked or scheduled
 * continuation and what it waits for, every connection with its calls in
 * flight, and the watchers boot keeps (libev cannot enumerate watchers
 * without EV_WALK_ENABLE, which Debian's libev lacks, so the dump lists
 * those the model owns). Bounded by the sandbox's own limits; read-only. */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/methods.h"
#include "kernel/seccheck.h"
#include "kernel/metrics.h"
#include "kernel/model.h"

static const char *task_state_name(enum task_state s)
{
	switch (s) {
	case TASK_CREATED:
		return "created";
	case TASK_STARTING:
		return "starting";
	case TASK_RUNNING:
		return "running";
	case TASK_EXITED:
		return "exited";
	}
	return "?";
}

static const char *container_state_name(const struct container *c)
{
	switch (container_runtime_state(c)) {
	case RUNTIME_STATE_CREATING:
		return "created";
	case RUNTIME_STATE_RUNNING:
		return "running";
	case RUNTIME_STATE_STOPPED:
		return "stopped";
	case RUNTIME_STATE_INVALID:
		break;
	}
	return "invalid";
}

static const char *active(const void *w)
{
	return ev_is_active((const ev_watcher *)w) ? "active" : "stopped";
}

static void dump_waitq(FILE *out, const struct waitq *q)
{
	waitq_for_each(pos, q) {
		const struct cont *k = container_of(pos, struct cont, link);
		fprintf(out, "      parked on \"%s\": %s\n", q->name, k->what ? k->what : "?");
	}
}

static void dump_task(FILE *out, const struct task *t)
{
	fprintf(out, "    task pid %d (host %d)%s: %s", (int)t->ns_pid, (int)t->host_pid,
		t->is_init ? " init" : "", task_state_name(t->state));
	if (t->state == TASK_EXITED)
		fprintf(out, ", wait status 0x%x", t->status);
	if (t->spawning)
		fputs(", spawning", out);
	if (t->in_registry)
		fputs(", in exec registry", out);
	if (t->start_failed)
		fprintf(out, ", failed to start: %s", task_start_err(t));
	fprintf(out, ", %d parked calls hold it\n", t->refs);
	if (t->pidfd >= 0)
		fprintf(out, "      watcher exit (io pidfd %d): %s\n", t->pidfd, active(&t->pid_w));
	if (t->ctl_fd >= 0)
		fprintf(out, "      watcher exec report (io fd %d): %s\n", t->ctl_fd, active(&t->ctl_w));
	if (ev_is_active(&t->spawn_w))
		fputs("      watcher spawn intermediate (io pidfd): active\n", out);
	if (ev_is_active(&t->exit_retry_w))
		fputs("      watcher exit status retry (timer): active\n", out);
	dump_waitq(out, &t->started);
	dump_waitq(out, &t->exited);
}

static void dump_scheduled(const struct cont *k, void *data)
{
	fprintf(data, "  scheduled: %s\n", k->what ? k->what : "?");
}

/* The dump, malloc'd (NULL when out of memory). */
static char *stacks_text(struct sandbox *sb)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		return NULL;
	fprintf(out, "sandbox %s: %s, paused %d, log level %s, metrics %s\n", sb->id,
		sb->ended ? "ending" : sb->started ? "started" : "created", sb->pause_count,
		log_level_name(log_current_level), metrics_enabled() ? "on" : "off");
	struct ev_loop *loop = core_loop();
	fprintf(out, "loop: iteration %u, %u watchers pending\n", ev_iteration(loop),
		ev_pending_count(loop));
	fprintf(out, "  watcher signals (io signalfd %d): %s\n", sb->sigfd, active(&sb->sig_w));
	fprintf(out, "  watcher end drain (timer): %s\n", active(&sb->drain_w));
	usage_describe(out);
	port_forward_describe(out);
	seccheck_describe(out);
	list_for_each(pos, &sb->containers) {
		const struct container *c = container_of(pos, struct container, link);
		fprintf(out, "container %s: %s%s\n", c->id, container_state_name(c),
			c == sb->root ? " (root)" : "");
		if (c->init)
			dump_task(out, c->init);
		list_for_each(tp, &c->tasks)
			dump_task(out, container_of(tp, struct task, link));
		if (c->spawner.running)
			fprintf(out, "    spawner: running, %zu execs waiting, %d intermediates asked, "
				     "watcher %s\n",
				c->spawner.n_waiting, c->spawner.asked, active(&c->spawner.sock_w));
	}
	fputs("continuations:\n", out);
	cont_for_each_scheduled(dump_scheduled, out);
	if (sb->rpc)
		rpc_server_dump(sb->rpc, out);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

void debug_stacks(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg; /* runsc's takes an empty struct */
	char *text = stacks_text(rpc_call_ctx(call));
	if (!text) {
		rpc_fail(call, "debug.Stacks: out of memory");
		return;
	}
	rpc_reply_str(call, text);
	free(text);
}

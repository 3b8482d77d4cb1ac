/* Continuations and wait queues (core/cont.h, docs/DESIGN.md, "The reactor").
 *
 * Woken continuations go to a run list that an ev_idle watcher drains, so a
 * waker never runs a waiter's code inline (a function that starts work never calls
 * its completion inline: the caller's state may not be ready for it). */
#include "core/cont.h"

#include <assert.h>

#include "core/loop.h"

enum { CONT_IDLE, CONT_PARKED, CONT_SCHEDULED };

static struct list_head run_list = LIST_HEAD_INIT(run_list);
static ev_idle run_idle;
static bool run_idle_ready;
static void (*run_hook)(const char *what, uint64_t start_ns, uint64_t dur_ns);

void cont_set_run_hook(void (*fn)(const char *what, uint64_t start_ns, uint64_t dur_ns))
{
	run_hook = fn;
}

static void run_ready(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	/* Run only what was ready when we started: a continuation that posts
	 * another one lets the loop poll in between. */
	struct list_head batch;
	list_init(&batch);
	if (!list_empty(&run_list)) {
		batch.n.next = run_list.n.next;
		batch.n.prev = run_list.n.prev;
		batch.n.next->prev = &batch.n;
		batch.n.prev->next = &batch.n;
		list_init(&run_list);
	}
	while (!list_empty(&batch)) {
		struct list_node *n = list_first(&batch);
		struct cont *k = container_of(n, struct cont, link);
		list_del(n);
		k->state = CONT_IDLE;
		if (run_hook) {
			/* k may be freed by its fn: keep the name first. */
			const char *what = k->what;
			uint64_t t0 = core_now_ns();
			k->fn(k, k->err);
			run_hook(what, t0, core_now_ns() - t0);
			continue;
		}
		k->fn(k, k->err);
	}
	if (list_empty(&run_list))
		ev_idle_stop(loop, w);
}

static void schedule(struct cont *k, int err)
{
	if (!run_idle_ready) {
		ev_idle_init(&run_idle, run_ready);
		run_idle_ready = true;
	}
	k->err = err;
	k->state = CONT_SCHEDULED;
	list_add_tail(&run_list, &k->link);
	assert(core_loop());
	ev_idle_start(core_loop(), &run_idle);
}

void cont_init(struct cont *k, void (*fn)(struct cont *k, int err), const char *what)
{
	k->fn = fn;
	k->what = what;
	k->err = 0;
	k->state = CONT_IDLE;
	list_node_init(&k->link);
}

void waitq_init(struct waitq *q, const char *name)
{
	list_init(&q->waiters);
	q->name = name;
}

void waitq_park(struct waitq *q, struct cont *k)
{
	assert(k->state == CONT_IDLE);
	k->state = CONT_PARKED;
	list_add_tail(&q->waiters, &k->link);
}

void waitq_wake_all(struct waitq *q, int err)
{
	while (!list_empty(&q->waiters)) {
		struct list_node *n = list_first(&q->waiters);
		struct cont *k = container_of(n, struct cont, link);
		list_del(n);
		schedule(k, err);
	}
}

void cont_post(struct cont *k, int err)
{
	assert(k->state == CONT_IDLE);
	schedule(k, err);
}

void cont_cancel(struct cont *k)
{
	if (k->state != CONT_IDLE)
		list_del(&k->link);
	k->state = CONT_IDLE;
}

bool cont_is_pending(const struct cont *k)
{
	return k->state != CONT_IDLE;
}

void cont_for_each_scheduled(void (*fn)(const struct cont *k, void *data), void *data)
{
	list_for_each(pos, &run_list)
		fn(container_of(pos, struct cont, link), data);
}

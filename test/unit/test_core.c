/* Unit tests for core/: errors, buffers, lists, continuations. */
#include <errno.h>
#include <string.h>

#include "core/buf.h"
#include "core/cont.h"
#include "core/err.h"
#include "core/list.h"
#include "core/loop.h"
#include "test/unit/unit.h"

TEST(test_errf_appends_strerror)
{
	struct cv_error err;
	cv_error_reset(&err);
	CHECK(!cv_error_is_set(&err));
	CHECK(cv_errf(&err, ENOENT, "opening %s", "/x") == -1);
	CHECK_STR(err.msg, "opening /x: No such file or directory");
	CHECK(err.code == ENOENT);
	CHECK(cv_errf(&err, 0, "plain") == -1);
	CHECK_STR(err.msg, "plain");
	CHECK(err.code == 0);
	CHECK(cv_errf(NULL, 0, "no target") == -1);
}

TEST(test_error_wrap)
{
	struct cv_error err;
	cv_errf(&err, 0, "no such process");
	cv_error_wrap(&err, "signaling PID %d", 7);
	CHECK_STR(err.msg, "signaling PID 7: no such process");
}

TEST(test_errf_truncates_long_messages)
{
	struct cv_error err;
	char big[4000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cv_errf(&err, EPERM, "%s", big);
	CHECK(strlen(err.msg) == CV_ERROR_MAX - 1);
}

TEST(test_buf_append_consume)
{
	struct buf b;
	buf_init(&b);
	CHECK(buf_pending(&b) == 0);
	for (int i = 0; i < 1000; i++)
		CHECK(buf_append(&b, "0123456789", 10) == 0);
	CHECK(buf_pending(&b) == 10000);
	buf_consume(&b, 9995);
	CHECK(buf_pending(&b) == 5);
	CHECK(memcmp(buf_head(&b), "56789", 5) == 0);
	/* Appending after a consumed prefix reuses the space. */
	size_t cap = b.cap;
	for (int i = 0; i < 900; i++)
		buf_append(&b, "abcdefghij", 10);
	CHECK(b.cap == cap);
	CHECK(memcmp(buf_head(&b), "56789abcde", 10) == 0);
	buf_consume(&b, buf_pending(&b));
	CHECK(b.len == 0 && b.off == 0);
	buf_free(&b);
	CHECK(b.data == NULL);
}

struct item {
	int v;
	struct list_node link;
};

TEST(test_list)
{
	struct list_head h;
	list_init(&h);
	CHECK(list_empty(&h));
	struct item a = { .v = 1 }, b = { .v = 2 }, c = { .v = 3 };
	list_add_tail(&h, &a.link);
	list_add_tail(&h, &b.link);
	list_add_tail(&h, &c.link);
	int sum = 0, order = 0;
	list_for_each(n, &h) {
		struct item *it = container_of(n, struct item, link);
		order = order * 10 + it->v;
		sum += it->v;
	}
	CHECK(sum == 6 && order == 123);
	list_for_each_safe(n, tmp, &h) {
		struct item *it = container_of(n, struct item, link);
		if (it->v == 2)
			list_del(n);
	}
	CHECK(!list_node_linked(&b.link));
	order = 0;
	list_for_each(n, &h) order = order * 10 + container_of(n, struct item, link)->v;
	CHECK(order == 13);
}

static int ran_order;
static int ran_err;

static void record(struct cont *k, int err)
{
	(void)k;
	ran_order = ran_order * 10 + (err > 0 ? err : 9);
	ran_err = err;
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void run_loop_briefly(void)
{
	ev_timer t;
	ev_timer_init(&t, stop_loop, 0.05, 0);
	ev_timer_start(core_loop(), &t);
	ev_run(core_loop(), 0);
	ev_timer_stop(core_loop(), &t);
}

TEST(test_waitq_wakes_from_loop_not_inline)
{
	struct cv_error err;
	CHECK(core_loop_init(&err) == 0);
	struct waitq q;
	waitq_init(&q, "test");
	struct cont a, b, c;
	cont_init(&a, record, "a");
	cont_init(&b, record, "b");
	cont_init(&c, record, "c");
	waitq_park(&q, &a);
	waitq_park(&q, &b);
	waitq_park(&q, &c);
	CHECK(cont_is_pending(&b));
	cont_cancel(&b);
	CHECK(!cont_is_pending(&b));
	cont_cancel(&b); /* safe twice */
	ran_order = 0;
	waitq_wake_all(&q, 4);
	CHECK(ran_order == 0); /* nothing ran inline */
	CHECK(list_empty(&q.waiters));
	run_loop_briefly();
	CHECK(ran_order == 44);
	CHECK(ran_err == 4);
}

TEST(test_cont_post_and_cancel_scheduled)
{
	struct cv_error err;
	CHECK(core_loop_init(&err) == 0);
	struct cont a, b;
	cont_init(&a, record, "a");
	cont_init(&b, record, "b");
	ran_order = 0;
	cont_post(&a, 1);
	cont_post(&b, 2);
	cont_cancel(&a); /* unschedules */
	run_loop_briefly();
	CHECK(ran_order == 2);
	CHECK(!cont_is_pending(&a) && !cont_is_pending(&b));
}

UNIT_MAIN(test_errf_appends_strerror, test_error_wrap, test_errf_truncates_long_messages,
	  test_buf_append_consume, test_list, test_waitq_wakes_from_loop_not_inline,
	  test_cont_post_and_cancel_scheduled)

/* Unit tests for core/: errors, buffers, lists, continuations, passwd. */
#include <errno.h>
#include <string.h>

#include "core/buf.h"
#include "core/cont.h"
#include "core/err.h"
#include "core/list.h"
#include "core/loop.h"
#include "core/passwd.h"
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

TEST(test_passwd_split_keeps_empty_fields)
{
	char line[] = "root::0:0::/root:/bin/sh";
	char *f[PASSWD_NFIELDS];
	CHECK(passwd_split(line, f) == 7);
	CHECK_STR(f[PASSWD_NAME], "root");
	CHECK_STR(f[PASSWD_PASSWORD], "");
	CHECK_STR(f[PASSWD_UID], "0");
	CHECK_STR(f[PASSWD_GID], "0");
	CHECK_STR(f[PASSWD_GECOS], "");
	CHECK_STR(f[PASSWD_HOME], "/root");
	CHECK_STR(f[PASSWD_SHELL], "/bin/sh");

	char short_line[] = "a:x:1";
	CHECK(passwd_split(short_line, f) == 3);
	CHECK_STR(f[PASSWD_UID], "1");
	CHECK_STR(f[PASSWD_HOME], "");
	CHECK_STR(f[PASSWD_SHELL], "");

	char extra[] = "a:x:1:1::/h:/bin/sh:more";
	CHECK(passwd_split(extra, f) == 7);
	CHECK_STR(f[PASSWD_SHELL], "/bin/sh:more");
}

TEST(test_passwd_line_is_uid)
{
	char *f[PASSWD_NFIELDS];
	char a[] = "alice::1000:1000::/home/alice:";
	CHECK(passwd_line_is_uid(a, 1000, f));
	CHECK_STR(f[PASSWD_HOME], "/home/alice");
	/* The gid is not the uid: with empty fields skipped it would be. */
	char b[] = "bob::0:1000::/:";
	CHECK(!passwd_line_is_uid(b, 1000, f));
	char c[] = "carol:x:abc:0::/:";
	CHECK(!passwd_line_is_uid(c, 0, f));
	char d[] = "dave:x::0::/:";
	CHECK(!passwd_line_is_uid(d, 0, f));
	char e[] = "erin:x:7:7:Erin"; /* no home field: not an entry */
	CHECK(!passwd_line_is_uid(e, 7, f));
	char g[] = "gus:x:4294967296:0::/:";
	CHECK(!passwd_line_is_uid(g, 0, f));
}

TEST(test_passwd_find_uid)
{
	char text[] = "root::0:0::/root:/bin/sh\n"
		      "\n"
		      "bob::0:1000::/home/bob:\n"
		      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";
	char *f[PASSWD_NFIELDS];
	char t1[sizeof(text)];
	memcpy(t1, text, sizeof(text));
	CHECK(passwd_find_uid(t1, 0, f));
	CHECK_STR(f[PASSWD_NAME], "root");
	memcpy(t1, text, sizeof(text));
	CHECK(passwd_find_uid(t1, 65534, f)); /* last line, no newline */
	CHECK_STR(f[PASSWD_NAME], "nobody");
	CHECK_STR(f[PASSWD_HOME], "/nonexistent");
	memcpy(t1, text, sizeof(text));
	CHECK(!passwd_find_uid(t1, 1000, f));
	char empty[] = "";
	CHECK(!passwd_find_uid(empty, 0, f));
}

UNIT_MAIN(test_errf_appends_strerror, test_error_wrap, test_errf_truncates_long_messages,
	  test_buf_append_consume, test_list, test_waitq_wakes_from_loop_not_inline,
	  test_cont_post_and_cancel_scheduled, test_passwd_split_keeps_empty_fields,
	  test_passwd_line_is_uid, test_passwd_find_uid)

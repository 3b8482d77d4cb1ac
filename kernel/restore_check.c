/* The state file's checker thread (kernel/restore_check.h). It touches
 * nothing but its own reader and its own result: the main thread reads
 * the result only after joining it. */
#include "kernel/restore_check.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/state.h"

struct restore_check {
	pthread_t thread;
	struct sf_fd_reader *fr;
	int rc;
	struct cv_error err;
	atomic_bool refused; /* set once rc and err are final and say no */
};

/* CVISOR_RESTORE_CHECK_DELAY_MS (tests only, at most 10 s): the checker
 * reports that much later, so that a test sees the rebuilt processes wait
 * for it (without the wait they would run, and write, meanwhile). */
static void test_delay(void)
{
	const char *s = getenv("CVISOR_RESTORE_CHECK_DELAY_MS");
	long ms = s ? strtol(s, NULL, 10) : 0;
	if (ms > 0 && ms <= 10000) {
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static void *check_main(void *arg)
{
	struct restore_check *c = arg;
	c->rc = sf_fd_reader_run(c->fr, NULL, NULL, &c->err);
	test_delay();
	atomic_store(&c->refused, c->rc != 0);
	return NULL;
}

bool restore_check_refused(const struct restore_check *c)
{
	return atomic_load(&c->refused);
}

struct restore_check *restore_check_start(int fd, struct cv_error *err)
{
	struct restore_check *c = calloc(1, sizeof(*c));
	if (!c) {
		cv_errf(err, ENOMEM, "the state file's checker");
		return NULL;
	}
	if (!(c->fr = sf_fd_reader_create(fd, true, err))) {
		free(c);
		return NULL;
	}
	int e = pthread_create(&c->thread, NULL, check_main, c);
	if (e != 0) {
		cv_errf(err, e, "starting the state file's checker thread");
		sf_fd_reader_free(c->fr);
		free(c);
		return NULL;
	}
	return c;
}

int restore_check_finish(struct restore_check *c, struct cv_error *err)
{
	int e = pthread_join(c->thread, NULL);
	int rc = e ? cv_errf(err, e, "waiting for the state file's checker thread") : c->rc;
	if (!e && rc != 0) {
		*err = c->err;
		rc = -1;
	}
	sf_fd_reader_free(c->fr);
	free(c);
	return rc;
}

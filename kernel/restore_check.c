/* The state file's checker thread (kernel/restore_check.h). It touches
 * nothing but its own reader and its own result: the main thread reads
 * the result only after joining it. */
#include "kernel/restore_check.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

struct restore_check {
	pthread_t thread;
	struct sf_fd_reader *fr;
	int rc;
	struct cv_error err;
};

static void *check_main(void *arg)
{
	struct restore_check *c = arg;
	c->rc = sf_fd_reader_run(c->fr, NULL, NULL, &c->err);
	return NULL;
}

struct restore_check *restore_check_start(int fd, struct cv_error *err)
{
	struct restore_check *c = calloc(1, sizeof(*c));
	if (!c) {
		cv_errf(err, ENOMEM, "the state file's checker");
		return NULL;
	}
	if (!(c->fr = sf_fd_reader_create(fd, err))) {
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

/* The process's one libev loop (core/loop.h). */
#include "core/loop.h"

static struct ev_loop *the_loop;

int core_loop_init(struct cv_error *err)
{
	if (the_loop)
		return 0;
	/* EVFLAG_NOSIGMASK: we use signalfd, libev must not touch the mask. */
	the_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (!the_loop)
		the_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!the_loop)
		return cv_errf(err, 0, "creating the event loop failed");
	return 0;
}

struct ev_loop *core_loop(void)
{
	return the_loop;
}

void core_loop_destroy(void)
{
	if (the_loop) {
		ev_loop_destroy(the_loop);
		the_loop = NULL;
	}
}

/* Containers of the sandbox: registry and runtime state. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/gofer_conn.h"
#include "kernel/model.h"
#include "kernel/seccheck.h"

struct container *sandbox_find_container(struct sandbox *sb, const char *id)
{
	if (!id)
		return NULL;
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		if (strcmp(c->id, id) == 0)
			return c;
	}
	return NULL;
}

struct container *container_new(struct sandbox *sb, const char *id, msgpack_zone *zone,
				struct cv_error *err)
{
	struct container *c = calloc(1, sizeof(*c));
	if (!c || !(c->id = strdup(id))) {
		free(c);
		cv_errf(err, ENOMEM, "creating container \"%s\"", id);
		return NULL;
	}
	c->sb = sb;
	c->zone = zone;
	c->cg.v2_dirfd = -1;
	c->tty_fd = -1;
	c->gofer_fd = -1;
	list_init(&c->tasks);
	spawner_init(&c->spawner, NULL);
	list_add_tail(&sb->containers, &c->link);
	return c;
}

void container_free(struct container *c)
{
	while (!list_empty(&c->tasks))
		task_free(container_of(list_first(&c->tasks), struct task, link));
	if (c->init)
		task_free(c->init);
	/* After the tasks: none is queued on it any more. */
	spawner_destroy(&c->spawner);
	seccheck_container_gone(c);
	if (c->cg_made) {
		struct cv_error err;
		if (cgroup_destroy(&c->cg, &err) < 0)
			cgroup_close(&c->cg);
	}
	gofer_unwatch(c);
	if (c->tty_fd >= 0)
		close(c->tty_fd);
	if (c->zone)
		msgpack_zone_free(c->zone);
	list_del(&c->link);
	free(c->id);
	free(c);
}

enum runtime_state container_runtime_state(const struct container *c)
{
	/* A registered subcontainer not started yet is being created, as in
	 * runsc; one that failed to start or is being destroyed is stopped. */
	if (c && c->is_sub && !c->init && !c->sub_failed && !c->destroying)
		return RUNTIME_STATE_CREATING;
	if (!c || !c->init || c->destroying)
		return RUNTIME_STATE_STOPPED;
	switch (c->init->state) {
	case TASK_CREATED:
	case TASK_STARTING:
		return c->init->start_failed ? RUNTIME_STATE_STOPPED : RUNTIME_STATE_CREATING;
	case TASK_RUNNING:
		return RUNTIME_STATE_RUNNING;
	case TASK_EXITED:
		return RUNTIME_STATE_STOPPED;
	}
	return RUNTIME_STATE_INVALID;
}

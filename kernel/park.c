/* Parked RPC calls (kernel/park.h). */
#include "kernel/park.h"

#include <stdlib.h>

#include "core/mpk.h"

struct parked {
	struct cont k;
	struct rpc_call *call;
	struct task *t;
	park_done_fn done;
};

static void parked_run(struct cont *k, int err)
{
	struct parked *p = container_of(k, struct parked, k);
	struct task *t = p->t;
	p->done(p->call, t, err); /* answers (and so frees) the call */
	free(p);
	task_unref(t);
}

static void parked_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct parked *p = data;
	struct task *t = p->t;
	cont_cancel(&p->k);
	free(p);
	task_unref(t);
}

int park_call(struct rpc_call *call, struct task *t, struct waitq *q, park_done_fn done,
	      const char *what)
{
	struct parked *p = calloc(1, sizeof(*p));
	if (!p) {
		rpc_fail(call, "out of memory parking %s", what);
		return -1;
	}
	cont_init(&p->k, parked_run, what);
	p->call = call;
	p->t = t;
	p->done = done;
	task_ref(t);
	waitq_park(q, &p->k);
	rpc_call_set_cancel(call, parked_cancel, p);
	return 0;
}

int arg_string(struct rpc_call *call, const msgpack_object *arg, char **out)
{
	struct cv_error err;
	cv_error_reset(&err);
	if (mpk_decode_str(arg, "cid", rpc_call_zone(call), out, &err) < 0) {
		rpc_fail_err(call, &err);
		return -1;
	}
	return 0;
}

struct container *arg_container(struct rpc_call *call, const msgpack_object *arg, char **cid)
{
	char *id = NULL;
	if (arg_string(call, arg, &id) < 0)
		return NULL;
	if (cid)
		*cid = id;
	struct container *c = sandbox_find_container(rpc_call_ctx(call), id);
	if (!c)
		rpc_fail(call, "container \"%s\" not found", id);
	return c;
}

/* Chunked visits of the sandbox's processes (kernel/pidscan.h). */
#include "kernel/pidscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long elapsed_ns(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)(t.tv_sec - t0->tv_sec) * 1000000000LL + (t.tv_nsec - t0->tv_nsec);
}

static void pidscan_drop(struct pidscan *s)
{
	free(s->pids);
	free(s->owners);
	s->pids = NULL;
	s->owners = NULL;
	s->n = s->next = 0;
}

static enum chunk_step pidscan_step(struct chunk *ch)
{
	struct pidscan *s = container_of(ch, struct pidscan, ch);
	if (!s->visited) {
		size_t end = s->next + PIDSCAN_CHUNK < s->n ? s->next + PIDSCAN_CHUNK : s->n;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (s->next < end) {
			size_t i = s->next++;
			if (!s->visit(s, s->owners[i], s->pids[i])) {
				s->next = s->n;
				break;
			}
			/* On a loaded host 64 visits can take far longer than
			 * usual: the time budget bounds the slice as well. */
			if (elapsed_ns(&t0) >= PIDSCAN_SLICE_NS)
				break;
		}
		if (s->next < s->n)
			return CHUNK_MORE;
		s->visited = true;
		pidscan_drop(s);
		/* The follow-up starts on the next turn: this one did a slice. */
		return CHUNK_MORE;
	}
	/* end answers the call (clearing its cancel hook with it) and may
	 * free s when it returns CHUNK_DONE. */
	return s->end(s, false);
}

static void pidscan_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct pidscan *s = data;
	chunk_cancel(&s->ch);
	pidscan_drop(s);
	s->end(s, true);
}

static int snapshot_add(struct pidscan *s, struct container *c, size_t *cap, struct cv_error *err)
{
	pid_t *pids = NULL;
	size_t np = 0;
	struct cv_error e;
	if (cgroup_pids(&c->cg, &pids, &np, &e) < 0)
		return 0; /* the cgroup is gone: it has no processes */
	if (s->n + np > *cap) {
		size_t ncap = *cap ? *cap : 64;
		while (ncap < s->n + np)
			ncap *= 2;
		pid_t *p2 = realloc(s->pids, ncap * sizeof(*p2));
		if (p2)
			s->pids = p2;
		struct container **o2 = p2 ? realloc(s->owners, ncap * sizeof(*o2)) : NULL;
		if (o2)
			s->owners = o2;
		if (!p2 || !o2) {
			free(pids);
			return cv_errf(err, ENOMEM, "listing the processes of \"%s\"", c->id);
		}
		*cap = ncap;
	}
	for (size_t i = 0; i < np; i++) {
		s->pids[s->n] = pids[i];
		s->owners[s->n++] = c;
	}
	free(pids);
	return 0;
}

int pidscan_start(struct pidscan *s, struct rpc_call *call, struct sandbox *sb,
		  struct container *only, pidscan_visit_fn visit, pidscan_end_fn end,
		  const char *what, struct cv_error *err)
{
	s->call = call;
	s->sb = sb;
	s->pids = NULL;
	s->owners = NULL;
	s->n = s->next = 0;
	s->visited = false;
	s->visit = visit;
	s->end = end;
	size_t cap = 0;
	list_for_each(node, &sb->containers) {
		struct container *c = container_of(node, struct container, link);
		if ((only && c != only) || !c->cg_made)
			continue;
		if (snapshot_add(s, c, &cap, err) < 0) {
			pidscan_drop(s);
			return -1;
		}
	}
	chunk_start(&s->ch, pidscan_step, what);
	rpc_call_set_cancel(call, pidscan_cancel, s);
	return 0;
}

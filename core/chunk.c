/* Chunked work (core/chunk.h). */
#include "core/chunk.h"

static void chunk_run(struct cont *k, int err)
{
	(void)err;
	struct chunk *ch = container_of(k, struct chunk, k);
	/* After CHUNK_DONE ch may be freed: touch nothing. */
	if (ch->step(ch) == CHUNK_MORE)
		cont_post(&ch->k, 0);
}

void chunk_start(struct chunk *ch, enum chunk_step (*step)(struct chunk *ch), const char *what)
{
	cont_init(&ch->k, chunk_run, what);
	ch->step = step;
	cont_post(&ch->k, 0);
}

void chunk_cancel(struct chunk *ch)
{
	cont_cancel(&ch->k);
}

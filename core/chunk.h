#pragma once
/* Work done in slices from the loop (docs/DESIGN.md, "The reactor": nothing may do unbounded
 * work in one callback). A chunked job runs one bounded slice per turn of
 * the loop: each slice ends by reposting the job's continuation, which
 * runs from cont.c's ev_idle hook, so every I/O event that became ready in
 * between (other clients' calls) is served before the next slice. */
#include "core/cont.h"

enum chunk_step {
	CHUNK_MORE, /* run another slice on a later turn of the loop */
	CHUNK_DONE, /* the job ended inside step (it may have freed itself) */
};

struct chunk {
	struct cont k;
	enum chunk_step (*step)(struct chunk *ch); /* one bounded slice */
};

/* Schedules the first slice (never runs it inline). */
void chunk_start(struct chunk *ch, enum chunk_step (*step)(struct chunk *ch), const char *what);
/* Unschedules the job; safe whether or not a slice is pending. */
void chunk_cancel(struct chunk *ch);

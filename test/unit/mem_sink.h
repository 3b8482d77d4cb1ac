#pragma once
/* A growable in-memory sink for the state writer (sf_writer_create), shared
 * by the state file's unit tests and fuzz targets: a whole file in memory
 * to read back, cut or damage. The caller frees p. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct mem {
	unsigned char *p;
	size_t len, cap;
};

static inline int mem_sink(void *opaque, const void *p, size_t n, struct cv_error *err)
{
	struct mem *m = opaque;
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1 << 16;
		while (cap < m->len + n)
			cap *= 2;
		unsigned char *q = realloc(m->p, cap);
		if (!q)
			return cv_errf(err, ENOMEM, "mem sink");
		m->p = q;
		m->cap = cap;
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return 0;
}

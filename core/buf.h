#pragma once
/* A growable byte buffer with a consumed prefix (for output queues). */
#include <stddef.h>

struct buf {
	char *data;
	size_t len; /* bytes in data, including the consumed prefix */
	size_t off; /* consumed prefix */
	size_t cap;
};

void buf_init(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n); /* -1 (ENOMEM) on failure */
static inline size_t buf_pending(const struct buf *b) { return b->len - b->off; }
static inline const char *buf_head(const struct buf *b) { return b->data + b->off; }
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

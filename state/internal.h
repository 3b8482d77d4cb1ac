#pragma once
/* What the state/ files share and nobody else sees. */
#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

/* Bytes of input the writer hands to one LZ4F_compressUpdate (its reused
 * output buffer holds the compress bound of that). */
#define SF_SLICE (1u << 20)
/* Decompressed bytes the reader holds at a time: one whole block (the
 * writer's 1 MiB blocks), so that LZ4F decodes straight into it instead
 * of through its own buffer and a copy. */
#define SF_READ_SLICE (1u << 20)
/* Bytes read from an fd at a time (fdio.c). */
#define SF_FD_CHUNK (256u << 10)

/* Checks that p[0..n) holds exactly one complete, well-formed msgpack
 * object nested at most max_depth deep and made of at most SF_RECORD_ITEMS
 * items, without allocating anything.
 * Why: msgpack-c sizes an array's or map's element table from the count in
 * its header before any element arrives; once every declared element is
 * known to be backed by real bytes, what it allocates is bounded by n.
 * 0, or -1 with err saying what is wrong (what names the object). */
int sf_mp_check(const unsigned char *p, size_t n, unsigned max_depth, const char *what,
		struct cv_error *err);
/* Items (scalars and containers) one record or the metadata may hold:
 * msgpack-c spends a 24-byte object on each, so this bounds a decoded
 * record at 1.5 MiB however its bytes are spent. */
#define SF_RECORD_ITEMS 65536u

/* The fields the reader requires of a record of kind k (docs/STATEFILE.md),
 * and whether it may, must or must not announce a data run. index numbers
 * the record in messages. */
int sf_kind_check(enum sf_kind k, const msgpack_object *rec, uint64_t data_len, uint64_t index,
		  struct cv_error *err);

/* Fields at the top of one record or of the metadata. */
#define SF_FIELDS_MAX 256u
/* The top-level keys of map must be strings, at most SF_FIELDS_MAX, and
 * each at most once: a reader that checks the first "pid" and a consumer
 * that uses the last must never disagree. what names the map in errors. */
int sf_check_keys(const msgpack_object *map, const char *what, struct cv_error *err);

/* A string field of map, or NULL if absent or not a string. */
const msgpack_object *sf_map_get(const msgpack_object *map, const char *key);

/* Moves the metadata (and its zone) out of the reader for the caller. */
int sf_reader_take_meta(struct sf_reader *r, msgpack_zone **zone, const msgpack_object **meta,
			struct cv_error *err);

/* CRC-32 as zlib computes it; start with crc 0 (crc32.c). */
uint32_t sf_crc32(uint32_t crc, const void *p, size_t n);

static inline uint64_t sf_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void sf_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

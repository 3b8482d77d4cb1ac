#pragma once
/* msgpack decoding helpers: map a msgpack map onto a C struct through a
 * field table, producing errors that name the field
 * ("ExecArgs.argv: expected array of strings").
 *
 * Everything decoded (strings, arrays) is allocated in the caller's
 * msgpack_zone and freed with it: one owner, freed when the call ends.
 * Strings are NUL-terminated copies; a string containing NUL is refused. */
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum mpk_kind {
	MPK_STR,     /* char *; nil → NULL */
	MPK_BOOL,    /* bool */
	MPK_I32,     /* int32_t  (range-checked) */
	MPK_U32,     /* uint32_t (range-checked, negatives refused) */
	MPK_I64,     /* int64_t */
	MPK_U64,     /* uint64_t */
	MPK_STRV,    /* char ** NULL-terminated + size_t count at count_offset */
	MPK_I32V,    /* int32_t * + count */
	MPK_U32V,    /* uint32_t * + count */
	MPK_OBJ,     /* const msgpack_object * (any value, not copied; lives in the request zone) */
	MPK_STRUCT,  /* nested struct at offset, decoded with `sub` */
	MPK_STRUCTV, /* array of structs: void * (elements of sub->size) + count */
};

#define MPK_REQUIRED 1u /* missing or nil → "<Struct>.<key>: missing" */

#define MPK_NONE ((size_t)-1)

struct mpk_schema;

struct mpk_field {
	const char *key;       /* wire key; matched exactly, then case-insensitively (Go leniency) */
	enum mpk_kind kind;
	size_t offset;         /* where the value goes */
	size_t count_offset;   /* size_t element count for vector kinds, else MPK_NONE */
	size_t has_offset;     /* bool set when the key is present and not nil, or MPK_NONE */
	unsigned flags;
	const struct mpk_schema *sub; /* for MPK_STRUCT / MPK_STRUCTV */
};

struct mpk_schema {
	const char *name;  /* used in error messages: "<name>.<key>: ..." */
	size_t size;       /* sizeof the struct */
	const struct mpk_field *fields;
	size_t nfields;
};

/* Decodes map `obj` into `out` (zeroed first). Unknown keys are ignored.
 * obj must be a map (nil → "<name>: expected map, got nil"). */
int mpk_decode(const msgpack_object *obj, const struct mpk_schema *schema, void *out,
	       msgpack_zone *zone, struct cv_error *err);

/* A lone string argument (e.g. a container ID). `what` names it in errors. */
int mpk_decode_str(const msgpack_object *obj, const char *what, msgpack_zone *zone,
		   char **out, struct cv_error *err);

/* Looks up key in a map (exact, then case-insensitive); NULL if absent. */
const msgpack_object *mpk_map_get(const msgpack_object *map, const char *key);

/* Name of a msgpack type for messages: "nil", "bool", "integer", "string", ... */
const char *mpk_type_name(msgpack_object_type t);

/* Packing helpers for results. */
void mpk_pack_str(msgpack_packer *pk, const char *s); /* NULL → nil */
void mpk_pack_key(msgpack_packer *pk, const char *key);

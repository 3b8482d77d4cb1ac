/* Unit tests for core/mpk.c: field-table decoding and its error messages.
 * Inputs are written as JSON (json-c) and converted to msgpack; cases JSON
 * cannot express (NUL bytes, non-string keys, binary) are packed by hand. */
#include <json.h>
#include <stddef.h>
#include <string.h>

#include "core/mpk.h"
#include "core/util.h"
#include "test/unit/unit.h"

#include "test/unit/mpk_fixture.h"

struct inner {
	uint32_t uid;
	char *name;
};

struct outer {
	char *s;
	bool b;
	int32_t i32;
	uint32_t u32;
	int64_t i64;
	uint64_t u64;
	bool has_u64;
	char **sv;
	size_t n_sv;
	int32_t *iv;
	size_t n_iv;
	uint32_t *uv;
	size_t n_uv;
	const msgpack_object *any;
	struct inner in;
	bool has_in;
	struct inner *list;
	size_t n_list;
	char *req;
};

static const struct mpk_field inner_fields[] = {
	{ "uid", MPK_U32, offsetof(struct inner, uid), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
	{ "name", MPK_STR, offsetof(struct inner, name), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema inner_schema = { "Inner", sizeof(struct inner), inner_fields, 2 };

static const struct mpk_field outer_fields[] = {
	{ "s", MPK_STR, offsetof(struct outer, s), MPK_NONE, MPK_NONE, 0, NULL },
	{ "b", MPK_BOOL, offsetof(struct outer, b), MPK_NONE, MPK_NONE, 0, NULL },
	{ "i32", MPK_I32, offsetof(struct outer, i32), MPK_NONE, MPK_NONE, 0, NULL },
	{ "u32", MPK_U32, offsetof(struct outer, u32), MPK_NONE, MPK_NONE, 0, NULL },
	{ "i64", MPK_I64, offsetof(struct outer, i64), MPK_NONE, MPK_NONE, 0, NULL },
	{ "u64", MPK_U64, offsetof(struct outer, u64), MPK_NONE, offsetof(struct outer, has_u64), 0,
	  NULL },
	{ "sv", MPK_STRV, offsetof(struct outer, sv), offsetof(struct outer, n_sv), MPK_NONE, 0, NULL },
	{ "iv", MPK_I32V, offsetof(struct outer, iv), offsetof(struct outer, n_iv), MPK_NONE, 0, NULL },
	{ "uv", MPK_U32V, offsetof(struct outer, uv), offsetof(struct outer, n_uv), MPK_NONE, 0, NULL },
	{ "any", MPK_OBJ, offsetof(struct outer, any), MPK_NONE, MPK_NONE, 0, NULL },
	{ "inner", MPK_STRUCT, offsetof(struct outer, in), MPK_NONE, offsetof(struct outer, has_in), 0,
	  &inner_schema },
	{ "list", MPK_STRUCTV, offsetof(struct outer, list), offsetof(struct outer, n_list), MPK_NONE,
	  0, &inner_schema },
	{ "Req", MPK_STR, offsetof(struct outer, req), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
};
static const struct mpk_schema outer_schema = { "Outer", sizeof(struct outer), outer_fields,
						ARRAY_SIZE(outer_fields) };

/* Decodes JSON into struct outer; returns mpk_decode's result. */
static int decode_json(const char *json, struct outer *o, struct cv_error *err, struct fx *f)
{
	fx_json(f, json);
	cv_error_reset(err);
	return mpk_decode(&f->obj, &outer_schema, o, f->zone, err);
}

/* Decodes and expects exactly the error message `want`. */
static void expect_err(const char *json, const char *want)
{
	struct fx f;
	struct outer o;
	struct cv_error err;
	CHECK(decode_json(json, &o, &err, &f) < 0);
	CHECK_STR(err.msg, want);
	fx_end(&f);
}

TEST(test_every_kind)
{
	struct fx f;
	struct outer o;
	struct cv_error err;
	int r = decode_json("{\"s\":\"hello\",\"b\":true,\"i32\":-7,\"u32\":4000000000,"
			    "\"i64\":-5000000000,\"u64\":18446744073709551615,"
			    "\"sv\":[\"a\",\"\",\"c\"],\"iv\":[1,-2],\"uv\":[3,4,5],\"any\":{\"x\":1},"
			    "\"inner\":{\"uid\":42,\"name\":\"n\"},"
			    "\"list\":[{\"uid\":1},{\"uid\":2,\"name\":\"two\"}],\"Req\":\"r\","
			    "\"unknown\":[1,2,3]}",
			    &o, &err, &f);
	CHECK(r == 0);
	CHECK_STR(o.s, "hello");
	CHECK(o.b);
	CHECK(o.i32 == -7);
	CHECK(o.u32 == 4000000000u);
	CHECK(o.i64 == -5000000000LL);
	CHECK(o.u64 == UINT64_MAX && o.has_u64);
	CHECK(o.n_sv == 3 && o.sv[3] == NULL);
	CHECK_STR(o.sv[0], "a");
	CHECK_STR(o.sv[1], "");
	CHECK_STR(o.sv[2], "c");
	CHECK(o.n_iv == 2 && o.iv[0] == 1 && o.iv[1] == -2);
	CHECK(o.n_uv == 3 && o.uv[2] == 5);
	CHECK(o.any && o.any->type == MSGPACK_OBJECT_MAP);
	CHECK(o.has_in && o.in.uid == 42);
	CHECK_STR(o.in.name, "n");
	CHECK(o.n_list == 2 && o.list[0].uid == 1 && o.list[0].name == NULL);
	CHECK_STR(o.list[1].name, "two");
	CHECK_STR(o.req, "r");
	fx_end(&f);
}

TEST(test_absent_and_nil)
{
	struct fx f;
	struct outer o;
	struct cv_error err;
	memset(&o, 0xff, sizeof(o)); /* decode must zero it */
	CHECK(decode_json("{\"Req\":\"x\",\"s\":null,\"u64\":null,\"inner\":null,\"sv\":[]}", &o, &err,
			  &f) == 0);
	CHECK(o.s == NULL);
	CHECK(!o.has_u64 && o.u64 == 0);
	CHECK(!o.has_in);
	CHECK(o.n_sv == 0 && o.sv && o.sv[0] == NULL);
	CHECK(o.iv == NULL && o.n_iv == 0);
	fx_end(&f);
	/* nil does not satisfy a required field */
	expect_err("{\"Req\":null}", "Outer.Req: missing");
	expect_err("{}", "Outer.Req: missing");
}

TEST(test_type_errors)
{
	expect_err("{\"Req\":\"x\",\"s\":5}", "Outer.s: expected string, got integer");
	expect_err("{\"Req\":\"x\",\"b\":1}", "Outer.b: expected bool, got integer");
	expect_err("{\"Req\":\"x\",\"i32\":\"1\"}", "Outer.i32: expected integer, got string");
	expect_err("{\"Req\":\"x\",\"u32\":1.5}", "Outer.u32: expected integer, got float");
	expect_err("{\"Req\":\"x\",\"sv\":\"a\"}", "Outer.sv: expected array of strings, got string");
	expect_err("{\"Req\":\"x\",\"sv\":[\"a\",\"b\",\"c\",null]}", "Outer.sv[3]: expected string, got nil");
	expect_err("{\"Req\":\"x\",\"iv\":[1,\"2\"]}", "Outer.iv[1]: expected integer, got string");
	expect_err("{\"Req\":\"x\",\"inner\":[1]}", "Outer.inner: expected map, got array");
	expect_err("{\"Req\":\"x\",\"list\":[{\"uid\":1},7]}", "Outer.list[1]: expected map, got integer");

	struct fx f;
	struct outer o;
	struct cv_error err;
	fx_begin(&f);
	msgpack_pack_array(&f.pk, 0);
	fx_unpack(&f);
	CHECK(mpk_decode(&f.obj, &outer_schema, &o, f.zone, &err) < 0);
	CHECK_STR(err.msg, "Outer: expected map, got array");
	fx_end(&f);
}

TEST(test_ranges)
{
	expect_err("{\"Req\":\"x\",\"u32\":5000000000}", "Outer.u32: value 5000000000 out of range for uint32");
	expect_err("{\"Req\":\"x\",\"u32\":-1}", "Outer.u32: value -1 out of range for uint32");
	expect_err("{\"Req\":\"x\",\"i32\":2147483648}", "Outer.i32: value 2147483648 out of range for int32");
	expect_err("{\"Req\":\"x\",\"i32\":-2147483649}", "Outer.i32: value -2147483649 out of range for int32");
	expect_err("{\"Req\":\"x\",\"u64\":-3}", "Outer.u64: value -3 out of range for uint64");
	expect_err("{\"Req\":\"x\",\"i64\":18446744073709551615}",
		   "Outer.i64: value 18446744073709551615 out of range for int64");
	expect_err("{\"Req\":\"x\",\"uv\":[1,-1]}", "Outer.uv[1]: value -1 out of range for uint32");

	struct fx f;
	struct outer o;
	struct cv_error err;
	CHECK(decode_json("{\"Req\":\"x\",\"i32\":-2147483648,\"u32\":4294967295}", &o, &err, &f) == 0);
	CHECK(o.i32 == INT32_MIN && o.u32 == UINT32_MAX);
	fx_end(&f);
}

TEST(test_nested_paths)
{
	expect_err("{\"Req\":\"x\",\"inner\":{\"name\":\"n\"}}", "Outer.inner.uid: missing");
	expect_err("{\"Req\":\"x\",\"inner\":{\"uid\":\"0\"}}", "Outer.inner.uid: expected integer, got string");
	expect_err("{\"Req\":\"x\",\"list\":[{\"uid\":1},{\"uid\":2},{\"uid\":3,\"name\":4}]}",
		   "Outer.list[2].name: expected string, got integer");
}

TEST(test_case_insensitive_and_last_wins)
{
	struct fx f;
	struct outer o;
	struct cv_error err;
	/* "req" matches "Req" case-insensitively; "S" matches "s". */
	CHECK(decode_json("{\"req\":\"lower\",\"S\":\"upper\"}", &o, &err, &f) == 0);
	CHECK_STR(o.req, "lower");
	CHECK_STR(o.s, "upper");
	fx_end(&f);
	/* An exact match beats a case-insensitive one wherever it is. */
	CHECK(decode_json("{\"Req\":\"exact\",\"REQ\":\"folded\"}", &o, &err, &f) == 0);
	CHECK_STR(o.req, "exact");
	fx_end(&f);

	/* Duplicate keys (only possible in msgpack): the last wins; non-string keys skipped. */
	fx_begin(&f);
	msgpack_pack_map(&f.pk, 4);
	mpk_pack_key(&f.pk, "Req");
	mpk_pack_str(&f.pk, "first");
	msgpack_pack_int(&f.pk, 7);
	mpk_pack_str(&f.pk, "ignored");
	mpk_pack_key(&f.pk, "Req");
	mpk_pack_str(&f.pk, "second");
	mpk_pack_key(&f.pk, "u32");
	msgpack_pack_uint32(&f.pk, 9);
	fx_unpack(&f);
	CHECK(mpk_decode(&f.obj, &outer_schema, &o, f.zone, &err) == 0);
	CHECK_STR(o.req, "second");
	CHECK(o.u32 == 9);
	CHECK(mpk_map_get(&f.obj, "u32") && mpk_map_get(&f.obj, "U32"));
	CHECK(mpk_map_get(&f.obj, "nope") == NULL);
	fx_end(&f);
}

TEST(test_nul_and_binary_refused)
{
	struct fx f;
	struct outer o;
	struct cv_error err;
	fx_begin(&f);
	msgpack_pack_map(&f.pk, 1);
	mpk_pack_key(&f.pk, "Req");
	msgpack_pack_str(&f.pk, 3);
	msgpack_pack_str_body(&f.pk, "a\0b", 3);
	fx_unpack(&f);
	CHECK(mpk_decode(&f.obj, &outer_schema, &o, f.zone, &err) < 0);
	CHECK_STR(err.msg, "Outer.Req: string contains a NUL byte");
	fx_end(&f);

	fx_begin(&f);
	msgpack_pack_map(&f.pk, 1);
	mpk_pack_key(&f.pk, "Req");
	msgpack_pack_bin(&f.pk, 2);
	msgpack_pack_bin_body(&f.pk, "ab", 2);
	fx_unpack(&f);
	CHECK(mpk_decode(&f.obj, &outer_schema, &o, f.zone, &err) < 0);
	CHECK_STR(err.msg, "Outer.Req: expected string, got binary");
	fx_end(&f);
}

TEST(test_vector_bound)
{
	struct fx f;
	struct outer o;
	struct cv_error err;
	/* A header claiming 2^20+1 elements: msgpack-c allocates the objects
	 * but the decoder must refuse before allocating its own copy. */
	fx_begin(&f);
	msgpack_pack_map(&f.pk, 2);
	mpk_pack_key(&f.pk, "Req");
	mpk_pack_str(&f.pk, "x");
	mpk_pack_key(&f.pk, "uv");
	uint32_t n = (1u << 20) + 1;
	msgpack_pack_array(&f.pk, n);
	for (uint32_t i = 0; i < n; i++)
		msgpack_pack_fix_uint8(&f.pk, 1);
	fx_unpack(&f);
	CHECK(mpk_decode(&f.obj, &outer_schema, &o, f.zone, &err) < 0);
	CHECK_STR(err.msg, "Outer.uv: 1048577 elements, at most 1048576 are accepted");
	fx_end(&f);
}

TEST(test_decode_str)
{
	struct fx f;
	struct cv_error err;
	char *s = NULL;
	fx_json(&f, "\"web\"");
	CHECK(mpk_decode_str(&f.obj, "cid", f.zone, &s, &err) == 0);
	CHECK_STR(s, "web");
	fx_end(&f);
	fx_json(&f, "5");
	CHECK(mpk_decode_str(&f.obj, "cid", f.zone, &s, &err) < 0);
	CHECK_STR(err.msg, "cid: expected string, got integer");
	CHECK(s == NULL);
	fx_end(&f);
	fx_json(&f, "null");
	CHECK(mpk_decode_str(&f.obj, "cid", f.zone, &s, &err) < 0);
	CHECK_STR(err.msg, "cid: expected string, got nil");
	fx_end(&f);
}

TEST(test_type_names_and_pack)
{
	CHECK_STR(mpk_type_name(MSGPACK_OBJECT_NIL), "nil");
	CHECK_STR(mpk_type_name(MSGPACK_OBJECT_POSITIVE_INTEGER), "integer");
	CHECK_STR(mpk_type_name(MSGPACK_OBJECT_NEGATIVE_INTEGER), "integer");
	CHECK_STR(mpk_type_name(MSGPACK_OBJECT_MAP), "map");
	struct fx f;
	fx_begin(&f);
	msgpack_pack_array(&f.pk, 2);
	mpk_pack_str(&f.pk, NULL);
	mpk_pack_str(&f.pk, "x");
	fx_unpack(&f);
	CHECK(f.obj.type == MSGPACK_OBJECT_ARRAY && f.obj.via.array.size == 2);
	CHECK(f.obj.via.array.ptr[0].type == MSGPACK_OBJECT_NIL);
	CHECK(f.obj.via.array.ptr[1].type == MSGPACK_OBJECT_STR && f.obj.via.array.ptr[1].via.str.size == 1);
	fx_end(&f);
}

UNIT_MAIN(test_every_kind, test_absent_and_nil, test_type_errors, test_ranges, test_nested_paths,
	  test_case_insensitive_and_last_wins, test_nul_and_binary_refused, test_vector_bound,
	  test_decode_str, test_type_names_and_pack)

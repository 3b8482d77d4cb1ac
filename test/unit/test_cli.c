/* Unit tests for the CLI helpers: json_mp, signal names, container IDs,
 * wait-status and runtime-state mapping, state.json, pretty JSON, escaping
 * of container-controlled text and the UTF-8 helpers (core/utf8.c).
 * cmd/ is not part of libcvisor.a, so the two sources are included here. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "cmd/cli.c"
#include "cmd/json_mp.c"
#include "test/unit/unit.h"

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

TEST(test_json_mp_nested_and_numbers)
{
	const char *text = "{\"a\":{\"b\":[1,-2,3.5,true,false,null,\"x\"]},"
			   "\"u\":\"h\\u00e9llo \xe2\x98\x83\","
			   "\"big\":18446744073709551615,\"max\":9223372036854775807,"
			   "\"min\":-9223372036854775808,\"empty\":{},\"arr\":[]}";
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct cv_error err = { 0 };
	CHECK(json_mp_convert(text, strlen(text), &sb, &err) == 0);
	msgpack_zone *z = msgpack_zone_new(4096);
	msgpack_object o;
	size_t off = 0;
	CHECK(msgpack_unpack(sb.data, sb.size, &off, z, &o) == MSGPACK_UNPACK_SUCCESS);
	CHECK(off == sb.size);
	CHECK(o.type == MSGPACK_OBJECT_MAP && o.via.map.size == 7);
	const msgpack_object *b = get(get(&o, "a"), "b");
	CHECK(b && b->type == MSGPACK_OBJECT_ARRAY && b->via.array.size == 7);
	if (b && b->type == MSGPACK_OBJECT_ARRAY && b->via.array.size == 7) {
		const msgpack_object *e = b->via.array.ptr;
		CHECK(e[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && e[0].via.u64 == 1);
		CHECK(e[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER && e[1].via.i64 == -2);
		CHECK(e[2].type == MSGPACK_OBJECT_FLOAT64 && e[2].via.f64 == 3.5);
		CHECK(e[3].type == MSGPACK_OBJECT_BOOLEAN && e[3].via.boolean);
		CHECK(e[4].type == MSGPACK_OBJECT_BOOLEAN && !e[4].via.boolean);
		CHECK(e[5].type == MSGPACK_OBJECT_NIL);
		CHECK(str_is(&e[6], "x"));
	}
	/* \u00e9 decoded to UTF-8, raw UTF-8 kept byte for byte. */
	CHECK(str_is(get(&o, "u"), "h\xc3\xa9llo \xe2\x98\x83"));
	const msgpack_object *big = get(&o, "big");
	CHECK(big && big->type == MSGPACK_OBJECT_POSITIVE_INTEGER && big->via.u64 == UINT64_MAX);
	const msgpack_object *max = get(&o, "max");
	CHECK(max && max->type == MSGPACK_OBJECT_POSITIVE_INTEGER && max->via.u64 == INT64_MAX);
	const msgpack_object *min = get(&o, "min");
	CHECK(min && min->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && min->via.i64 == INT64_MIN);
	const msgpack_object *em = get(&o, "empty");
	CHECK(em && em->type == MSGPACK_OBJECT_MAP && em->via.map.size == 0);
	const msgpack_object *ar = get(&o, "arr");
	CHECK(ar && ar->type == MSGPACK_OBJECT_ARRAY && ar->via.array.size == 0);
	msgpack_zone_free(z);
	msgpack_sbuffer_destroy(&sb);
}

TEST(test_json_mp_rejects_bad_json)
{
	struct cv_error err = { 0 };
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	CHECK(json_mp_convert("{\"a\":", 5, &sb, &err) < 0);
	CHECK(strstr(err.msg, "unexpected end") != NULL);
	CHECK(json_mp_convert("{\"a\":1} x", 9, &sb, &err) < 0);
	CHECK(strstr(err.msg, "unexpected character at offset 8") != NULL);
	CHECK(json_mp_convert("[1,]", 4, &sb, &err) < 0);
	CHECK(sb.size == 0);
	/* Deep nesting is refused, not a stack overflow. */
	char deep[2 * 300 + 1];
	memset(deep, '[', 300);
	memset(deep + 300, ']', 300);
	deep[600] = '\0';
	int r = json_mp_convert(deep, 600, &sb, &err);
	CHECK(r < 0);
	msgpack_sbuffer_destroy(&sb);
}

TEST(test_signal_parsing)
{
	struct cv_error err = { 0 };
	int s = 0;
	CHECK(cli_parse_signal("KILL", &s, &err) == 0 && s == SIGKILL);
	CHECK(cli_parse_signal("SIGKILL", &s, &err) == 0 && s == SIGKILL);
	CHECK(cli_parse_signal("sigkill", &s, &err) == 0 && s == SIGKILL);
	CHECK(cli_parse_signal("term", &s, &err) == 0 && s == SIGTERM);
	CHECK(cli_parse_signal("9", &s, &err) == 0 && s == 9);
	CHECK(cli_parse_signal("15", &s, &err) == 0 && s == 15);
	CHECK(cli_parse_signal("SIGUSR2", &s, &err) == 0 && s == SIGUSR2);
	CHECK(cli_parse_signal("RTMIN+2", &s, &err) == 0 && s == SIGRTMIN + 2);
	CHECK(cli_parse_signal("FOO", &s, &err) < 0);
	CHECK_STR(err.msg, "unknown signal \"FOO\"");
	CHECK(cli_parse_signal("0", &s, &err) < 0);
	CHECK(cli_parse_signal("65", &s, &err) < 0);
	CHECK(cli_parse_signal("-9", &s, &err) < 0);
	CHECK(cli_parse_signal("", &s, &err) < 0);
	CHECK(cli_parse_signal("SIG", &s, &err) < 0);
	CHECK_STR(cli_signal_name(SIGTERM), "SIGTERM");
	CHECK(cli_signal_name(0) == NULL);
	CHECK(cli_signal_name(200) == NULL);
}

TEST(test_id_validation)
{
	struct cv_error err = { 0 };
	CHECK(cli_validate_id("a", &err) == 0);
	CHECK(cli_validate_id("web-1.x_Y", &err) == 0);
	CHECK(cli_validate_id("0abc", &err) == 0);
	char id[CLI_ID_MAX + 2];
	memset(id, 'a', sizeof(id));
	id[CLI_ID_MAX] = '\0';
	CHECK(cli_validate_id(id, &err) == 0);
	id[CLI_ID_MAX] = 'a';
	id[CLI_ID_MAX + 1] = '\0';
	CHECK(cli_validate_id(id, &err) < 0);
	CHECK(cli_validate_id("", &err) < 0);
	CHECK(cli_validate_id("-a", &err) < 0);
	CHECK(cli_validate_id(".hidden", &err) < 0);
	CHECK(cli_validate_id("..", &err) < 0);
	CHECK(cli_validate_id("a/b", &err) < 0);
	CHECK(cli_validate_id("a b", &err) < 0);
	CHECK_STR(err.msg, "invalid container id \"a b\"");
}

TEST(test_exit_code_and_status)
{
	CHECK(cli_exit_code(0) == 0);
	CHECK(cli_exit_code(7 << 8) == 7);
	CHECK(cli_exit_code(255 << 8) == 255);
	CHECK(cli_exit_code(SIGKILL) == 137);
	CHECK(cli_exit_code(SIGTERM) == 143);
	CHECK(cli_exit_code(SIGSEGV | 0x80) == 128 + SIGSEGV); /* core dumped */
	CHECK_STR(cli_status_name(RUNTIME_STATE_CREATING, false), "created");
	CHECK_STR(cli_status_name(RUNTIME_STATE_RUNNING, false), "running");
	CHECK_STR(cli_status_name(RUNTIME_STATE_RUNNING, true), "paused");
	CHECK_STR(cli_status_name(RUNTIME_STATE_STOPPED, true), "stopped");
	CHECK_STR(cli_status_name(RUNTIME_STATE_INVALID, false), "unknown");
	CHECK_STR(cli_status_name(2, false), "running"); /* the wire's integer */
}

TEST(test_state_round_trip)
{
	char root[] = "/tmp/cvisor-unit-XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	cli_g.root = root;
	struct cv_error err = { 0 };
	struct cli_state st;
	CHECK(cli_state_load("web", &st, &err) < 0);
	CHECK_STR(err.msg, "container \"web\" does not exist");
	CHECK(err.code == ENOENT);

	char dir[256];
	CHECK(cli_sandbox_dir("web", dir, sizeof(dir), &err) == 0);
	CHECK(mkdir(dir, 0700) == 0);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "id", json_object_new_string("web"));
	json_object_object_add(j, "bundle", json_object_new_string("/b"));
	json_object_object_add(j, "pid", json_object_new_int(4242));
	json_object_object_add(j, "cgroupPath", json_object_new_string("cvisor/web"));
	json_object_object_add(j, "paused", json_object_new_boolean(1));
	CHECK(cli_state_save("web", j, &err) == 0);
	json_object_put(j);
	CHECK(cli_state_load("web", &st, &err) == 0);
	CHECK_STR(st.id, "web");
	CHECK_STR(st.bundle, "/b");
	CHECK_STR(st.cgroup_path, "cvisor/web");
	CHECK_STR(st.rootfs, "");
	CHECK(st.pid == 4242);
	CHECK(st.paused);
	cli_state_free(&st);

	char pidf[300];
	snprintf(pidf, sizeof(pidf), "%s/web/pid", root);
	CHECK(cli_write_pid_file(pidf, 1234, &err) == 0);
	char *text = NULL;
	CHECK(cli_read_file(pidf, &text, NULL, &err) == 0);
	CHECK_STR(text, "1234");
	free(text);

	/* Not our boot process: pid 1 is not "cvisor boot ... web". */
	CHECK(!cli_boot_alive(1, "web"));
	CHECK(!cli_boot_alive(0, "web"));

	CHECK(cli_remove_tree(root, &err) == 0);
	struct stat sb;
	CHECK(stat(root, &sb) < 0 && errno == ENOENT);
	CHECK(cli_remove_tree(root, &err) == 0); /* missing is fine */
	cli_g.root = CLI_DEFAULT_ROOT;
}

TEST(test_pretty_print_like_go)
{
	json_object *j = NULL;
	struct cv_error err = { 0 };
	const char *in = "{\"a\":1,\"b\":[true,\"x/y\"],\"c\":{},\"d\":[],\"e\":{\"f\":null}}";
	CHECK(cli_json_parse(in, strlen(in), "test", &j, &err) == 0);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	cli_json_print_pretty(f, j);
	fclose(f);
	CHECK_STR(out, "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    \"x/y\"\n  ],\n  \"c\": {},\n"
		       "  \"d\": [],\n  \"e\": {\n    \"f\": null\n  }\n}\n");
	free(out);
	json_object_put(j);
}

TEST(test_rfc3339nano)
{
	char t[64];
	cli_now_rfc3339nano(t, sizeof(t));
	CHECK(strlen(t) >= 20);
	CHECK(t[4] == '-' && t[10] == 'T' && t[strlen(t) - 1] == 'Z');
	/* Go drops trailing zeros of the fraction. */
	char *dot = strchr(t, '.');
	if (dot)
		CHECK(t[strlen(t) - 2] != '0');
}

/* ---- core/utf8 ---- */

TEST(test_utf8_decode)
{
	uint32_t cp = 0;
	CHECK(utf8_decode((const unsigned char *)"A", 1, &cp) == 1 && cp == 'A');
	CHECK(utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp) == 2 && cp == 0xE9);
	CHECK(utf8_decode((const unsigned char *)"\xe2\x98\x83", 3, &cp) == 3 && cp == 0x2603);
	CHECK(utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp) == 4 &&
	      cp == 0x1F600);
	CHECK(utf8_decode((const unsigned char *)"\xc2\x9b", 2, &cp) == 2 && cp == 0x9B);
	/* Refused: stray continuation, bad leads, overlong, surrogate, too
	 * large, truncated, a lead followed by ASCII. */
	static const char *const bad[] = {
		"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
		"\xff", "\xfe", "\xe2\x98", "\xc3" "A",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(utf8_decode((const unsigned char *)bad[i], strlen(bad[i]), &cp) == 0);
	/* n bounds the read: a valid sequence cut by n is refused. */
	CHECK(utf8_decode((const unsigned char *)"\xe2\x98\x83", 2, &cp) == 0);
}

TEST(test_utf8_sanitize)
{
	char out[64];
	/* Valid text is copied as is. */
	CHECK(utf8_sanitize("h\xc3\xa9llo", 6, out, sizeof(out)) == 6);
	CHECK_STR(out, "h\xc3\xa9llo");
	/* One U+FFFD per bad byte. */
	CHECK(utf8_sanitize("x\xff\xfey", 4, out, sizeof(out)) == 8);
	CHECK_STR(out, "x\xef\xbf\xbd\xef\xbf\xbdy");
	/* comm cut inside a character (15 bytes). */
	CHECK(utf8_sanitize("abcdefghijklmn\xe2", 15, out, sizeof(out)) == 17);
	CHECK_STR(out, "abcdefghijklmn\xef\xbf\xbd");
	/* Truncation keeps whole characters and reports the full length. */
	CHECK(utf8_sanitize("a\xff", 2, out, 3) == 4);
	CHECK_STR(out, "a");
	CHECK(utf8_sanitize("\xc3\xa9\xc3\xa9", 4, out, 4) == 4);
	CHECK_STR(out, "\xc3\xa9");
	/* The result is valid UTF-8 whatever the input. */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)(i ? i : 'z');
	char big[1024];
	size_t n = utf8_sanitize((const char *)all, sizeof(all), big, sizeof(big));
	CHECK(n < sizeof(big) && strlen(big) == n);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = utf8_decode((const unsigned char *)big + i, n - i, &cp);
		CHECK(k > 0);
		i += k ? k : 1;
	}
}

/* ---- escaping for the terminal and JSON ---- */

static char *escape(const char *s, size_t n)
{
	static char buf[512];
	CHECK(cli_escape(s, n, buf, sizeof(buf)) < sizeof(buf));
	return buf;
}

TEST(test_escape_terminal_controls)
{
	/* The attack of the issue: clear the screen, set the title, bell. */
	const char *pwn = "\x1b[2J\x1b]0;PWNED\x07";
	CHECK_STR(escape(pwn, strlen(pwn)), "\\x1b[2J\\x1b]0;PWNED\\x07");
	CHECK_STR(escape("a\tb\nc\rd", 7), "a\\tb\\nc\\rd");
	CHECK_STR(escape("del\x7f", 4), "del\\x7f");
	CHECK_STR(escape("nul\0x", 5), "nul\\x00x");
	/* C1 encoded (CSI U+009B) and raw (8-bit CSI, invalid UTF-8). */
	CHECK_STR(escape("\xc2\x9b" "2J", 4), "\\u009b2J");
	CHECK_STR(escape("\x9b" "2J", 3), "\\x9b2J");
	CHECK_STR(escape("\xff\xfe", 2), "\\xff\\xfe");
	/* Overlong ESC does not sneak through. */
	CHECK_STR(escape("\xc0\x9b", 2), "\\xc0\\x9b");
	/* The backslash is doubled so escapes are unambiguous. */
	CHECK_STR(escape("a\\x1b", 5), "a\\\\x1b");
	/* Printable text and valid UTF-8 pass (U+00A0 and up are not C1). */
	CHECK_STR(escape("sleep h\xc3\xa9 \xe2\x98\x83 \xc2\xa0", 16),
		  "sleep h\xc3\xa9 \xe2\x98\x83 \xc2\xa0");
	/* Truncation never cuts an escape; the full length is reported. */
	char small[6];
	CHECK(cli_escape("ab\x1b", 3, small, sizeof(small)) == 6);
	CHECK_STR(small, "ab");
	CHECK(cli_escape("x", 1, NULL, 0) == 1);
	char *d = cli_escape_dup("\x1b]0;t\x07");
	CHECK_STR(d, "\\x1b]0;t\\x07");
	free(d);
	/* Widths count code points, as the tables pad by them. */
	CHECK(cli_text_width("h\xc3\xa9\xe2\x98\x83") == 3);
}

static char *json_str(const char *s, size_t n)
{
	static char buf[512];
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	cli_json_write_str(f, s, n);
	fclose(f);
	snprintf(buf, sizeof(buf), "%s", out);
	free(out);
	return buf;
}

TEST(test_json_strings_escape_controls)
{
	CHECK_STR(json_str("a\"b\\c/d", 7), "\"a\\\"b\\\\c/d\"");
	CHECK_STR(json_str("\b\f\n\r\t", 5), "\"\\b\\f\\n\\r\\t\"");
	CHECK_STR(json_str("\x1b[2J\x07", 5), "\"\\u001b[2J\\u0007\"");
	CHECK_STR(json_str("\x7f\xc2\x9b", 3), "\"\\u007f\\u009b\"");
	/* Invalid UTF-8 becomes U+FFFD: JSON is Unicode text. */
	CHECK_STR(json_str("x\xff\xfey", 4), "\"x\\ufffd\\ufffdy\"");
	CHECK_STR(json_str("h\xc3\xa9\xe2\x98\x83", 6), "\"h\xc3\xa9\xe2\x98\x83\"");
	/* Embedded NUL (json-c strings carry a length). */
	CHECK_STR(json_str("a\0b", 3), "\"a\\u0000b\"");

	/* Keys are escaped too, compact and pretty forms parse back. */
	json_object *j = json_object_new_object();
	json_object_object_add(j, "k\x1b", json_object_new_string("v\xc2\x9b"));
	json_object *arr = json_object_new_array();
	json_object_array_add(arr, json_object_new_int(1));
	json_object_array_add(arr, json_object_new_string("\x07"));
	json_object_object_add(j, "a", arr);
	for (int pretty = 0; pretty < 2; pretty++) {
		char *out = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);
		cli_json_print(f, j, pretty);
		fclose(f);
		if (!pretty)
			CHECK_STR(out, "{\"k\\u001b\":\"v\\u009b\",\"a\":[1,\"\\u0007\"]}");
		for (size_t i = 0; i < len; i++)
			CHECK((unsigned char)out[i] >= 0x20 || out[i] == '\n');
		json_object *back = NULL;
		struct cv_error err = { 0 };
		CHECK(cli_json_parse(out, len, "test", &back, &err) == 0);
		CHECK_STR(cli_json_str(back, "k\x1b"), "v\xc2\x9b");
		json_object_put(back);
		free(out);
	}
	json_object_put(j);
}

UNIT_MAIN(test_json_mp_nested_and_numbers, test_json_mp_rejects_bad_json, test_signal_parsing,
	  test_id_validation, test_exit_code_and_status, test_state_round_trip,
	  test_pretty_print_like_go, test_rfc3339nano, test_utf8_decode, test_utf8_sanitize,
	  test_escape_terminal_controls, test_json_strings_escape_controls)

/* Unit tests for spec.ociVersion in core/spec.c: SemVer 2.0.0 with major 1
 * is taken, anything else refused (runtime-tools' misc_props gives
 * "invalid"); an absent ociVersion is taken, as by runc and crun. */
#include <json.h>
#include <stdio.h>
#include <string.h>

#include "core/mpk.h"
#include "core/spec.h"
#include "test/unit/unit.h"

#include "test/unit/mpk_fixture.h"

/* Decodes a minimal spec with `version` as ociVersion (NULL: absent);
 * returns oci_spec_decode's result and leaves its message in err. */
static int decode_version(const char *version, struct cv_error *err)
{
	char json[512];
	char v[160] = "";
	if (version)
		snprintf(v, sizeof(v), "\"ociVersion\":\"%s\",", version);
	snprintf(json, sizeof(json),
		 "{%s\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}", v);
	struct fx f;
	struct oci_spec s;
	memset(err, 0, sizeof(*err));
	fx_json(&f, json);
	int r = oci_spec_decode(&f.obj, f.zone, &s, err);
	fx_end(&f);
	return r;
}

TEST(test_semver_1x_is_taken)
{
	static const char *const ok[] = { "1.0.0",        "1.0.2",         "1.0.2-dev",
					  "1.2.0+dev",    "1.0.0-rc.1+b.2", "1.10.100",
					  "1.0.0-alpha-1", "1.0.0-0.3.7",   "1.0.0+001" };
	struct cv_error err;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int r = decode_version(ok[i], &err);
		CHECK(r == 0);
		if (r < 0)
			fprintf(stderr, "  %s: %s\n", ok[i], err.msg);
	}
	CHECK(decode_version(NULL, &err) == 0);
}

TEST(test_not_semver_is_refused)
{
	static const char *const bad[] = { "invalid", "", "1", "1.0", "1.0.0.0", "01.0.0", "1.00.0",
					   "1.0.00", "1.0.0-", "1.0.0-01", "1.0.0-a..b", "1.0.0+",
					   "1.0.0+a_b", "v1.0.0", " 1.0.0", "1.0.0 ", "-1.0.0" };
	struct cv_error err;
	char want[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = decode_version(bad[i], &err);
		CHECK(r < 0);
		snprintf(want, sizeof(want), "spec.ociVersion: \"%s\" is not a SemVer 2.0.0 version",
			 bad[i]);
		CHECK_STR(err.msg, want);
	}
}

TEST(test_other_major_is_refused)
{
	struct cv_error err;
	CHECK(decode_version("2.0.0", &err) < 0);
	CHECK_STR(err.msg, "spec.ociVersion: \"2.0.0\" is not supported (only runtime-spec 1.x is)");
	CHECK(decode_version("0.9.0", &err) < 0);
	CHECK_STR(err.msg, "spec.ociVersion: \"0.9.0\" is not supported (only runtime-spec 1.x is)");
}

UNIT_MAIN(test_semver_1x_is_taken, test_not_semver_is_refused, test_other_major_is_refused)

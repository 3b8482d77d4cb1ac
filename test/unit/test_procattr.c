/* kernel/procattr.c's checks and core/spec.c's decoding of the process
 * fields: ioPriority, scheduler, personality, the session keyring key. */
#include <string.h>

#include "core/spec.h"
#include "kernel/procattr.h"
#include "test/unit/mpk_fixture.h"
#include "test/unit/unit.h"

#define BASE "{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"%s},\"root\":{\"path\":\"r\"}%s}"

/* Decodes BASE with the process extra and top-level extra, then checks:
 * returns 0 or -1 with err set (decode or check). */
static int check(const char *proc, const char *top, struct oci_spec *s, struct cv_error *err)
{
	char json[1024];
	snprintf(json, sizeof(json), BASE, proc, top);
	struct fx f;
	fx_json(&f, json);
	cv_error_reset(err);
	int r = oci_spec_decode(&f.obj, f.zone, s, err);
	if (r == 0)
		r = procattr_check(s, err);
	fx_end(&f);
	return r;
}

TEST(test_process_fields_decode)
{
	struct oci_spec s;
	struct cv_error err;
	char json[1024];
	snprintf(json, sizeof(json), BASE,
		 ",\"ioPriority\":{\"class\":\"IOPRIO_CLASS_RT\",\"priority\":3},"
		 "\"scheduler\":{\"policy\":\"SCHED_DEADLINE\",\"runtime\":1000,\"deadline\":2000,"
		 "\"period\":3000,\"flags\":[\"SCHED_FLAG_RESET_ON_FORK\"]},"
		 "\"selinuxLabel\":\"l\"",
		 ",\"linux\":{\"personality\":{\"domain\":\"LINUX32\",\"flags\":[\"ADDR_NO_RANDOMIZE\"]}},"
		 "\"cvisor.sessionKeyring\":\"c1\"");
	struct fx f;
	fx_json(&f, json);
	CHECK(oci_spec_decode(&f.obj, f.zone, &s, &err) == 0);
	CHECK(s.process.has_io_priority && s.process.io_priority.priority == 3);
	CHECK_STR(s.process.io_priority.class_, "IOPRIO_CLASS_RT");
	CHECK(s.process.has_scheduler && s.process.scheduler.period == 3000);
	CHECK(s.process.scheduler.n_flags == 1);
	CHECK_STR(s.process.selinux_label, "l");
	CHECK(s.linux_.has_personality && s.linux_.personality.n_flags == 1);
	CHECK_STR(s.session_keyring, "c1");
	CHECK(procattr_check(&s, &err) == 0);
	fx_end(&f);
}

TEST(test_process_fields_refused)
{
	struct oci_spec s;
	struct cv_error err;
	CHECK(check(",\"ioPriority\":{\"priority\":1}", "", &s, &err) < 0);
	CHECK(strstr(err.msg, "spec.process.ioPriority.class: missing") != NULL);
	CHECK(check(",\"ioPriority\":{\"class\":\"IOPRIO_CLASS_BE\",\"priority\":-1}", "", &s,
		    &err) < 0);
	CHECK(strstr(err.msg, "spec.process.ioPriority.priority") != NULL);
	CHECK(check(",\"scheduler\":{\"policy\":\"SCHED_RR\",\"priority\":100}", "", &s, &err) < 0);
	CHECK(strstr(err.msg, "spec.process.scheduler.priority") != NULL);
	CHECK(check(",\"scheduler\":{\"policy\":\"SCHED_BATCH\",\"priority\":1}", "", &s, &err) < 0);
	CHECK(check(",\"scheduler\":{\"policy\":\"SCHED_DEADLINE\",\"runtime\":5,\"deadline\":4}", "",
		    &s, &err) < 0);
	CHECK(strstr(err.msg, "SCHED_DEADLINE") != NULL);
	CHECK(check(",\"scheduler\":{\"policy\":\"SCHED_FIFO\",\"priority\":10}", "", &s, &err) == 0);
	CHECK(check("", ",\"linux\":{\"personality\":{\"domain\":\"LINUX\",\"flags\":[\"X\"]}}", &s,
		    &err) < 0);
	CHECK_STR(err.msg, "spec.linux.personality.flags[0]: unknown flag \"X\"");
	CHECK(check("", ",\"linux\":{\"personality\":{\"flags\":[]}}", &s, &err) < 0);
	CHECK(strstr(err.msg, "spec.linux.personality.domain: missing") != NULL);
}

UNIT_MAIN(test_process_fields_decode, test_process_fields_refused)

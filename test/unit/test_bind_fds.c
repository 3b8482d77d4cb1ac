/* Unit tests for kernel/bind_fds.c: donated bind mounts land on the spec's
 * bind mounts in order (type "bind" or a bind/rbind option, never a cgroup
 * mount), and a count that does not match is refused. */
#include <stdlib.h>

#include "core/spec.h"
#include "kernel/spawn.h"
#include "test/unit/unit.h"

#include "test/unit/mpk_fixture.h"

static const char *const config =
	"{\"process\":{\"args\":[\"true\"]},\"root\":{\"path\":\"rootfs\"},"
	"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	"{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"/x\"},"
	"{\"destination\":\"/b\",\"type\":\"none\",\"source\":\"/y\",\"options\":[\"rbind\",\"ro\"]},"
	"{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\","
	"\"options\":[\"bind\"]},"
	"{\"destination\":\"/c\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
	"{\"destination\":\"/d\",\"source\":\"/z\",\"options\":[\"bind\"]}]}";

TEST(test_binds_in_spec_order)
{
	struct fx f;
	fx_json(&f, config);
	struct oci_spec s;
	struct cv_error err = { 0 };
	CHECK(oci_spec_decode(&f.obj, f.zone, &s, &err) == 0);
	const int fds[] = { 10, 11, 12 };
	int *map = NULL;
	CHECK(spawn_bind_fds(&s, fds, 3, &map, &err) == 0);
	CHECK(map != NULL);
	if (map) {
		const int want[] = { -1, 10, 11, -1, -1, 12 };
		for (size_t i = 0; i < ARRAY_SIZE(want); i++)
			CHECK(map[i] == want[i]);
	}
	free(map);
	/* Too few or too many: refused, naming both counts. */
	CHECK(spawn_bind_fds(&s, fds, 2, &map, &err) < 0 && map == NULL);
	CHECK_STR(err.msg, "2 bind mounts were donated, the spec has 3");
	fx_end(&f);
}

TEST(test_no_binds)
{
	struct fx f;
	fx_json(&f, "{\"process\":{\"args\":[\"true\"]},\"root\":{\"path\":\"r\"},"
		    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\"}]}");
	struct oci_spec s;
	struct cv_error err = { 0 };
	CHECK(oci_spec_decode(&f.obj, f.zone, &s, &err) == 0);
	int *map = (int *)1;
	CHECK(spawn_bind_fds(&s, NULL, 0, &map, &err) == 0 && map == NULL);
	fx_end(&f);
}

UNIT_MAIN(test_binds_in_spec_order, test_no_binds)

/* Unit tests for kernel/cgroup_path.c: linux.cgroupsPath resolved as runc
 * does (absolute, relative under the caller's parent, default, systemd). */
#include <stdio.h>
#include <string.h>

#include "kernel/cgroup.h"
#include "test/unit/unit.h"

/* What runc's rule gives a relative path here, computed independently:
 * the parent of our unified cgroup, or our memory cgroup without v2. */
static void expected_parent(char *out, size_t n)
{
	bool v2 = cgroup_v2_root() != NULL;
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[4096];
	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *path = strchr(strchr(line, ':') + 1, ':') + 1;
		bool hit = v2 ? strncmp(line, "0::", 3) == 0 : strstr(line, "memory") != NULL;
		if (!hit)
			continue;
		snprintf(out, n, "%s", path + 1); /* drop the leading "/" */
		if (v2) {
			char *s = strrchr(out, '/');
			if (s)
				*s = '\0';
			else
				out[0] = '\0';
		}
		break;
	}
	if (f)
		fclose(f);
}

static void join(char *out, size_t n, const char *parent, const char *rel)
{
	snprintf(out, n, "%s%s%s", parent, parent[0] ? "/" : "", rel);
}

TEST(test_absolute)
{
	char out[256];
	struct cv_error err;
	CHECK(cgroup_resolve_path("/a/b", "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, "a/b");
	CHECK(cgroup_resolve_path("//a//b/", "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, "a/b");
	CHECK(cgroup_resolve_path("/", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "root cgroup") != NULL);
	CHECK(cgroup_resolve_path("/a/../b", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "linux.cgroupsPath") && strstr(err.msg, "\"..\""));
	CHECK(cgroup_resolve_path("/a/./b", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(cgroup_resolve_path("/abcdef", "c1", false, out, 5, &err) < 0);
}

TEST(test_relative_and_default)
{
	char parent[4096], want[4096 + 64], out[4096 + 64];
	struct cv_error err;
	expected_parent(parent, sizeof(parent));
	join(want, sizeof(want), parent, "x/y");
	CHECK(cgroup_resolve_path("x/y", "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, want);
	/* No cgroupsPath: the container id, relative (runc's default). */
	join(want, sizeof(want), parent, "c1");
	CHECK(cgroup_resolve_path(NULL, "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, want);
	CHECK(cgroup_resolve_path("", "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, want);
	CHECK(cgroup_resolve_path("x/../../y", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "linux.cgroupsPath") != NULL);
	CHECK(cgroup_resolve_path(NULL, "..", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "container id") != NULL);
}

TEST(test_systemd_form)
{
	char out[256];
	struct cv_error err;
	/* --systemd-cgroup: the scope's path (systemd makes it); the path must
	 * be the systemd form, or none for runc's default scope. */
	CHECK(cgroup_resolve_path("machine.slice:libpod:abc", "c1", true, out, sizeof(out), &err) ==
	      0);
	CHECK_STR(out, "machine.slice/libpod-abc.scope");
	CHECK(cgroup_resolve_path(NULL, "c1", true, out, sizeof(out), &err) == 0);
	CHECK_STR(out, "system.slice/cvisor-c1.scope");
	CHECK(cgroup_resolve_path("/a/b", "c1", true, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "--systemd-cgroup expects \"slice:prefix:name\"") != NULL);
	CHECK(cgroup_resolve_path("a/b", "c1", true, out, sizeof(out), &err) < 0);
	char slice[64], unit[64];
	CHECK(cgroup_systemd_names("machine-libpod.slice:libpod:abc", "c1", slice, sizeof(slice),
				   unit, sizeof(unit), &err) == 0);
	CHECK_STR(slice, "machine-libpod.slice");
	CHECK_STR(unit, "libpod-abc.scope");
	CHECK(cgroup_systemd_names(NULL, "c1", slice, sizeof(slice), unit, sizeof(unit), &err) == 0);
	CHECK_STR(slice, "system.slice");
	CHECK_STR(unit, "cvisor-c1.scope");
	CHECK(cgroup_systemd_names("::n", "c1", slice, sizeof(slice), unit, sizeof(unit), &err) == 0);
	CHECK_STR(unit, "n.scope");
	CHECK(cgroup_systemd_names("a.slice:p:n", "c1", slice, 4, unit, sizeof(unit), &err) < 0);
	CHECK(cgroup_systemd_names("a.slice::b.slice", "c1", slice, sizeof(slice), unit,
				   sizeof(unit), &err) < 0);
	CHECK(strstr(err.msg, "not supported") != NULL);
	/* Without the flag the form maps onto the nodes systemd would make. */
	CHECK(cgroup_resolve_path("machine-libpod_pod.slice:p:n", "c1", false, out, sizeof(out),
				  &err) == 0);
	CHECK_STR(out, "machine.slice/machine-libpod_pod.slice/p-n.scope");
	CHECK(cgroup_resolve_path(":p:n", "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, "system.slice/p-n.scope");
	CHECK(cgroup_resolve_path("-.slice::n", "c1", false, out, sizeof(out), &err) == 0);
	CHECK_STR(out, "n.scope");
	CHECK(cgroup_resolve_path("a:b", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "expected \"slice:prefix:name\"") != NULL);
	CHECK(cgroup_resolve_path("machine:p:n", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "must end in \".slice\"") != NULL);
	CHECK(cgroup_resolve_path("a--b.slice:p:n", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(strstr(err.msg, "not a valid slice name") != NULL);
	CHECK(cgroup_resolve_path("m.slice:p:", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(cgroup_resolve_path("m.slice:p:..", "c1", false, out, sizeof(out), &err) < 0);
	CHECK(cgroup_resolve_path("m.slice:p/q:n", "c1", false, out, sizeof(out), &err) < 0);
}

UNIT_MAIN(test_absolute, test_relative_and_default, test_systemd_form)

/* Unit tests for core/spec.c: decoding a realistic config.json (written as
 * JSON, converted to msgpack key for key as the CLI does) and each
 * validation error. */
#include <json.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core/mpk.h"
#include "core/spec.h"
#include "test/unit/unit.h"

#include "test/unit/mpk_fixture.h"

static const char *const config =
	"{\"ociVersion\":\"1.0.2\","
	"\"process\":{\"terminal\":false,\"user\":{\"uid\":1000,\"gid\":1001,\"umask\":18,"
	"\"additionalGids\":[5,6]},"
	"\"args\":[\"sh\",\"-c\",\"echo hi\"],\"env\":[\"PATH=/bin\",\"TERM=xterm\"],\"cwd\":\"/\","
	"\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"effective\":[\"CAP_KILL\"],"
	"\"permitted\":[\"CAP_KILL\"],\"ambient\":[]},"
	"\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":512}],"
	"\"noNewPrivileges\":true,\"oomScoreAdj\":-100},"
	"\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
	"\"hostname\":\"box\","
	"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
	"\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]}],"
	"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/proc/1/ns/net\"},"
	"{\"type\":\"mount\"}],"
	"\"uidMappings\":[{\"containerID\":0,\"hostID\":100000,\"size\":65536}],"
	"\"resources\":{\"memory\":{\"limit\":-1,\"reservation\":1048576},"
	"\"cpu\":{\"shares\":512,\"quota\":50000,\"period\":100000,\"cpus\":\"0-1\"},"
	"\"pids\":{\"limit\":64}},"
	"\"cgroupsPath\":\"/cvisor/x\","
	"\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\",\"/proc/bus\"],"
	"\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
	"\"syscalls\":[{\"names\":[\"mkdir\",\"mkdirat\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38,"
	"\"args\":[{\"index\":1,\"value\":448,\"op\":\"SCMP_CMP_EQ\"}]}]},"
	"\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},"
	"\"rootfsPropagation\":\"private\"},"
	"\"annotations\":{\"org.example/key\":\"value\"}}";

TEST(test_realistic_config)
{
	struct fx f;
	struct oci_spec s;
	struct cv_error err;
	fx_json(&f, config);
	int r = oci_spec_decode(&f.obj, f.zone, &s, &err);
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		fx_end(&f);
		return;
	}
	CHECK_STR(s.oci_version, "1.0.2");
	CHECK(s.has_process && !s.process.terminal);
	CHECK(s.process.user.uid == 1000 && s.process.user.gid == 1001);
	CHECK(s.process.user.has_umask && s.process.user.umask == 18);
	CHECK(s.process.user.n_additional_gids == 2 && s.process.user.additional_gids[1] == 6);
	CHECK(s.process.n_args == 3);
	CHECK_STR(s.process.args[2], "echo hi");
	CHECK(s.process.n_env == 2);
	CHECK_STR(s.process.cwd, "/");
	CHECK(s.process.has_capabilities && s.process.capabilities.n_bounding == 2);
	CHECK_STR(s.process.capabilities.bounding[1], "CAP_CHOWN");
	CHECK(s.process.capabilities.n_ambient == 0 && s.process.capabilities.n_inheritable == 0);
	CHECK(s.process.n_rlimits == 1 && s.process.rlimits[0].hard == 1024 &&
	      s.process.rlimits[0].soft == 512);
	CHECK_STR(s.process.rlimits[0].type, "RLIMIT_NOFILE");
	CHECK(s.process.no_new_privileges);
	CHECK(s.process.has_oom_score_adj && s.process.oom_score_adj == -100);
	CHECK(s.has_root && s.root.readonly);
	CHECK_STR(s.root.path, "rootfs");
	CHECK_STR(s.hostname, "box");
	CHECK(s.domainname == NULL);
	CHECK(s.n_mounts == 2 && s.mounts[1].n_options == 4);
	CHECK_STR(s.mounts[1].options[3], "size=65536k");
	CHECK_STR(s.mounts[0].type, "proc");
	CHECK(s.has_linux && s.linux_.n_namespaces == 3);
	CHECK_STR(s.linux_.namespaces[1].path, "/proc/1/ns/net");
	CHECK(s.linux_.namespaces[0].path == NULL);
	CHECK(s.linux_.n_uid_mappings == 1 && s.linux_.uid_mappings[0].host_id == 100000 &&
	      s.linux_.uid_mappings[0].size == 65536);
	CHECK(s.linux_.n_gid_mappings == 0);
	const struct oci_resources *res = &s.linux_.resources;
	CHECK(s.linux_.has_resources && res->has_memory && res->memory.has_limit &&
	      res->memory.limit == -1);
	CHECK(res->memory.has_reservation && res->memory.reservation == 1048576 && !res->memory.has_swap);
	CHECK(res->has_cpu && res->cpu.shares == 512 && res->cpu.quota == 50000 &&
	      res->cpu.period == 100000);
	CHECK_STR(res->cpu.cpus, "0-1");
	CHECK(res->cpu.mems == NULL);
	CHECK(res->has_pids && res->pids.has_limit && res->pids.limit == 64);
	CHECK_STR(s.linux_.cgroups_path, "/cvisor/x");
	CHECK(s.linux_.n_masked_paths == 1 && s.linux_.n_readonly_paths == 2);
	CHECK(s.linux_.has_seccomp);
	CHECK_STR(s.linux_.seccomp.default_action, "SCMP_ACT_ALLOW");
	CHECK(s.linux_.seccomp.n_syscalls == 1 && s.linux_.seccomp.syscalls[0].n_names == 2);
	CHECK(s.linux_.seccomp.syscalls[0].has_errno_ret && s.linux_.seccomp.syscalls[0].errno_ret == 38);
	CHECK(s.linux_.seccomp.syscalls[0].n_args == 1 && s.linux_.seccomp.syscalls[0].args[0].index == 1 &&
	      s.linux_.seccomp.syscalls[0].args[0].value == 448);
	CHECK_STR(s.linux_.seccomp.syscalls[0].args[0].op, "SCMP_CMP_EQ");
	CHECK(s.linux_.sysctl && s.linux_.sysctl->type == MSGPACK_OBJECT_MAP);
	CHECK_STR(s.linux_.rootfs_propagation, "private");
	CHECK(s.annotations && s.annotations->type == MSGPACK_OBJECT_MAP);
	fx_end(&f);
}

/* Replaces the first occurrence of `from` in the config by `to`, decodes,
 * and expects the error `want`. */
static void expect_err(const char *from, const char *to, const char *want)
{
	char json[8192];
	const char *at = strstr(config, from);
	CHECK(at != NULL);
	if (!at)
		return;
	snprintf(json, sizeof(json), "%.*s%s%s", (int)(at - config), config, to, at + strlen(from));
	struct fx f;
	struct oci_spec s;
	struct cv_error err;
	fx_json(&f, json);
	CHECK(oci_spec_decode(&f.obj, f.zone, &s, &err) < 0);
	CHECK_STR(err.msg, want);
	fx_end(&f);
}

TEST(test_type_errors_name_the_field)
{
	expect_err("\"args\":[\"sh\",\"-c\",\"echo hi\"]", "\"args\":\"sh\"",
		   "spec.process.args: expected array of strings, got string");
	expect_err("\"uid\":1000", "\"uid\":-1", "spec.process.user.uid: value -1 out of range for uint32");
	expect_err("\"limit\":-1", "\"limit\":\"big\"",
		   "spec.linux.resources.memory.limit: expected integer, got string");
	expect_err("\"hard\":1024", "\"hard\":true", "spec.process.rlimits[0].hard: expected integer, got bool");
	expect_err("{\"type\":\"mount\"}", "{\"path\":\"/x\"}", "spec.linux.namespaces[2].type: missing");
	expect_err("\"op\":\"SCMP_CMP_EQ\"", "\"op\":3",
		   "spec.linux.seccomp.syscalls[0].args[0].op: expected string, got integer");
}

TEST(test_validation_errors)
{
	expect_err("\"args\":[\"sh\",\"-c\",\"echo hi\"]", "\"args\":[]", "spec.process.args: must not be empty");
	expect_err("\"cwd\":\"/\"", "\"cwd\":\"tmp\"", "spec.process.cwd: must be an absolute path");
	expect_err("\"path\":\"rootfs\",", "", "spec.root.path: missing");
	expect_err("\"root\":{\"path\":\"rootfs\",\"readonly\":true},", "", "spec.root.path: missing");
	expect_err("{\"type\":\"mount\"}", "{\"type\":\"foo\"}",
		   "spec.linux.namespaces[2].type: unknown namespace type \"foo\"");
	expect_err("{\"type\":\"mount\"}", "{\"type\":\"pid\"}",
		   "spec.linux.namespaces[2].type: namespace \"pid\" is listed twice");
	expect_err("\"destination\":\"/dev\"", "\"destination\":\"dev\"",
		   "spec.mounts[1].destination: must be an absolute path, got \"dev\"");
	expect_err("\"RLIMIT_NOFILE\"", "\"RLIMIT_FOO\"", "spec.process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
	expect_err("\"net.ipv4.ip_forward\":\"1\"", "\"net.ipv4.ip_forward\":1",
		   "spec.linux.sysctl[\"net.ipv4.ip_forward\"]: expected string, got integer");
	expect_err("\"annotations\":{\"org.example/key\":\"value\"}", "\"annotations\":[1]",
		   "spec.annotations: expected map, got array");
	expect_err("\"process\":{", "\"process0\":{", "spec.process: missing");
}

TEST(test_resources_decode)
{
	struct fx f;
	struct oci_resources r;
	struct cv_error err;
	fx_json(&f, "{\"memory\":{\"limit\":67108864,\"swap\":134217728},\"pids\":{\"limit\":-1}}");
	CHECK(oci_resources_decode(&f.obj, f.zone, &r, &err) == 0);
	CHECK(r.has_memory && r.memory.limit == 67108864 && r.memory.has_swap &&
	      r.memory.swap == 134217728);
	CHECK(r.has_pids && r.pids.limit == -1 && !r.has_cpu);
	fx_end(&f);
	fx_json(&f, "{\"cpu\":{\"shares\":-5}}");
	CHECK(oci_resources_decode(&f.obj, f.zone, &r, &err) < 0);
	CHECK_STR(err.msg, "resources.cpu.shares: value -5 out of range for uint64");
	fx_end(&f);
}

TEST(test_namespace_flags)
{
	CHECK(oci_namespace_flag("pid") == CLONE_NEWPID);
	CHECK(oci_namespace_flag("network") == CLONE_NEWNET);
	CHECK(oci_namespace_flag("mount") == CLONE_NEWNS);
	CHECK(oci_namespace_flag("ipc") == CLONE_NEWIPC);
	CHECK(oci_namespace_flag("uts") == CLONE_NEWUTS);
	CHECK(oci_namespace_flag("user") == CLONE_NEWUSER);
	CHECK(oci_namespace_flag("cgroup") == CLONE_NEWCGROUP);
	CHECK(oci_namespace_flag("time") == 0x80);
	CHECK(oci_namespace_flag("net") == 0);
	CHECK(oci_namespace_flag(NULL) == 0);
}

TEST(test_rlimit_resources)
{
	CHECK(oci_rlimit_resource("RLIMIT_NOFILE") == RLIMIT_NOFILE);
	CHECK(oci_rlimit_resource("RLIMIT_STACK") == RLIMIT_STACK);
	CHECK(oci_rlimit_resource("RLIMIT_FOO") == -1);
	CHECK(oci_rlimit_resource("rlimit_nofile") == -1);
	CHECK(oci_rlimit_resource(NULL) == -1);
}

UNIT_MAIN(test_realistic_config, test_type_errors_name_the_field, test_validation_errors,
	  test_resources_decode, test_namespace_flags, test_rlimit_resources)

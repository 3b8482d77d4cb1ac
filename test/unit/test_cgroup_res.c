/* Unit tests for kernel/cgroup_res.c's conversions (runc's, so the same
 * spec gives the same v2 files under cvisor and runc) and for the decoder
 * of the linux.resources fields it writes (core/spec.c). No cgroup needed. */
#include <stdio.h>
#include <string.h>

#include "core/spec.h"
#include "kernel/cgroup_internal.h"
#include "test/unit/unit.h"
#include "test/unit/mpk_fixture.h"

TEST(test_shares_to_weight)
{
	/* Values from runc's ConvertCPUSharesToCgroupV2Value tests. */
	CHECK(cgroup_res_shares_to_weight(0) == 0); /* unset stays unset */
	CHECK(cgroup_res_shares_to_weight(2) == 1);
	CHECK(cgroup_res_shares_to_weight(262144) == 10000);
	CHECK(cgroup_res_shares_to_weight(1024) == 39);
	CHECK(cgroup_res_shares_to_weight(512) == 20);
	/* Out of the v1 range: clamped, as the kernel clamps cpu.shares. */
	CHECK(cgroup_res_shares_to_weight(1) == 1);
	CHECK(cgroup_res_shares_to_weight(1000000) == 10000);
}

TEST(test_blkio_weight_to_io)
{
	/* runc's ConvertBlkIOToIOWeightValue. */
	CHECK(cgroup_res_blkio_weight_to_io(0) == 0);
	CHECK(cgroup_res_blkio_weight_to_io(10) == 1);
	CHECK(cgroup_res_blkio_weight_to_io(1000) == 10000);
	CHECK(cgroup_res_blkio_weight_to_io(500) == 4950);
	CHECK(cgroup_res_blkio_weight_to_io(100) == 910);
}

TEST(test_io_max_lines)
{
	char b[96];
	struct oci_blkio_throttle t = { .major = 8, .minor = 0, .rate = 1048576 };
	CHECK(cgroup_res_io_max_line(b, sizeof(b), 0, &t) > 0);
	CHECK_STR(b, "8:0 rbps=1048576");
	CHECK(cgroup_res_io_max_line(b, sizeof(b), 1, &t) > 0);
	CHECK_STR(b, "8:0 wbps=1048576");
	t = (struct oci_blkio_throttle){ .major = 254, .minor = 16, .rate = 300 };
	CHECK(cgroup_res_io_max_line(b, sizeof(b), 2, &t) > 0);
	CHECK_STR(b, "254:16 riops=300");
	CHECK(cgroup_res_io_max_line(b, sizeof(b), 3, &t) > 0);
	CHECK_STR(b, "254:16 wiops=300");
	CHECK(cgroup_res_io_max_line(b, sizeof(b), 4, &t) < 0);
	CHECK(cgroup_res_io_max_line(b, 8, 0, &t) < 0); /* truncated: refused */
}

static void decode_ok(const char *json, struct oci_resources *r, struct fx *f)
{
	struct cv_error err = { 0 };
	fx_json(f, json);
	int rc = oci_resources_decode(&f->obj, f->zone, r, &err);
	if (rc < 0)
		fprintf(stderr, "  %s: %s\n", json, err.msg);
	CHECK(rc == 0);
}

static void decode_err(const char *json, const char *want)
{
	struct fx f;
	struct oci_resources r;
	struct cv_error err = { 0 };
	fx_json(&f, json);
	CHECK(oci_resources_decode(&f.obj, f.zone, &r, &err) < 0);
	if (!strstr(err.msg, want))
		fprintf(stderr, "  %s: \"%s\" does not contain \"%s\"\n", json, err.msg, want);
	CHECK(strstr(err.msg, want) != NULL);
	fx_end(&f);
}

TEST(test_every_field_decodes)
{
	struct fx f;
	struct oci_resources r;
	decode_ok("{\"memory\":{\"limit\":1,\"swappiness\":60,\"disableOOMKiller\":true,\"kernel\":5,"
		  "\"kernelTCP\":6,\"useHierarchy\":true},"
		  "\"cpu\":{\"burst\":7,\"realtimeRuntime\":-1,\"realtimePeriod\":9,\"idle\":1},"
		  "\"blockIO\":{\"weight\":300,\"leafWeight\":20,\"weightDevice\":[{\"major\":8,\"minor\":0,"
		  "\"weight\":100}],\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":1}],"
		  "\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":16,\"rate\":4}]},"
		  "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}],"
		  "\"network\":{\"classID\":1048577,\"priorities\":[{\"name\":\"eth0\",\"priority\":5}]},"
		  "\"rdma\":{\"mlx5_1\":{\"hcaHandles\":3,\"hcaObjects\":null}},"
		  "\"unified\":{\"memory.high\":\"max\"}}",
		  &r, &f);
	CHECK(r.memory.has_swappiness && r.memory.swappiness == 60);
	CHECK(r.memory.disable_oom_killer && r.memory.has_kernel && r.memory.kernel_tcp == 6);
	CHECK(r.cpu.has_burst && r.cpu.burst == 7 && r.cpu.realtime_runtime == -1);
	CHECK(r.cpu.realtime_period == 9 && r.cpu.has_idle && r.cpu.idle == 1);
	CHECK(r.has_blkio && r.blkio.weight == 300 && r.blkio.leaf_weight == 20);
	CHECK(r.blkio.n_weight_device == 1 && r.blkio.weight_device[0].weight == 100);
	CHECK(r.blkio.n_throttle[0] == 1 && r.blkio.throttle[0][0].rate == 1);
	CHECK(r.blkio.n_throttle[1] == 0 && r.blkio.n_throttle[2] == 0);
	CHECK(r.blkio.n_throttle[3] == 1 && r.blkio.throttle[3][0].minor == 16);
	CHECK(r.n_hugepage_limits == 1 && !strcmp(r.hugepage_limits[0].page_size, "2MB"));
	CHECK(r.has_network && r.network.class_id == 1048577 && r.network.n_priorities == 1);
	CHECK(r.rdma && r.rdma->type == MSGPACK_OBJECT_MAP && r.unified && r.unified->via.map.size == 1);
	fx_end(&f);
}

TEST(test_bad_fields_are_named)
{
	decode_err("{\"memory\":{\"swappiness\":101}}", "resources.memory.swappiness");
	decode_err("{\"cpu\":{\"idle\":2}}", "resources.cpu.idle");
	decode_err("{\"blockIO\":{\"weight\":5}}", "resources.blockIO.weight");
	decode_err("{\"blockIO\":{\"leafWeight\":1001}}", "resources.blockIO.leafWeight");
	decode_err("{\"blockIO\":{\"throttleReadBpsDevice\":[{\"major\":-1,\"minor\":0,\"rate\":1}]}}",
		   "resources.blockIO.throttleReadBpsDevice[0]");
	decode_err("{\"hugepageLimits\":[{\"pageSize\":\"2MB/../../x\",\"limit\":1}]}",
		   "resources.hugepageLimits[0].pageSize");
	decode_err("{\"hugepageLimits\":[{\"pageSize\":\"MB\",\"limit\":1}]}",
		   "resources.hugepageLimits[0].pageSize");
	decode_err("{\"network\":{\"priorities\":[{\"name\":\"a b\",\"priority\":1}]}}",
		   "resources.network.priorities[0].name");
	decode_err("{\"rdma\":{\"mlx5\":{\"hcaHandles\":-1}}}", "resources.rdma");
	decode_err("{\"rdma\":{\"mlx5\":{\"other\":1}}}", "resources.rdma");
	decode_err("{\"unified\":{\"../memory.max\":\"1\"}}", "resources.unified");
	decode_err("{\"unified\":{\"a/b\":\"1\"}}", "resources.unified");
	decode_err("{\"unified\":{\"..\":\"1\"}}", "resources.unified");
	decode_err("{\"unified\":{\"memory.max\":1}}", "resources.unified");
}

UNIT_MAIN(test_shares_to_weight, test_blkio_weight_to_io, test_io_max_lines, test_every_field_decodes,
	  test_bad_fields_are_named)

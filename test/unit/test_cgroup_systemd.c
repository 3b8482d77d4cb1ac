/* The systemd driver's unit properties (kernel/cgroup_systemd_props.c):
 * spec resources and org.systemd.property.* annotations to systemd's names
 * and D-Bus types, as runc maps them. No bus needed. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "kernel/cgroup_systemd.h"
#include "test/unit/unit.h"

static const struct cgroup_sd_prop *find(const struct cgroup_sd_props *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->p[i].name, name) == 0)
			return &p->p[i];
	return NULL;
}

static uint64_t num(const struct cgroup_sd_props *p, const char *name, char type)
{
	const struct cgroup_sd_prop *e = find(p, name);
	if (!e || e->type != type)
		return 0xdeadbeef;
	return e->num;
}

TEST(test_v1_names)
{
	struct oci_resources res = { 0 };
	res.has_memory = res.memory.has_limit = true;
	res.memory.limit = 64 << 20;
	res.has_cpu = res.cpu.has_shares = res.cpu.has_quota = res.cpu.has_period = true;
	res.cpu.shares = 512;
	res.cpu.quota = 33333; /* 333330 µs/s, rounded up to 10 ms */
	res.cpu.period = 100000;
	res.has_pids = res.pids.has_limit = true;
	res.pids.limit = -1;
	res.has_blkio = res.blkio.has_weight = true;
	res.blkio.weight = 500;
	static struct cgroup_sd_props p;
	struct cv_error err;
	CHECK(cgroup_systemd_res_props(&res, false, &p, &err) == 0);
	CHECK(num(&p, "MemoryLimit", 't') == 64 << 20);
	CHECK(find(&p, "MemoryMax") == NULL);
	CHECK(num(&p, "CPUShares", 't') == 512);
	CHECK(num(&p, "CPUQuotaPerSecUSec", 't') == 340000);
	CHECK(num(&p, "CPUQuotaPeriodUSec", 't') == 100000);
	CHECK(num(&p, "TasksMax", 't') == UINT64_MAX);
	CHECK(num(&p, "BlockIOWeight", 't') == 500);
	CHECK(cgroup_systemd_res_props(NULL, false, &p, &err) == 0);
}

TEST(test_v2_names)
{
	struct oci_resources res = { 0 };
	res.has_memory = res.memory.has_limit = res.memory.has_swap = true;
	res.memory.limit = 100;
	res.memory.swap = 300;
	res.has_cpu = res.cpu.has_shares = res.cpu.has_quota = true;
	res.cpu.shares = 1024;
	res.cpu.quota = -1;
	res.has_blkio = res.blkio.has_weight = true;
	res.blkio.weight = 10;
	res.cpu.cpus = "0-2,9";
	res.cpu.mems = "1";
	static struct cgroup_sd_props p;
	struct cv_error err;
	CHECK(cgroup_systemd_res_props(&res, true, &p, &err) == 0);
	CHECK(num(&p, "MemoryMax", 't') == 100);
	CHECK(num(&p, "MemorySwapMax", 't') == 200); /* swap alone */
	CHECK(num(&p, "CPUWeight", 't') == 39);      /* 1 + (1022 * 9999) / 262142 */
	CHECK(num(&p, "CPUQuotaPerSecUSec", 't') == UINT64_MAX);
	CHECK(find(&p, "CPUQuotaPeriodUSec") == NULL);
	CHECK(num(&p, "IOWeight", 't') == 1);
	CHECK(find(&p, "TasksMax") == NULL);
	const struct cgroup_sd_prop *c = find(&p, "AllowedCPUs"), *m = find(&p, "AllowedMemoryNodes");
	CHECK(c && c->type == 'Y' && c->num == 2 && (unsigned char)c->str[0] == 0x07 &&
	      (unsigned char)c->str[1] == 0x02);
	CHECK(m && m->num == 1 && (unsigned char)m->str[0] == 0x02);
	/* Not on v1, where systemd does not manage cpusets. */
	p.n = 0;
	CHECK(cgroup_systemd_res_props(&res, false, &p, &err) == 0);
	CHECK(find(&p, "AllowedCPUs") == NULL);
	res.cpu.cpus = "3-1";
	p.n = 0;
	CHECK(cgroup_systemd_res_props(&res, true, &p, &err) < 0);
	CHECK(strstr(err.msg, "linux.resources.cpu.cpus") != NULL);
	res.cpu.cpus = "0-2,9";
	/* swap below the limit cannot be expressed on v2. */
	res.memory.swap = 50;
	p.n = 0;
	CHECK(cgroup_systemd_res_props(&res, true, &p, &err) < 0);
	CHECK(strstr(err.msg, "linux.resources.memory.swap") != NULL);
}

/* A msgpack map of string pairs, packed and unpacked into zone. */
static msgpack_object map_of(msgpack_sbuffer *sb, msgpack_unpacked *u, const char *const *kv,
			     size_t n)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < 2 * n; i++) {
		msgpack_pack_str(&pk, strlen(kv[i]));
		msgpack_pack_str_body(&pk, kv[i], strlen(kv[i]));
	}
	msgpack_unpacked_init(u);
	msgpack_unpack_next(u, sb->data, sb->size, NULL);
	return u->data;
}

static int ann(const char *key, const char *val, struct cgroup_sd_props *p, struct cv_error *err)
{
	const char *kv[] = { key, val };
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	msgpack_object o = map_of(&sb, &u, kv, 1);
	p->n = 0;
	int r = cgroup_systemd_annotation_props(&o, p, err);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

TEST(test_annotations)
{
	static struct cgroup_sd_props p;
	struct cv_error err;
	CHECK(ann("org.systemd.property.TimeoutStopUSec", "uint64 5", &p, &err) == 0);
	CHECK(num(&p, "TimeoutStopUSec", 't') == 5);
	CHECK(ann("org.systemd.property.TimeoutStopUSec", "7", &p, &err) == 0);
	CHECK(num(&p, "TimeoutStopUSec", 't') == 7); /* *Sec: uint64, as runc */
	CHECK(ann("org.systemd.property.Nice", "-5", &p, &err) == 0);
	CHECK(num(&p, "Nice", 'i') == (uint64_t)-5);
	CHECK(ann("org.systemd.property.Foo", "@u 9", &p, &err) == 0);
	CHECK(num(&p, "Foo", 'u') == 9);
	CHECK(ann("org.systemd.property.Foo", "int64 -9", &p, &err) == 0);
	CHECK(num(&p, "Foo", 'x') == (uint64_t)-9);
	CHECK(ann("org.systemd.property.Foo", "true", &p, &err) == 0);
	CHECK(num(&p, "Foo", 'b') == 1);
	CHECK(ann("org.systemd.property.Foo", "'a b'", &p, &err) == 0);
	CHECK(find(&p, "Foo") && find(&p, "Foo")->type == 's');
	CHECK_STR(find(&p, "Foo")->str, "a b");
	CHECK(ann("other.key", "whatever", &p, &err) == 0 && p.n == 0);
	/* Refused, naming the annotation. */
	CHECK(ann("org.systemd.property.foo", "1", &p, &err) < 0);
	CHECK(strstr(err.msg, "annotations[\"org.systemd.property.foo\"]") != NULL);
	CHECK(ann("org.systemd.property.Foo", "[1]", &p, &err) < 0);
	CHECK(strstr(err.msg, "annotations[\"org.systemd.property.Foo\"]") != NULL);
	CHECK(ann("org.systemd.property.Foo", "uint32 99999999999", &p, &err) < 0);
	CHECK(ann("org.systemd.property.Foo", "uint64 -1", &p, &err) < 0);
	CHECK(ann("org.systemd.property.Foo", "'a'b'", &p, &err) < 0);
	CHECK(ann("org.systemd.property.Foo", "3000000000", &p, &err) < 0); /* int32 */
}

static const struct cgroup_sd_prop *last(const struct cgroup_sd_props *p, const char *name)
{
	const struct cgroup_sd_prop *f = NULL;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->p[i].name, name) == 0)
			f = &p->p[i];
	return f;
}

static bool allows(const struct cgroup_sd_props *p, const char *node, const char *acc)
{
	const struct cgroup_sd_prop *d = last(p, "DeviceAllow");
	for (size_t i = 0; d && i < d->num; i++)
		if (strcmp(p->dev[d->dev_off + i].node, node) == 0 &&
		    strcmp(p->dev[d->dev_off + i].access, acc) == 0)
			return true;
	return false;
}

static bool policy_is(const struct cgroup_sd_props *p, const char *want)
{
	const struct cgroup_sd_prop *d = find(p, "DevicePolicy");
	return d && d->type == 's' && strcmp(d->str, want) == 0;
}

TEST(test_devices)
{
	static struct cgroup_sd_props p;
	struct cv_error err;
	struct oci_device_cgroup rules[3] = {
		{ .allow = false, .type = "a" },                      /* deny all */
		{ .allow = true, .type = "c", .major = 10, .minor = 200, .has_major = true,
		  .has_minor = true, .access = "rw" },                 /* /dev/net/tun */
		{ .allow = false, .type = "c", .major = 1, .minor = 3, .has_major = true,
		  .has_minor = true, .access = "w" },                  /* the default list allows it again */
	};
	struct oci_resources res = { .devices = rules, .n_devices = 3 };
	memset(&p, 0, sizeof(p));
	CHECK(cgroup_systemd_device_props(&res, &p, &err) == 0);
	CHECK(policy_is(&p, "strict"));
	CHECK(allows(&p, "/dev/char/10:200", "rw"));
	CHECK(allows(&p, "/dev/char/1:3", "rwm")); /* the default list comes after */
	CHECK(allows(&p, "char-*", "m") && allows(&p, "block-*", "m"));
	/* An allow trimmed by a later deny of the same device. */
	rules[2] = (struct oci_device_cgroup){ .allow = false, .type = "c", .major = 10,
					       .minor = 200, .has_major = true, .has_minor = true,
					       .access = "w" };
	memset(&p, 0, sizeof(p));
	CHECK(cgroup_systemd_device_props(&res, &p, &err) == 0);
	CHECK(allows(&p, "/dev/char/10:200", "r"));
	/* A deny inside a wildcard allow: not an allow list. */
	rules[1] = (struct oci_device_cgroup){ .allow = true, .type = "c", .access = "rwm" };
	memset(&p, 0, sizeof(p));
	CHECK(cgroup_systemd_device_props(&res, &p, &err) < 0);
	CHECK(strstr(err.msg, "linux.resources.devices[2]") != NULL);
	/* Everything allowed (privileged): "auto", no entries. */
	rules[0] = (struct oci_device_cgroup){ .allow = true, .type = "a" };
	res.n_devices = 1;
	memset(&p, 0, sizeof(p));
	CHECK(cgroup_systemd_device_props(&res, &p, &err) == 0);
	CHECK(policy_is(&p, "auto"));
	CHECK(last(&p, "DeviceAllow") && last(&p, "DeviceAllow")->num == 0);
}

UNIT_MAIN(test_v1_names, test_v2_names, test_annotations, test_devices)

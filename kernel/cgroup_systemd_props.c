/* The unit properties of the systemd driver (kernel/cgroup_systemd.h):
 * spec resources and annotations to systemd's names and D-Bus types, as
 * runc's systemd drivers map them. Pure: no bus here. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "kernel/cgroup_systemd.h"

struct cgroup_sd_prop *cgroup_sd_add(struct cgroup_sd_props *out, const char *name, char type,
				     struct cv_error *err)
{
	if (out->n == CGROUP_SD_PROPS_MAX) {
		cv_errf(err, 0, "systemd unit properties: more than %d", CGROUP_SD_PROPS_MAX);
		return NULL;
	}
	struct cgroup_sd_prop *p = &out->p[out->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->type = type;
	p->dev_off = out->n_dev;
	return p;
}

static int add_num(struct cgroup_sd_props *out, const char *name, char type, uint64_t v,
		   struct cv_error *err)
{
	struct cgroup_sd_prop *p = cgroup_sd_add(out, name, type, err);
	if (!p)
		return -1;
	p->num = v;
	return 0;
}

/* -1 is "no limit", systemd's infinity. */
static uint64_t limit_u64(int64_t v)
{
	return v < 0 ? UINT64_MAX : (uint64_t)v;
}

static int memory_props(const struct oci_memory *m, bool unified, struct cgroup_sd_props *out,
			struct cv_error *err)
{
	if (!unified)
		return m->has_limit && m->limit != 0 ?
			       add_num(out, "MemoryLimit", 't', limit_u64(m->limit), err) :
			       0;
	if (m->has_limit && m->limit != 0 &&
	    add_num(out, "MemoryMax", 't', limit_u64(m->limit), err) < 0)
		return -1;
	if (m->has_reservation && m->reservation != 0 &&
	    add_num(out, "MemoryLow", 't', limit_u64(m->reservation), err) < 0)
		return -1;
	/* The spec's swap is memory+swap; v2's memory.swap.max is swap alone
	 * (runc's ConvertMemorySwapToCgroupV2Value). */
	if (m->has_swap && m->swap != 0) {
		uint64_t v = UINT64_MAX;
		if (m->swap > 0) {
			if (!m->has_limit || m->limit <= 0 || m->swap < m->limit)
				return cv_errf(err, 0,
					       "linux.resources.memory.swap: %" PRId64
					       " needs a memory limit no larger than it",
					       m->swap);
			v = (uint64_t)(m->swap - m->limit);
		}
		if (add_num(out, "MemorySwapMax", 't', v, err) < 0)
			return -1;
	}
	return 0;
}

static int cpu_props(const struct oci_cpu *c, bool unified, struct cgroup_sd_props *out,
		     struct cv_error *err)
{
	if (c->has_shares && c->shares != 0) {
		if (!unified) {
			if (add_num(out, "CPUShares", 't', c->shares, err) < 0)
				return -1;
		} else {
			/* runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto
			 * [1, 10000]. */
			uint64_t s = c->shares < 2 ? 2 : c->shares > 262144 ? 262144 : c->shares;
			if (add_num(out, "CPUWeight", 't', 1 + ((s - 2) * 9999) / 262142, err) < 0)
				return -1;
		}
	}
	uint64_t period = c->has_period ? c->period : 0;
	int64_t quota = c->has_quota ? c->quota : 0;
	if (period != 0 && add_num(out, "CPUQuotaPeriodUSec", 't', period, err) < 0)
		return -1;
	if (quota == 0 && period == 0)
		return 0;
	/* runc's addCpuQuota: the quota per second of wall time, rounded up
	 * to 10 ms as systemd rounds it; no quota is infinity. */
	uint64_t per_sec = UINT64_MAX;
	if (quota > 0) {
		uint64_t p = period ? period : 100000;
		per_sec = (uint64_t)quota * 1000000 / p;
		if (per_sec % 10000)
			per_sec = (per_sec / 10000 + 1) * 10000;
	}
	return add_num(out, "CPUQuotaPerSecUSec", 't', per_sec, err);
}

/* A cpuset list ("0-3,8") as systemd's bitmask: byte i bit j is number
 * 8i+j (runc's RangeToBits). */
static int add_mask(struct cgroup_sd_props *out, const char *name, const char *field,
		    const char *list, struct cv_error *err)
{
	struct cgroup_sd_prop *p = cgroup_sd_add(out, name, 'Y', err);
	if (!p)
		return -1;
	const size_t max = sizeof(p->str) * 8;
	for (const char *s = list; *s;) {
		char *end;
		errno = 0;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (end == s || errno)
			goto bad;
		if (*end == '-') {
			const char *t = end + 1;
			b = strtoul(t, &end, 10);
			if (end == t || errno || b < a)
				goto bad;
		}
		if (b >= max)
			return cv_errf(err, 0, "%s \"%s\": cvisor sends systemd numbers below %zu",
				       field, list, max);
		for (unsigned long i = a; i <= b; i++) {
			p->str[i / 8] = (char)((unsigned char)p->str[i / 8] | (1u << (i % 8)));
			if (i / 8 + 1 > p->num)
				p->num = i / 8 + 1;
		}
		if (*end == ',')
			end++;
		else if (*end)
			goto bad;
		s = end;
	}
	return 0;
bad:
	return cv_errf(err, 0, "%s \"%s\": not a list such as \"0-3,8\"", field, list);
}

int cgroup_systemd_res_props(const struct oci_resources *res, bool unified,
			     struct cgroup_sd_props *out, struct cv_error *err)
{
	if (!res)
		return 0;
	if (res->has_memory && memory_props(&res->memory, unified, out, err) < 0)
		return -1;
	if (res->has_cpu && cpu_props(&res->cpu, unified, out, err) < 0)
		return -1;
	/* systemd (v244+) manages cpusets on v2 only, as runc sends them. */
	if (unified && res->has_cpu && res->cpu.cpus && *res->cpu.cpus &&
	    add_mask(out, "AllowedCPUs", "linux.resources.cpu.cpus", res->cpu.cpus, err) < 0)
		return -1;
	if (unified && res->has_cpu && res->cpu.mems && *res->cpu.mems &&
	    add_mask(out, "AllowedMemoryNodes", "linux.resources.cpu.mems", res->cpu.mems, err) < 0)
		return -1;
	/* runc: a positive limit, or -1 for none; 0 is "not set". */
	if (res->has_pids && res->pids.limit != 0 &&
	    add_num(out, "TasksMax", 't', limit_u64(res->pids.limit), err) < 0)
		return -1;
	if (res->has_blkio && res->blkio.has_weight && res->blkio.weight != 0) {
		uint64_t w = res->blkio.weight;
		/* v2's io.weight is [1, 10000] for blkio's [10, 1000]. */
		if (unified ? add_num(out, "IOWeight", 't', 1 + (w - 10) * 9999 / 990, err) :
			      add_num(out, "BlockIOWeight", 't', w, err))
			return -1;
	}
	return 0;
}

/* ---- org.systemd.property.* annotations ---- */

static const char ann_prefix[] = "org.systemd.property.";

/* runc's isValidSystemdProperty: an upper-case letter, then letters and
 * digits. */
static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || n >= sizeof(((struct cgroup_sd_prop *)0)->name) || s[0] < 'A' || s[0] > 'Z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* Parses the whole of s as a decimal integer. */
static bool parse_int(const char *s, bool is_signed, uint64_t *v)
{
	if (!*s || (!is_signed && *s == '-'))
		return false;
	char *end;
	errno = 0;
	if (is_signed) {
		long long x = strtoll(s, &end, 10);
		*v = (uint64_t)x;
	} else {
		*v = strtoull(s, &end, 10);
	}
	return errno == 0 && *end == '\0';
}

static const struct {
	const char *word; /* "uint64 " or "@t " */
	char type;
} typed[] = {
	{ "uint64 ", 't' }, { "@t ", 't' }, { "uint32 ", 'u' }, { "@u ", 'u' },
	{ "int64 ", 'x' },  { "@x ", 'x' }, { "int32 ", 'i' },  { "@i ", 'i' },
};

/* One GVariant text value into p (its name set), or false. */
static bool parse_value(const char *name, const char *v, struct cgroup_sd_prop *p)
{
	size_t n = strlen(v);
	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
		p->type = 'b';
		p->num = v[0] == 't';
		return true;
	}
	if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
		if (n - 2 >= sizeof(p->str) || memchr(v + 1, '\\', n - 2) ||
		    memchr(v + 1, v[0], n - 2))
			return false; /* no escapes: the plain quoted form only */
		p->type = 's';
		memcpy(p->str, v + 1, n - 2);
		p->str[n - 2] = '\0';
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(typed); i++) {
		size_t w = strlen(typed[i].word);
		if (strncmp(v, typed[i].word, w) == 0) {
			p->type = typed[i].type;
			bool is_signed = p->type == 'x' || p->type == 'i';
			if (!parse_int(v + w, is_signed, &p->num))
				return false;
			if (p->type == 'u' && p->num > UINT32_MAX)
				return false;
			if (p->type == 'i' && ((int64_t)p->num > INT32_MAX ||
					       (int64_t)p->num < INT32_MIN))
				return false;
			return true;
		}
	}
	/* A bare integer is int32 in GVariant text; runc gives the *Sec
	 * properties (times in µs, uint64 to systemd) their type. */
	size_t nl = strlen(name);
	bool sec = nl > 3 && strcmp(name + nl - 3, "Sec") == 0;
	p->type = sec ? 't' : 'i';
	if (!parse_int(v, !sec, &p->num))
		return false;
	return sec || ((int64_t)p->num <= INT32_MAX && (int64_t)p->num >= INT32_MIN);
}

int cgroup_systemd_annotation_props(const msgpack_object *annotations,
				    struct cgroup_sd_props *out, struct cv_error *err)
{
	if (!annotations || annotations->type != MSGPACK_OBJECT_MAP)
		return 0;
	const size_t pl = sizeof(ann_prefix) - 1;
	for (uint32_t i = 0; i < annotations->via.map.size; i++) {
		const msgpack_object *k = &annotations->via.map.ptr[i].key;
		const msgpack_object *v = &annotations->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size <= pl ||
		    memcmp(k->via.str.ptr, ann_prefix, pl) != 0)
			continue;
		const char *name = k->via.str.ptr + pl;
		size_t nn = k->via.str.size - pl;
		if (!valid_name(name, nn))
			return cv_errf(err, 0, "annotations[\"%.*s\"]: not a systemd property name",
				       (int)k->via.str.size, k->via.str.ptr);
		char val[512];
		if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= sizeof(val))
			return cv_errf(err, 0, "annotations[\"%.*s\"]: expected a string",
				       (int)k->via.str.size, k->via.str.ptr);
		memcpy(val, v->via.str.ptr, v->via.str.size);
		val[v->via.str.size] = '\0';
		char pname[64];
		snprintf(pname, sizeof(pname), "%.*s", (int)nn, name);
		struct cgroup_sd_prop *p = cgroup_sd_add(out, pname, 's', err);
		if (!p)
			return -1;
		if (!parse_value(pname, val, p))
			return cv_errf(err, 0,
				       "annotations[\"%.*s\"]: \"%s\" is not a value cvisor can send (true, false, uint64 N, uint32 N, int64 N, int32 N, N or 'text')",
				       (int)k->via.str.size, k->via.str.ptr, val);
	}
	return 0;
}

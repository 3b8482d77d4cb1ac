/* Prometheus text exposition (format 0.0.4) of a Metrics.Export result
 * (kernel/metrics.h): HELP and TYPE once per metric, from the
 * registration, then its samples; histograms as _bucket{le=...}, _sum and
 * _count. Works on the decoded replies, so the CLI prints exactly what the
 * sandbox exported. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "core/mpk.h"
#include "kernel/metrics.h"

/* Escapes a label value (\\, \", \n) or HELP text (\\, \n). */
static void put_escaped(FILE *out, const msgpack_object *s, bool quotes)
{
	for (uint32_t i = 0; i < s->via.str.size; i++) {
		char c = s->via.str.ptr[i];
		if (c == '\\')
			fputs("\\\\", out);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '"' && quotes)
			fputs("\\\"", out);
		else
			fputc(c, out);
	}
}

static int put_number(FILE *out, const msgpack_object *v)
{
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		fprintf(out, "%" PRIu64, v->via.u64);
		return 0;
	}
	if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		fprintf(out, "%" PRId64, v->via.i64);
		return 0;
	}
	if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) {
		if (isinf(v->via.f64))
			fputs(v->via.f64 > 0 ? "+Inf" : "-Inf", out);
		else if (isnan(v->via.f64))
			fputs("NaN", out);
		else
			fprintf(out, "%.15g", v->via.f64);
		return 0;
	}
	return -1;
}

/* {k="v",...} plus an optional le="x" (NULL: none); nothing when empty. */
static int put_labels(FILE *out, const msgpack_object *labels, const msgpack_object *le)
{
	uint32_t n = labels && labels->type == MSGPACK_OBJECT_MAP ? labels->via.map.size : 0;
	if (n == 0 && !le)
		return 0;
	fputc('{', out);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object_kv *kv = &labels->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR)
			return -1;
		fprintf(out, "%s%.*s=\"", i ? "," : "", (int)kv->key.via.str.size, kv->key.via.str.ptr);
		put_escaped(out, &kv->val, true);
		fputc('"', out);
	}
	if (le) {
		fprintf(out, "%sle=\"", n ? "," : "");
		if (put_number(out, le) < 0)
			return -1;
		fputc('"', out);
	}
	fputc('}', out);
	return 0;
}

static int put_sample(FILE *out, const msgpack_object *name, const msgpack_object *d)
{
	const msgpack_object *labels = mpk_map_get(d, "labels");
	const msgpack_object *value = mpk_map_get(d, "value");
	const msgpack_object *h = mpk_map_get(d, "histogram");
	int nl = (int)name->via.str.size;
	const char *np = name->via.str.ptr;
	if (value) {
		fprintf(out, "%.*s", nl, np);
		if (put_labels(out, labels, NULL) < 0)
			return -1;
		fputc(' ', out);
		if (put_number(out, value) < 0)
			return -1;
		fputc('\n', out);
		return 0;
	}
	if (!h || h->type != MSGPACK_OBJECT_MAP)
		return -1;
	const msgpack_object *buckets = mpk_map_get(h, "buckets");
	const msgpack_object *sum = mpk_map_get(h, "sum");
	const msgpack_object *count = mpk_map_get(h, "count");
	if (!buckets || buckets->type != MSGPACK_OBJECT_ARRAY || !sum || !count)
		return -1;
	for (uint32_t i = 0; i < buckets->via.array.size; i++) {
		const msgpack_object *b = &buckets->via.array.ptr[i];
		if (b->type != MSGPACK_OBJECT_ARRAY || b->via.array.size != 2)
			return -1;
		fprintf(out, "%.*s_bucket", nl, np);
		if (put_labels(out, labels, &b->via.array.ptr[0]) < 0)
			return -1;
		fputc(' ', out);
		if (put_number(out, &b->via.array.ptr[1]) < 0)
			return -1;
		fputc('\n', out);
	}
	fprintf(out, "%.*s_sum", nl, np);
	if (put_labels(out, labels, NULL) < 0)
		return -1;
	fputc(' ', out);
	if (put_number(out, sum) < 0)
		return -1;
	fprintf(out, "\n%.*s_count", nl, np);
	if (put_labels(out, labels, NULL) < 0)
		return -1;
	fputc(' ', out);
	if (put_number(out, count) < 0)
		return -1;
	fputc('\n', out);
	return 0;
}

int metrics_write_prometheus(FILE *out, const msgpack_object *registration,
			     const msgpack_object *exported, struct cv_error *err)
{
	const msgpack_object *ms = registration && registration->type == MSGPACK_OBJECT_MAP
					   ? mpk_map_get(registration, "Metrics")
					   : NULL;
	const msgpack_object *data = exported && exported->type == MSGPACK_OBJECT_MAP
					     ? mpk_map_get(exported, "Data")
					     : NULL;
	if (!ms || ms->type != MSGPACK_OBJECT_ARRAY)
		return cv_errf(err, 0, "registered metrics: expected a map with a Metrics array");
	if (!data || data->type != MSGPACK_OBJECT_ARRAY)
		return cv_errf(err, 0, "exported metrics: expected a map with a Data array");
	for (uint32_t i = 0; i < ms->via.array.size; i++) {
		const msgpack_object *m = &ms->via.array.ptr[i];
		const msgpack_object *name = m->type == MSGPACK_OBJECT_MAP
						     ? mpk_map_get(m, "prometheus_name")
						     : NULL;
		const msgpack_object *help = name ? mpk_map_get(m, "description") : NULL;
		const msgpack_object *type = name ? mpk_map_get(m, "prometheus_type") : NULL;
		if (!name || name->type != MSGPACK_OBJECT_STR || !help ||
		    help->type != MSGPACK_OBJECT_STR || !type || type->type != MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "registered metric %u: missing prometheus_name, "
					       "description or prometheus_type", i);
		bool header = false;
		for (uint32_t j = 0; j < data->via.array.size; j++) {
			const msgpack_object *d = &data->via.array.ptr[j];
			const msgpack_object *dn = d->type == MSGPACK_OBJECT_MAP ? mpk_map_get(d, "name")
									 : NULL;
			if (!dn || dn->type != MSGPACK_OBJECT_STR || dn->via.str.size != name->via.str.size ||
			    memcmp(dn->via.str.ptr, name->via.str.ptr, dn->via.str.size) != 0)
				continue;
			if (!header) {
				/* Only exported metrics get a header: --only-metrics filters them. */
				fprintf(out, "# HELP %.*s ", (int)name->via.str.size, name->via.str.ptr);
				put_escaped(out, help, false);
				fprintf(out, "\n# TYPE %.*s %.*s\n", (int)name->via.str.size,
					name->via.str.ptr, (int)type->via.str.size, type->via.str.ptr);
				header = true;
			}
			if (put_sample(out, name, d) < 0)
				return cv_errf(err, 0, "exported metrics: sample %u of %.*s is malformed", j,
					       (int)name->via.str.size, name->via.str.ptr);
		}
	}
	return 0;
}

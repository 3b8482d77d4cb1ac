/* The metrics registry (kernel/metrics.c) and its Prometheus text
 * (kernel/metrics_prom.c): what is recorded is what is exported, the
 * regex filter, and the exposition format line by line. */
#include <math.h>
#include <regex.h>

#include "core/mpk.h"
#include "kernel/methods.h"
#include "kernel/metrics.h"
#include "test/unit/unit.h"

struct packed {
	msgpack_sbuffer sb;
	msgpack_unpacked up;
};

static const msgpack_object *unpack(struct packed *p)
{
	msgpack_unpacked_init(&p->up);
	if (msgpack_unpack_next(&p->up, p->sb.data, p->sb.size, NULL) != MSGPACK_UNPACK_SUCCESS)
		return NULL;
	return &p->up.data;
}

static void packed_free(struct packed *p)
{
	msgpack_unpacked_destroy(&p->up);
	msgpack_sbuffer_destroy(&p->sb);
}

static void pack_reg(struct packed *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &p->sb, msgpack_sbuffer_write);
	metrics_pack_registration(&pk);
}

static void pack_export(struct packed *p, const regex_t *re)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &p->sb, msgpack_sbuffer_write);
	metrics_pack_export(&pk, re, NULL);
}

/* The exposition text of the registry now, filtered by re (or NULL). */
static char *prom_text(const regex_t *re)
{
	struct packed reg, exp;
	pack_reg(&reg);
	pack_export(&exp, re);
	const msgpack_object *r = unpack(&reg), *e = unpack(&exp);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct cv_error err = { 0 };
	CHECK(r && e && metrics_write_prometheus(f, r, e, &err) == 0);
	fclose(f);
	packed_free(&reg);
	packed_free(&exp);
	return text;
}

static size_t method_index(const char *name)
{
	for (size_t i = 0; i < methods_count(); i++)
		if (strcmp(methods_table()[i].name, name) == 0)
			return i;
	return (size_t)-1;
}

TEST(test_registration_lists_every_metric_with_type_and_help)
{
	struct packed reg;
	pack_reg(&reg);
	const msgpack_object *r = unpack(&reg);
	CHECK(r && r->type == MSGPACK_OBJECT_MAP);
	const msgpack_object *ms = r ? mpk_map_get(r, "Metrics") : NULL;
	CHECK(ms && ms->type == MSGPACK_OBJECT_ARRAY && ms->via.array.size >= 10);
	bool saw_hist = false;
	for (uint32_t i = 0; ms && i < ms->via.array.size; i++) {
		const msgpack_object *m = &ms->via.array.ptr[i];
		const msgpack_object *pn = mpk_map_get(m, "prometheus_name");
		CHECK(pn && pn->type == MSGPACK_OBJECT_STR && pn->via.str.size > 7 &&
		      memcmp(pn->via.str.ptr, "cvisor_", 7) == 0);
		CHECK(mpk_map_get(m, "description") != NULL);
		const msgpack_object *t = mpk_map_get(m, "type");
		if (t && t->via.str.size == 12 && memcmp(t->via.str.ptr, "distribution", 12) == 0) {
			saw_hist = true;
			const msgpack_object *b = mpk_map_get(m, "distribution_bucket_upper_bounds");
			CHECK(b && b->type == MSGPACK_OBJECT_ARRAY && b->via.array.size == 15);
		}
	}
	CHECK(saw_hist);
	packed_free(&reg);
}

TEST(test_rpc_observations_reach_the_text)
{
	metrics_reset();
	size_t m = method_index("containerManager.Signal");
	CHECK(m != (size_t)-1);
	metrics_rpc_observe(m, false, 5000);    /* 5 µs: first bucket (<= 10 µs) */
	metrics_rpc_observe(m, true, 30000);    /* 30 µs: <= 50 µs */
	metrics_rpc_observe(m, false, 2000000000ull); /* 2 s: only +Inf */
	char *t = prom_text(NULL);
	CHECK(t && strstr(t, "# HELP cvisor_rpc_calls_total Control RPC calls answered, by method.\n"
			     "# TYPE cvisor_rpc_calls_total counter\n"));
	CHECK(t && strstr(t, "cvisor_rpc_calls_total{method=\"containerManager.Signal\"} 3\n"));
	CHECK(t && strstr(t, "cvisor_rpc_errors_total{method=\"containerManager.Signal\"} 1\n"));
	CHECK(t && strstr(t, "# TYPE cvisor_rpc_latency_seconds histogram\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_bucket{method=\"containerManager.Signal\",le=\"1e-05\"} 1\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_bucket{method=\"containerManager.Signal\",le=\"2.5e-05\"} 1\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_bucket{method=\"containerManager.Signal\",le=\"5e-05\"} 2\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_bucket{method=\"containerManager.Signal\",le=\"1\"} 2\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_bucket{method=\"containerManager.Signal\",le=\"+Inf\"} 3\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_sum{method=\"containerManager.Signal\"} 2.000035\n"));
	CHECK(t && strstr(t, "cvisor_rpc_latency_seconds_count{method=\"containerManager.Signal\"} 3\n"));
	/* Methods never called have counters but no histogram. */
	CHECK(t && strstr(t, "cvisor_rpc_calls_total{method=\"containerManager.Wait\"} 0\n"));
	CHECK(t && !strstr(t, "cvisor_rpc_latency_seconds_count{method=\"containerManager.Wait\"}"));
	free(t);
}

TEST(test_exec_and_signal_counters)
{
	metrics_reset();
	metrics_init(true);
	metrics_exec_done(true);
	metrics_exec_done(true);
	metrics_exec_done(false);
	metrics_signal_sent();
	char *t = prom_text(NULL);
	CHECK(t && strstr(t, "\ncvisor_execs_started_total 2\n"));
	CHECK(t && strstr(t, "\ncvisor_execs_failed_total 1\n"));
	CHECK(t && strstr(t, "\ncvisor_signals_sent_total 1\n"));
	free(t);
	/* Disabled: the hooks record nothing (the benchmark's baseline). */
	metrics_init(false);
	metrics_signal_sent();
	t = prom_text(NULL);
	CHECK(t && strstr(t, "\ncvisor_signals_sent_total 1\n"));
	free(t);
}

TEST(test_only_metrics_filters_headers_and_samples)
{
	regex_t re;
	CHECK(regcomp(&re, "^cvisor_execs_", REG_EXTENDED | REG_NOSUB) == 0);
	char *t = prom_text(&re);
	CHECK(t && strstr(t, "cvisor_execs_started_total"));
	CHECK(t && strstr(t, "cvisor_execs_failed_total"));
	CHECK(t && !strstr(t, "cvisor_rpc_"));
	CHECK(t && !strstr(t, "cvisor_signals_"));
	free(t);
	regfree(&re);
}

TEST(test_label_values_are_escaped_and_bad_input_refused)
{
	/* A hand-made export: a label value with a quote, a backslash and a newline. */
	struct packed reg, exp;
	pack_reg(&reg);
	msgpack_sbuffer_init(&exp.sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &exp.sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mpk_pack_key(&pk, "Data");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 3);
	mpk_pack_key(&pk, "name");
	mpk_pack_str(&pk, "cvisor_rpc_calls_total");
	mpk_pack_key(&pk, "labels");
	msgpack_pack_map(&pk, 1);
	mpk_pack_key(&pk, "method");
	mpk_pack_str(&pk, "a\"b\\c\nd");
	mpk_pack_key(&pk, "value");
	msgpack_pack_double(&pk, INFINITY);
	const msgpack_object *r = unpack(&reg), *e = unpack(&exp);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct cv_error err = { 0 };
	CHECK(metrics_write_prometheus(f, r, e, &err) == 0);
	fclose(f);
	CHECK(text && strstr(text, "cvisor_rpc_calls_total{method=\"a\\\"b\\\\c\\nd\"} +Inf\n"));
	free(text);
	/* Not an export at all. */
	f = open_memstream(&text, &len);
	CHECK(metrics_write_prometheus(f, r, r, &err) < 0);
	CHECK(strstr(err.msg, "Data") != NULL);
	fclose(f);
	free(text);
	packed_free(&reg);
	packed_free(&exp);
}

UNIT_MAIN(test_registration_lists_every_metric_with_type_and_help,
	  test_rpc_observations_reach_the_text, test_exec_and_signal_counters,
	  test_only_metrics_filters_headers_and_samples,
	  test_label_values_are_escaped_and_bad_input_refused)

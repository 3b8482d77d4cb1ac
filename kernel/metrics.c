/* The sandbox's metrics registry (kernel/metrics.h, docs/API.md "Metrics"). */
#include "kernel/metrics.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/loop.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "rpc/server.h"

/* Per-method arrays are sized for the method table; a method past this
 * (a table grown without raising it) is simply not counted. */
#define METRICS_MAX_METHODS 64
#define NB CORE_LOOP_HIST_N

enum metric_kind { MK_COUNTER, MK_GAUGE, MK_HISTOGRAM };

enum metric_id {
	M_RPC_CALLS,
	M_RPC_ERRORS,
	M_RPC_LATENCY,
	M_RPC_CONNS,
	M_CONTAINERS,
	M_TASKS,
	M_EXECS_STARTED,
	M_EXECS_FAILED,
	M_SIGNALS,
	M_LOOP_ITERATIONS,
	M_LOOP_TURNS,
	M_LOOP_CALLBACK_SECONDS,
	M_LOOP_TURN_SECONDS,
	M_COUNT,
};

struct metric_desc {
	const char *name;  /* gVisor-style path name */
	const char *prom;  /* Prometheus name, with the cvisor_ prefix */
	const char *help;
	enum metric_kind kind;
	const char *field; /* label name, or NULL */
	const char *units;
};

static const char *const container_states[] = { "creating", "running", "stopped" };
static const char *const task_states[] = { "created", "starting", "running", "exited" };

static const struct metric_desc metrics[M_COUNT] = {
	[M_RPC_CALLS] = { "/rpc/calls", "cvisor_rpc_calls_total",
			  "Control RPC calls answered, by method.", MK_COUNTER, "method", "" },
	[M_RPC_ERRORS] = { "/rpc/errors", "cvisor_rpc_errors_total",
			   "Control RPC calls answered with an error, by method.", MK_COUNTER,
			   "method", "" },
	[M_RPC_LATENCY] = { "/rpc/latency", "cvisor_rpc_latency_seconds",
			    "Time from dispatch to answer of control RPC calls, by method.",
			    MK_HISTOGRAM, "method", "seconds" },
	[M_RPC_CONNS] = { "/rpc/connections", "cvisor_rpc_connections",
			  "Open control connections.", MK_GAUGE, NULL, "" },
	[M_CONTAINERS] = { "/sandbox/containers", "cvisor_containers",
			   "Containers of the sandbox, by state.", MK_GAUGE, "state", "" },
	[M_TASKS] = { "/sandbox/tasks", "cvisor_tasks",
		      "Processes the sandbox started (inits and execs) it still tracks, by state.",
		      MK_GAUGE, "state", "" },
	[M_EXECS_STARTED] = { "/sandbox/execs_started", "cvisor_execs_started_total",
			      "Execs (ExecuteAsync) whose execve succeeded.", MK_COUNTER, NULL, "" },
	[M_EXECS_FAILED] = { "/sandbox/execs_failed", "cvisor_execs_failed_total",
			     "Execs (ExecuteAsync) that failed to start after being spawned.",
			     MK_COUNTER, NULL, "" },
	[M_SIGNALS] = { "/sandbox/signals_sent", "cvisor_signals_sent_total",
			"Signals sent to processes or process groups (kill, pidfd_send_signal).",
			MK_COUNTER, NULL, "" },
	[M_LOOP_ITERATIONS] = { "/loop/iterations", "cvisor_loop_iterations_total",
				"Turns of the reactor loop (ev_iteration).", MK_COUNTER, NULL, "" },
	[M_LOOP_TURNS] = { "/loop/turns", "cvisor_loop_busy_turns_total",
			   "Turns of the reactor loop that ran callbacks.", MK_COUNTER, NULL, "" },
	[M_LOOP_CALLBACK_SECONDS] = { "/loop/callback_time", "cvisor_loop_callback_seconds_total",
				      "Time the reactor spent running callbacks.", MK_COUNTER, NULL,
				      "seconds" },
	[M_LOOP_TURN_SECONDS] = { "/loop/turn_time", "cvisor_loop_turn_seconds",
				  "Time each busy turn of the reactor spent in callbacks.",
				  MK_HISTOGRAM, NULL, "seconds" },
};

static bool enabled;
static uint64_t rpc_calls[METRICS_MAX_METHODS];
static uint64_t rpc_errors[METRICS_MAX_METHODS];
static uint64_t rpc_sum_ns[METRICS_MAX_METHODS];
static uint64_t rpc_hist[METRICS_MAX_METHODS][NB];
static uint64_t execs_started, execs_failed, signals_sent;

void metrics_init(bool on)
{
	enabled = on;
	rpc_set_observer(on ? metrics_rpc_observe : NULL);
	core_loop_stats_enable(on);
}

bool metrics_enabled(void)
{
	return enabled;
}

void metrics_reset(void)
{
	memset(rpc_calls, 0, sizeof(rpc_calls));
	memset(rpc_errors, 0, sizeof(rpc_errors));
	memset(rpc_sum_ns, 0, sizeof(rpc_sum_ns));
	memset(rpc_hist, 0, sizeof(rpc_hist));
	execs_started = execs_failed = signals_sent = 0;
}

static size_t bucket_of(uint64_t ns)
{
	size_t i = 0;
	while (i < NB - 1 && ns > core_loop_stats_bounds_ns[i])
		i++;
	return i;
}

void metrics_rpc_observe(size_t method, bool failed, uint64_t ns)
{
	if (method >= METRICS_MAX_METHODS)
		return;
	rpc_calls[method]++;
	if (failed)
		rpc_errors[method]++;
	rpc_sum_ns[method] += ns;
	rpc_hist[method][bucket_of(ns)]++;
}

void metrics_exec_done(bool started)
{
	if (!enabled)
		return;
	if (started)
		execs_started++;
	else
		execs_failed++;
}

void metrics_signal_sent(void)
{
	if (enabled)
		signals_sent++;
}

static size_t nmethods(void)
{
	size_t n = methods_count();
	return n < METRICS_MAX_METHODS ? n : METRICS_MAX_METHODS;
}

/* ---- registration ------------------------------------------------------ */

static void pack_allowed_values(msgpack_packer *pk, enum metric_id id)
{
	if (id == M_CONTAINERS || id == M_TASKS) {
		const char *const *v = id == M_CONTAINERS ? container_states : task_states;
		size_t n = id == M_CONTAINERS ? ARRAY_SIZE(container_states) : ARRAY_SIZE(task_states);
		msgpack_pack_array(pk, (uint32_t)n);
		for (size_t i = 0; i < n; i++)
			mpk_pack_str(pk, v[i]);
		return;
	}
	const struct rpc_method *m = methods_table();
	size_t n = nmethods();
	msgpack_pack_array(pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		mpk_pack_str(pk, m[i].name);
}

/* The shape of gVisor's MetricMetadata (pkg/metric/metric.proto), with
 * the Prometheus type spelled out and bucket upper bounds in seconds. */
void metrics_pack_registration(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	mpk_pack_key(pk, "Metrics");
	msgpack_pack_array(pk, M_COUNT);
	for (size_t id = 0; id < M_COUNT; id++) {
		const struct metric_desc *d = &metrics[id];
		bool hist = d->kind == MK_HISTOGRAM;
		msgpack_pack_map(pk, hist ? 9 : 8);
		mpk_pack_key(pk, "name");
		mpk_pack_str(pk, d->name);
		mpk_pack_key(pk, "prometheus_name");
		mpk_pack_str(pk, d->prom);
		mpk_pack_key(pk, "description");
		mpk_pack_str(pk, d->help);
		mpk_pack_key(pk, "cumulative");
		if (d->kind == MK_GAUGE)
			msgpack_pack_false(pk);
		else
			msgpack_pack_true(pk);
		mpk_pack_key(pk, "type");
		mpk_pack_str(pk, hist ? "distribution" : "uint64");
		mpk_pack_key(pk, "prometheus_type");
		mpk_pack_str(pk, d->kind == MK_COUNTER ? "counter"
				 : d->kind == MK_GAUGE ? "gauge" : "histogram");
		mpk_pack_key(pk, "units");
		mpk_pack_str(pk, d->units);
		mpk_pack_key(pk, "fields");
		if (d->field) {
			msgpack_pack_array(pk, 1);
			msgpack_pack_map(pk, 2);
			mpk_pack_key(pk, "field_name");
			mpk_pack_str(pk, d->field);
			mpk_pack_key(pk, "allowed_values");
			pack_allowed_values(pk, (enum metric_id)id);
		} else {
			msgpack_pack_array(pk, 0);
		}
		if (hist) {
			mpk_pack_key(pk, "distribution_bucket_upper_bounds");
			msgpack_pack_array(pk, NB - 1);
			for (size_t i = 0; i < NB - 1; i++)
				msgpack_pack_double(pk, (double)core_loop_stats_bounds_ns[i] / 1e9);
		}
	}
	mpk_pack_key(pk, "Stages");
	msgpack_pack_array(pk, 0);
}

/* ---- export ----------------------------------------------------------- */

static void pack_head(msgpack_packer *pk, const struct metric_desc *d, const char *label)
{
	msgpack_pack_map(pk, 3);
	mpk_pack_key(pk, "name");
	mpk_pack_str(pk, d->prom);
	mpk_pack_key(pk, "labels");
	if (d->field && label) {
		msgpack_pack_map(pk, 1);
		mpk_pack_key(pk, d->field);
		mpk_pack_str(pk, label);
	} else {
		msgpack_pack_map(pk, 0);
	}
}

static void pack_uint(msgpack_packer *pk, const struct metric_desc *d, const char *label,
		      uint64_t v)
{
	pack_head(pk, d, label);
	mpk_pack_key(pk, "value");
	msgpack_pack_uint64(pk, v);
}

static void pack_hist(msgpack_packer *pk, const struct metric_desc *d, const char *label,
		      const uint64_t *b, uint64_t sum_ns)
{
	pack_head(pk, d, label);
	mpk_pack_key(pk, "histogram");
	uint64_t count = 0;
	for (size_t i = 0; i < NB; i++)
		count += b[i];
	msgpack_pack_map(pk, 3);
	mpk_pack_key(pk, "count");
	msgpack_pack_uint64(pk, count);
	mpk_pack_key(pk, "sum");
	msgpack_pack_double(pk, (double)sum_ns / 1e9);
	/* Cumulative, as Prometheus' le buckets are. */
	mpk_pack_key(pk, "buckets");
	msgpack_pack_array(pk, NB);
	uint64_t cum = 0;
	for (size_t i = 0; i < NB; i++) {
		cum += b[i];
		msgpack_pack_array(pk, 2);
		msgpack_pack_double(pk, i < NB - 1 ? (double)core_loop_stats_bounds_ns[i] / 1e9
						   : INFINITY);
		msgpack_pack_uint64(pk, cum);
	}
}

static size_t task_state_index(enum task_state s)
{
	switch (s) {
	case TASK_CREATED:
		return 0;
	case TASK_STARTING:
		return 1;
	case TASK_RUNNING:
		return 2;
	case TASK_EXITED:
		return 3;
	}
	return 3;
}

static void count_model(const struct sandbox *sb, uint64_t cs[3], uint64_t ts[4])
{
	if (!sb)
		return;
	list_for_each(pos, &sb->containers) {
		const struct container *c = container_of(pos, struct container, link);
		enum runtime_state rs = container_runtime_state(c);
		if (rs == RUNTIME_STATE_CREATING)
			cs[0]++;
		else if (rs == RUNTIME_STATE_RUNNING)
			cs[1]++;
		else
			cs[2]++;
		if (c->init)
			ts[task_state_index(c->init->state)]++;
		list_for_each(tp, &c->tasks) {
			const struct task *t = container_of(tp, struct task, link);
			ts[task_state_index(t->state)]++;
		}
	}
}

/* Samples of one metric: how many (count only when pk is NULL). */
static size_t pack_metric(msgpack_packer *pk, enum metric_id id, const struct sandbox *sb)
{
	const struct metric_desc *d = &metrics[id];
	const struct rpc_method *m = methods_table();
	size_t nm = nmethods(), n = 0;
	const struct core_loop_stats *ls = core_loop_stats();
	switch (id) {
	case M_RPC_CALLS:
	case M_RPC_ERRORS:
		if (pk)
			for (size_t i = 0; i < nm; i++)
				pack_uint(pk, d, m[i].name, id == M_RPC_CALLS ? rpc_calls[i] : rpc_errors[i]);
		return nm;
	case M_RPC_LATENCY:
		/* Only methods that were called: 16 buckets of zeros for the
		 * others would be most of the export. */
		for (size_t i = 0; i < nm; i++) {
			if (!rpc_calls[i])
				continue;
			if (pk)
				pack_hist(pk, d, m[i].name, rpc_hist[i], rpc_sum_ns[i]);
			n++;
		}
		return n;
	case M_RPC_CONNS:
		if (pk)
			pack_uint(pk, d, NULL, sb && sb->rpc ? rpc_server_nconns(sb->rpc) : 0);
		return 1;
	case M_CONTAINERS:
	case M_TASKS: {
		uint64_t cs[3] = { 0 }, ts[4] = { 0 };
		count_model(sb, cs, ts);
		size_t k = id == M_CONTAINERS ? 3 : 4;
		if (pk)
			for (size_t i = 0; i < k; i++)
				pack_uint(pk, d, id == M_CONTAINERS ? container_states[i] : task_states[i],
					  id == M_CONTAINERS ? cs[i] : ts[i]);
		return k;
	}
	case M_EXECS_STARTED:
	case M_EXECS_FAILED:
	case M_SIGNALS:
		if (pk)
			pack_uint(pk, d, NULL,
				  id == M_EXECS_STARTED ? execs_started
				  : id == M_EXECS_FAILED ? execs_failed : signals_sent);
		return 1;
	case M_LOOP_ITERATIONS:
		if (pk)
			pack_uint(pk, d, NULL, core_loop() ? ev_iteration(core_loop()) : 0);
		return 1;
	case M_LOOP_TURNS:
		if (pk)
			pack_uint(pk, d, NULL, ls->turns);
		return 1;
	case M_LOOP_CALLBACK_SECONDS:
		if (pk) {
			pack_head(pk, d, NULL);
			mpk_pack_key(pk, "value");
			msgpack_pack_double(pk, (double)ls->callback_ns / 1e9);
		}
		return 1;
	case M_LOOP_TURN_SECONDS:
		if (pk)
			pack_hist(pk, d, NULL, ls->hist, ls->callback_ns);
		return 1;
	case M_COUNT:
		break;
	}
	return 0;
}

void metrics_pack_export(msgpack_packer *pk, const regex_t *only, const struct sandbox *sb)
{
	bool want[M_COUNT];
	size_t total = 0;
	for (size_t id = 0; id < M_COUNT; id++) {
		want[id] = !only || regexec(only, metrics[id].prom, 0, NULL, 0) == 0;
		if (want[id])
			total += pack_metric(NULL, (enum metric_id)id, sb);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	msgpack_pack_map(pk, 2);
	mpk_pack_key(pk, "ExportedAt");
	msgpack_pack_int64(pk, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	mpk_pack_key(pk, "Data");
	msgpack_pack_array(pk, (uint32_t)total);
	for (size_t id = 0; id < M_COUNT; id++)
		if (want[id])
			pack_metric(pk, (enum metric_id)id, sb);
}

#pragma once
/* The sandbox's metrics registry (Metrics.GetRegisteredMetrics,
 * Metrics.Export; docs/API.md). A fixed table of counters, gauges and
 * histograms the controller really keeps: RPC calls, errors and latency
 * per method (an rpc/ observer), containers and tasks by state (counted
 * from the model when exported), execs started and failed, signals sent,
 * the reactor's turns and callback time (core/loop.c). Recording is a
 * few increments into static arrays: no allocation, no lock (one thread).
 *
 * Off unless metrics_init(true) ran before the loop was made (boot does,
 * unless CVISOR_METRICS=0, which the benchmark uses to measure the cost). */
#include <msgpack.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

struct sandbox;

/* Installs the RPC observer and the loop's timing (or neither). */
void metrics_init(bool enabled);
bool metrics_enabled(void);
/* Zeroes every value (unit tests). */
void metrics_reset(void);

/* Recording hooks (no-ops while disabled). */
void metrics_rpc_observe(size_t method, bool failed, uint64_t ns);
void metrics_exec_done(bool started);
void metrics_signal_sent(void);

/* GetRegisteredMetrics' result: {"Metrics": [...]} (docs/API.md). */
void metrics_pack_registration(msgpack_packer *pk);
/* Export's result: {"ExportedAt": ns, "Data": [...]}, only the metrics
 * whose Prometheus name matches `only` (NULL: all). sb may be NULL (no
 * container or task gauges then). */
void metrics_pack_export(msgpack_packer *pk, const regex_t *only, const struct sandbox *sb);

/* Prometheus text exposition (format 0.0.4) of an Export result, with
 * HELP and TYPE lines from a GetRegisteredMetrics result. Used by
 * `cvisor export-metrics`. -1 with err when either is malformed. */
int metrics_write_prometheus(FILE *out, const msgpack_object *registration,
			     const msgpack_object *exported, struct cv_error *err);

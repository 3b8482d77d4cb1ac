/* Metrics.GetRegisteredMetrics and Metrics.Export (docs/API.md): the
 * registry of kernel/metrics.c over RPC. */
#include <stddef.h>
#include <stdio.h>

#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/metrics.h"
#include "kernel/model.h"

struct export_opts {
	char *only_metrics;
};

static const struct mpk_field export_fields[] = {
	{ "only_metrics", MPK_STR, offsetof(struct export_opts, only_metrics), MPK_NONE, MPK_NONE, 0,
	  NULL },
};
static const struct mpk_schema export_schema = { "MetricsExportOpts", sizeof(struct export_opts),
						 export_fields, ARRAY_SIZE(export_fields) };

void metrics_get_registered(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg; /* runsc's takes an empty struct: anything is accepted */
	metrics_pack_registration(rpc_result_packer(call));
	rpc_reply_packed(call);
}

void metrics_export(struct rpc_call *call, const msgpack_object *arg)
{
	struct export_opts o = { 0 };
	struct cv_error err = { 0 };
	if (arg->type != MSGPACK_OBJECT_NIL &&
	    mpk_decode(arg, &export_schema, &o, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	regex_t re;
	bool filter = o.only_metrics && o.only_metrics[0];
	if (filter) {
		int rc = regcomp(&re, o.only_metrics, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char why[128];
			regerror(rc, &re, why, sizeof(why));
			rpc_fail(call, "MetricsExportOpts.only_metrics: invalid regular expression %s: %s",
				 o.only_metrics, why);
			return;
		}
	}
	metrics_pack_export(rpc_result_packer(call), filter ? &re : NULL, rpc_call_ctx(call));
	if (filter)
		regfree(&re);
	rpc_reply_packed(call);
}

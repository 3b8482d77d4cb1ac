/* `cvisor start ID`: release the created root container, then run its
 * poststart hooks. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/conn.h"
#include "cmd/hooks.h"
#include "cmd/verbs.h"
#include "kernel/hooks.h"

/* What a failing startContainer hook says (kernel/hooks.c), quoted by
 * StartRoot's error. */
#define START_HOOK_FAILED "spec.hooks.startContainer["

/* StartRoot answers once the init executed, after its startContainer hooks:
 * they get their timeouts on top of the usual bound, none when one has
 * none. */
static void allow_start_hooks(struct rpc_client *c, const struct oci_hooks *h)
{
	static const char *const start_root[] = { "containerManager.StartRoot", NULL };
	if (h->n_start_container == 0)
		return;
	int ms = hooks_budget_ms(h->start_container, h->n_start_container);
	if (ms < 0)
		rpc_client_set_timeout(c, CLI_RPC_TIMEOUT_MS, start_root);
	else
		rpc_client_set_timeout(c, CLI_RPC_TIMEOUT_MS + ms, NULL);
}

int start_container(const char *id, struct cv_error *err)
{
	if (cli_validate_id(id, err) < 0)
		return -1;
	struct cli_state st;
	if (cli_state_load(id, &st, err) < 0)
		return -1;
	struct cli_hooks hooks;
	if (cli_hooks_load(cli_json_get(st.j, "hooks", json_type_object), &hooks, err) < 0) {
		cli_hooks_free(&hooks);
		cli_state_free(&st);
		return -1;
	}
	struct rpc_client *c = cli_connect(id, err);
	int r = -1;
	if (!c) {
		cv_error_wrap(err, "cannot start container \"%s\"", id);
		goto out;
	}
	int64_t state = 0;
	r = cli_runtime_state(c, id, &state, err);
	if (r == 0 && state != RUNTIME_STATE_CREATING)
		r = cv_errf(err, 0, "cannot start container \"%s\" in state %s", id,
			    cli_status_name(state, st.paused));
	const msgpack_object *res;
	bool released = r == 0;
	allow_start_hooks(c, &hooks.h);
	char sid[CLI_ID_MAX + 1];
	const char *method = sub_sandbox_of(id, sid, sizeof(sid))
				     ? "containerManager.ReleaseSubcontainer"
				     : "containerManager.StartRoot";
	if (r == 0)
		r = rpc_client_call_str(c, method, id, &res, err);
	rpc_client_close(c);
	if (r < 0 && released && strstr(err->msg, START_HOOK_FAILED)) {
		/* The runtime spec: a failed startContainer hook stops the
		 * container and the lifecycle goes on to its destruction (and
		 * poststop); nothing of it is left. */
		struct cv_error derr;
		if (delete_sandbox(id, true, &derr) < 0)
			fprintf(stderr, "cvisor: warning: removing container \"%s\" after its failed "
					"startContainer hook: %s\n", id, derr.msg);
	}
	if (r == 0) {
		/* After the user process started, before start returns; in the
		 * runtime's namespaces (this CLI's). */
		struct cli_hook_state hs = { .id = st.id, .status = "running", .bundle = st.bundle,
					     .rootfs = st.rootfs, .created = st.created,
					     .pid = st.pid, .annotations = st.annotations };
		cli_hooks_run_warn(hooks.h.poststart, hooks.h.n_poststart, "poststart", &hs);
	}
out:
	cli_hooks_free(&hooks);
	cli_state_free(&st);
	return r;
}

int cmd_start(const struct cli_command *cmd, int argc, char **argv)
{
	int done = cli_no_flags(cmd, argc, argv);
	if (done >= 0)
		return done;
	if (optind + 1 != argc)
		return cli_failf("start needs exactly one container ID");
	struct cv_error err = { 0 };
	if (start_container(argv[optind], &err) < 0)
		return cli_fail(&err);
	return 0;
}

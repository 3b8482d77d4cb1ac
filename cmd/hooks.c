/* OCI hooks on the CLI's side (cmd/hooks.h): the state document, the
 * copy of config.json's hooks kept in state.json, and boot's hook point. */
#include "cmd/hooks.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "kernel/hooks.h"

int cli_hooks_state_fd(const struct cli_hook_state *s, struct cv_error *err)
{
	/* `cvisor state`'s keys in its order (cmd/state.c), owner "" as it
	 * prints it. */
	json_object *j = json_object_new_object();
	json_object_object_add(j, "ociVersion", json_object_new_string(CLI_OCI_VERSION));
	json_object_object_add(j, "id", json_object_new_string(s->id));
	json_object_object_add(j, "pid", json_object_new_int64(s->pid));
	json_object_object_add(j, "status", json_object_new_string(s->status));
	json_object_object_add(j, "bundle", json_object_new_string(s->bundle ? s->bundle : ""));
	json_object_object_add(j, "rootfs", json_object_new_string(s->rootfs ? s->rootfs : ""));
	json_object_object_add(j, "created", json_object_new_string(s->created ? s->created : ""));
	json_object_object_add(j, "owner", json_object_new_string(""));
	if (s->annotations && json_object_object_length(s->annotations) > 0)
		json_object_object_add(j, "annotations", json_object_get(s->annotations));
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		json_object_put(j);
		return cv_errf(err, errno, "writing the hooks' state");
	}
	cli_json_print(f, j, false);
	json_object_put(j);
	if (fclose(f) != 0 || !text) {
		free(text);
		return cv_errf(err, ENOMEM, "writing the hooks' state");
	}
	int fd = hooks_state_fd(text, len, err);
	free(text);
	return fd;
}

int cli_hooks_load(json_object *j, struct cli_hooks *out, struct cv_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!j)
		return 0;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int r = -1;
	if (json_mp_pack(j, &pk, err) < 0) {
		cv_error_wrap(err, "spec.hooks");
		goto out;
	}
	out->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!out->zone) {
		cv_errf(err, ENOMEM, "spec.hooks");
		goto out;
	}
	msgpack_object obj;
	size_t off = 0;
	if (msgpack_unpack(sb.data, sb.size, &off, out->zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
		cv_errf(err, 0, "spec.hooks: cannot be converted");
		goto out;
	}
	/* The decoded strings live in the zone; obj's own bytes in sb. */
	r = oci_hooks_decode(&obj, out->zone, &out->h, err);
out:
	msgpack_sbuffer_destroy(&sb);
	return r;
}

void cli_hooks_free(struct cli_hooks *h)
{
	if (h->zone)
		msgpack_zone_free(h->zone);
	memset(h, 0, sizeof(*h));
}

static void warn(const char *kind, const struct cv_error *err)
{
	char *safe = cli_escape_dup(err->msg);
	fprintf(stderr, "cvisor: warning: %s hooks: %s\n", kind, safe ? safe : "(out of memory)");
	free(safe);
}

void cli_hooks_run_warn(const struct oci_hook *hooks, size_t n, const char *kind,
			const struct cli_hook_state *s)
{
	if (n == 0)
		return;
	struct cv_error err = { 0 };
	int fd = cli_hooks_state_fd(s, &err);
	if (fd < 0) {
		warn(kind, &err);
		return;
	}
	/* Unlike the create-time lists, a failure does not stop this one: the
	 * spec says of poststart and poststop that the runtime MUST log a
	 * warning "but the remaining hooks and lifecycle continue as if the
	 * hook had succeeded" (runtime-tools' poststart_fail and poststop_fail;
	 * crun does so, runc 1.1 stops). */
	for (size_t i = 0; i < n; i++) {
		if (hooks_run_at(hooks, i, kind, fd, NULL, &err) < 0)
			warn(kind, &err);
		cv_error_reset(&err);
	}
	close(fd);
}

/* spec.annotations (a map of strings, checked by the decoder) as JSON. */
static json_object *annotations_json(const msgpack_object *m)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP || m->via.map.size == 0)
		return NULL;
	json_object *j = json_object_new_object();
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
			continue;
		char *key = strndup(k->via.str.ptr, k->via.str.size);
		if (!key)
			continue;
		json_object_object_add(j, key,
				       json_object_new_string_len(v->via.str.ptr, (int)v->via.str.size));
		free(key);
	}
	return j;
}

int cli_hooks_boot_point(void *ctx, const struct oci_spec *spec, pid_t init_pid, int state_fds[2],
			 struct cv_error *err)
{
	const struct cli_hook_point *hp = ctx;
	const struct oci_hooks *h = &spec->hooks;
	char rootfs[PATH_MAX * 2];
	const char *rp = spec->root.path;
	/* As create computes it for state.json. */
	if (rp[0] == '/')
		snprintf(rootfs, sizeof(rootfs), "%s", rp);
	else
		snprintf(rootfs, sizeof(rootfs), "%s/%s", hp->bundle, rp);
	struct cli_hook_state st = {
		.id = hp->id,
		.status = "creating",
		.bundle = hp->bundle,
		.rootfs = rootfs,
		.created = hp->created,
		.pid = init_pid,
		.annotations = annotations_json(spec->annotations),
	};
	int r = -1, prestart = -1, creating = cli_hooks_state_fd(&st, err);
	if (creating < 0)
		goto out;
	/* prestart (the legacy hook) is told status "created", as crun tells
	 * it and as the runtime-tools validation suite (hooks_stdin) requires;
	 * createRuntime and createContainer keep runc's "creating". */
	if (h->n_prestart) {
		st.status = "created";
		prestart = cli_hooks_state_fd(&st, err);
		st.status = "creating";
		if (prestart < 0)
			goto out;
	}
	/* prestart then createRuntime, both here in the runtime's namespaces
	 * (boot's: the host's), at the same point, as runc runs them; the
	 * cwd is the bundle (boot's, as runc's create chdirs there). */
	if (hooks_run(h->prestart, h->n_prestart, "prestart", prestart, NULL, err) < 0 ||
	    hooks_run(h->create_runtime, h->n_create_runtime, "createRuntime", creating, NULL, err) <
		    0)
		goto out;
	if (h->n_start_container) {
		st.status = "created";
		state_fds[1] = cli_hooks_state_fd(&st, err);
		if (state_fds[1] < 0)
			goto out;
	}
	if (h->n_create_container) {
		state_fds[0] = creating;
		creating = -1;
	}
	r = 0;
out:
	if (creating >= 0)
		close(creating);
	if (prestart >= 0)
		close(prestart);
	if (r < 0 && state_fds[1] >= 0) {
		close(state_fds[1]);
		state_fds[1] = -1;
	}
	if (st.annotations)
		json_object_put(st.annotations);
	return r;
}

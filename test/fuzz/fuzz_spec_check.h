#pragma once
/* Checks a decoded struct oci_spec / oci_resources the way its consumers
 * use it: every string is read to its NUL and every vector to its count
 * (so ASan sees a count that overruns its array or a string without its
 * terminator), and what oci_spec_decode promises on success holds.
 * Shared by fuzz_spec.c (msgpack) and fuzz_spec_json.c (JSON text). */
#include <assert.h>
#include <string.h>

#include "core/mpk.h"
#include "core/spec.h"

static size_t fuzz_sink;

static void fz_str(const char *s)
{
	if (s)
		fuzz_sink += strlen(s);
}

static void fz_strv(char **v, size_t n)
{
	assert(n == 0 || v);
	for (size_t i = 0; i < n; i++) {
		assert(v[i]); /* a vector holds no NULL entries... */
		fz_str(v[i]);
	}
	/* ...and is NULL-terminated (execve's argv, envp). */
	if (v)
		assert(v[n] == NULL);
}

static void fz_string_map(const msgpack_object *m)
{
	if (!m)
		return;
	assert(m->type == MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		assert(m->via.map.ptr[i].key.type == MSGPACK_OBJECT_STR);
		assert(m->via.map.ptr[i].val.type == MSGPACK_OBJECT_STR);
		const msgpack_object_str *s = &m->via.map.ptr[i].val.via.str;
		assert(s->size == 0 || !memchr(s->ptr, '\0', s->size));
	}
}

static void fz_resources(const struct oci_resources *r)
{
	fz_str(r->cpu.cpus);
	fz_str(r->cpu.mems);
	fuzz_sink += (size_t)r->memory.limit + (size_t)r->pids.limit + r->cpu.shares;
	/* h-cgres: what kernel/cgroup_res.c reads. */
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < r->blkio.n_throttle[k]; i++)
			fuzz_sink += r->blkio.throttle[k][i].rate;
	for (size_t i = 0; i < r->blkio.n_weight_device; i++)
		fuzz_sink += r->blkio.weight_device[i].weight;
	for (size_t i = 0; i < r->n_hugepage_limits; i++)
		fz_str(r->hugepage_limits[i].page_size);
	for (size_t i = 0; i < r->network.n_priorities; i++)
		fz_str(r->network.priorities[i].name);
	assert(!r->rdma || r->rdma->type == MSGPACK_OBJECT_MAP);
	assert(!r->unified || r->unified->type == MSGPACK_OBJECT_MAP);
}

static void fz_spec(const struct oci_spec *s)
{
	fz_str(s->oci_version);
	fz_str(s->hostname);
	fz_str(s->domainname);
	/* The promises of a successful decode. */
	assert(s->has_process && s->process.n_args > 0 && s->process.args[0]);
	assert(!s->process.cwd || s->process.cwd[0] == '/');
	assert(s->has_root && s->root.path);

	const struct oci_process *p = &s->process;
	fz_strv(p->args, p->n_args);
	fz_strv(p->env, p->n_env);
	fz_str(p->cwd);
	fz_str(p->apparmor_profile);
	fz_str(p->user.username);
	assert(p->user.n_additional_gids == 0 || p->user.additional_gids);
	for (size_t i = 0; i < p->user.n_additional_gids; i++)
		fuzz_sink += p->user.additional_gids[i];
	const struct oci_capabilities *c = &p->capabilities;
	fz_strv(c->bounding, c->n_bounding);
	fz_strv(c->effective, c->n_effective);
	fz_strv(c->inheritable, c->n_inheritable);
	fz_strv(c->permitted, c->n_permitted);
	fz_strv(c->ambient, c->n_ambient);
	for (size_t i = 0; i < p->n_rlimits; i++) {
		assert(p->rlimits[i].type); /* required, and checked against the known names */
		assert(strncmp(p->rlimits[i].type, "RLIMIT_", 7) == 0);
	}
	fz_str(s->root.path);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct oci_mount *m = &s->mounts[i];
		assert(m->destination && m->destination[0] == '/');
		fz_str(m->type);
		fz_str(m->source);
		fz_strv(m->options, m->n_options);
	}
	fz_string_map(s->annotations);
	if (!s->has_linux)
		return;
	const struct oci_linux *l = &s->linux_;
	int seen = 0;
	for (size_t i = 0; i < l->n_namespaces; i++) {
		int flag = oci_namespace_flag(l->namespaces[i].type);
		assert(flag != 0 && !(seen & flag)); /* known, and each type once */
		seen |= flag;
		fz_str(l->namespaces[i].path);
	}
	for (size_t i = 0; i < l->n_uid_mappings; i++)
		fuzz_sink += l->uid_mappings[i].size;
	for (size_t i = 0; i < l->n_gid_mappings; i++)
		fuzz_sink += l->gid_mappings[i].size;
	if (l->has_resources)
		fz_resources(&l->resources);
	fz_str(l->cgroups_path);
	fz_strv(l->masked_paths, l->n_masked_paths);
	fz_strv(l->readonly_paths, l->n_readonly_paths);
	fz_str(l->rootfs_propagation);
	fz_str(l->mount_label);
	fz_string_map(l->sysctl);
	if (l->has_seccomp) {
		const struct oci_seccomp *sc = &l->seccomp;
		fz_str(sc->default_action);
		fz_strv(sc->architectures, sc->n_architectures);
		fz_strv(sc->flags, sc->n_flags);
		for (size_t i = 0; i < sc->n_syscalls; i++) {
			const struct oci_seccomp_syscall *y = &sc->syscalls[i];
			assert(y->action);
			fz_str(y->action);
			fz_strv(y->names, y->n_names);
			for (size_t k = 0; k < y->n_args; k++) {
				assert(y->args[k].op);
				fz_str(y->args[k].op);
			}
		}
	}
}

/* Runs both decoders on one msgpack object and checks what they made. An
 * error must say something and, when it names a field, name it under the
 * document it decoded ("spec..." / "resources..."). */
static void fz_decode_all(const msgpack_object *obj)
{
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	assert(zone);
	struct cv_error err = { 0 };
	struct oci_spec spec;
	if (oci_spec_decode(obj, zone, &spec, &err) == 0) {
		fz_spec(&spec);
		if (spec.annotations)
			(void)mpk_map_get(spec.annotations, "dev.cvisor.fuzz");
	} else {
		assert(err.msg[0]);
		assert(strncmp(err.msg, "spec", 4) == 0);
	}
	struct cv_error err2 = { 0 };
	struct oci_resources res;
	if (oci_resources_decode(obj, zone, &res, &err2) == 0) {
		fz_resources(&res);
	} else {
		assert(err2.msg[0]);
		assert(strncmp(err2.msg, "resources", 9) == 0);
	}
	msgpack_zone_free(zone);
}

/* Donated bind mounts (kernel/spawn.h, spawn_bind_fds): the i-th fd given
 * for a container is the i-th bind mount of its spec, by the rule the CLI
 * and the gofer used to clone them (cmd/gofer.c, is_bind). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "kernel/mount_opts.h"
#include "kernel/spawn.h"

static bool spec_bind(const struct oci_mount *m)
{
	const char *type = m->type ? m->type : "";
	if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0)
		return false;
	struct mount_opts o;
	struct cv_error ignored;
	/* Bad options fail the mount later, naming the field; not a bind here. */
	if (mount_opts_parse(m->options, m->n_options, "spec.mounts", &o, &ignored) < 0)
		return strcmp(type, "bind") == 0;
	return strcmp(type, "bind") == 0 || (o.flags & MS_BIND);
}

int spawn_bind_fds(const struct oci_spec *spec, const int *fds, size_t nfds, int **out,
		   struct cv_error *err)
{
	*out = NULL;
	size_t want = 0;
	for (size_t i = 0; i < spec->n_mounts; i++)
		want += spec_bind(&spec->mounts[i]);
	if (nfds != want)
		return cv_errf(err, 0, "%zu bind mounts were donated, the spec has %zu", nfds, want);
	if (!want)
		return 0;
	int *map = malloc(spec->n_mounts * sizeof(*map));
	if (!map)
		return cv_errf(err, ENOMEM, "the container's bind mounts");
	size_t k = 0;
	for (size_t i = 0; i < spec->n_mounts; i++)
		map[i] = spec_bind(&spec->mounts[i]) ? fds[k++] : -1;
	*out = map;
	return 0;
}

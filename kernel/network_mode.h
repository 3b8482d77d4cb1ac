#pragma once
/* The sandbox's network (docs/DESIGN.md, "Network"): the global CLI flag
 * --network picks a mode, the spec's linux.namespaces decide the rest.
 *
 *   sandbox (default)  the spec's network namespace: a new one (the
 *                      sandbox brings its lo up; Network.CreateLinksAndRoutes
 *                      adds links), one joined by path (CNI made it; left as
 *                      it is), or none in the spec: the host's, as runc
 *   none               a new namespace whatever the spec says; lo only
 *   host               the host's namespace whatever the spec says
 *
 * Subcontainers join the root container's namespaces, so they share its
 * network. */
#include <msgpack.h>

#include "core/err.h"

struct oci_spec;
struct sandbox;

enum net_mode {
	NET_MODE_SANDBOX,
	NET_MODE_NONE,
	NET_MODE_HOST,
};

/* What the root container's network namespace turned out to be. */
enum net_kind {
	NET_KIND_HOST, /* boot's own (the host's): nothing of it is changed */
	NET_KIND_OWN,  /* created for the sandbox */
	NET_KIND_PATH, /* joined by path from the spec */
};

int net_mode_parse(const char *s, enum net_mode *out, struct cv_error *err);
const char *net_mode_name(enum net_mode m);

/* Makes spec's namespaces say what the mode means (none: a new network
 * namespace; host: none of its own). New arrays come from zone. */
int net_mode_apply_spec(struct oci_spec *spec, enum net_mode mode, msgpack_zone *zone,
			struct cv_error *err);

/* Once the root init is set up (before it runs the workload): keeps an
 * fd of the sandbox's network namespace (sb->netns_fd) and, for a
 * namespace of its own, brings lo up with 127.0.0.1/8 and ::1. */
int net_mode_setup(struct sandbox *sb, struct cv_error *err);

struct container;
struct spawn_init_args;
struct spawned;
/* Spawns a subcontainer's init (spawn_container_init) in the sandbox's
 * network namespace, whatever its spec says: the spec's network entries
 * are dropped (c->ns_flags follows) and the clone happens from inside the
 * sandbox's namespace (the host's when it has none of its own). */
int net_spawn_sub(struct container *c, const struct spawn_init_args *sa, struct spawned *sp,
		  struct cv_error *err);
/* What a subcontainer's execs must join besides the spec's namespaces:
 * CLONE_NEWNET when the sandbox has a namespace of its own. */
int net_sub_join_flags(const struct sandbox *sb);

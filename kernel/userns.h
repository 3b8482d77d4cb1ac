#pragma once
/* User namespaces of containers (spec.linux.namespaces "user" with
 * spec.linux.uidMappings / gidMappings), as runc makes them: boot clones
 * the init with CLONE_NEWUSER together with its other new namespaces (so
 * they belong to the new user namespace), writes /proc/<pid>/uid_map and
 * gid_map itself (as root: setgroups stays "allow", as runc leaves it),
 * then lets the init go on; the init becomes root of its namespace before
 * its set-up. A user namespace joined by path is entered by the init
 * first, and the namespaces it creates are then unshared inside it. */
#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"

/* The kernel's limit on the lines of a uid_map / gid_map. */
#define USERNS_MAX_MAP_LINES 340

/* The spec lists a "user" namespace (new or by path). */
bool userns_listed(const struct oci_spec *spec);
/* The path of a user namespace the spec joins; NULL when it joins none. */
const char *userns_join_path(const struct oci_spec *spec);

/* The same, but NULL when the path names the caller's own user namespace
 * (there is then nothing to join). Call before joining anything. */
const char *userns_to_join(const struct oci_spec *spec);

/* Everything about user namespaces the spec gets wrong, said before any
 * clone, naming the field: mappings missing, given without a user
 * namespace or with one joined by path, of size 0, past the last id,
 * overlapping, more than USERNS_MAX_MAP_LINES lines or longer than the
 * kernel takes, container root or the process's user/groups unmapped, a
 * new pid or time namespace with a user namespace joined by path. */
int userns_check_spec(const struct oci_spec *spec, struct cv_error *err);

/* The new namespaces (CLONE_NEW*, from ns_flags) the init must unshare
 * itself, after joining the user namespace the spec names by path, so
 * that they belong to it; 0 when the spec joins no user namespace (or the
 * caller's own). Call before joining anything. */
int userns_unshare_later(const struct oci_spec *spec, int ns_flags);

/* In boot: writes the spec's uid_map and gid_map of pid (pidfd guards
 * against pid reuse). */
int userns_write_maps(pid_t pid, int pidfd, const struct oci_spec *spec, struct cv_error *err);

/* In the child, right after its user namespace is mapped or joined:
 * becomes uid/gid 0 of it with no supplementary groups, so the set-up
 * works as the container's root, never as the host's. */
int userns_become_root(struct cv_error *err);

/* Whether the current network namespace belongs to the current user
 * namespace (sysfs can only be mounted then). 1 yes, 0 no, -1 err. */
int userns_owns_netns(struct cv_error *err);

/* join_flags without CLONE_NEWUSER when init_pid shares boot's own user
 * namespace (setns would say EINVAL). */
int userns_exec_join_flags(int join_flags, pid_t init_pid);

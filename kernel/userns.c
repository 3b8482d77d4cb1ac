/* User namespaces of containers (kernel/userns.h). */
#include "kernel/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* map_write() refuses a write of a page or more. */
#define MAP_TEXT_MAX 4096

static const struct oci_namespace *user_entry(const struct oci_spec *spec)
{
	for (size_t i = 0; spec->has_linux && i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];
		if (ns->type && strcmp(ns->type, "user") == 0)
			return ns;
	}
	return NULL;
}

bool userns_listed(const struct oci_spec *spec)
{
	return user_entry(spec) != NULL;
}

const char *userns_join_path(const struct oci_spec *spec)
{
	const struct oci_namespace *ns = user_entry(spec);
	return ns && ns->path && *ns->path ? ns->path : NULL;
}

/* path names the caller's own user namespace (boot's, before the child
 * joins anything): there is nothing to join (setns would say EINVAL). */
static bool is_own_userns(const char *path)
{
	struct stat a, b;
	return stat(path, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

const char *userns_to_join(const struct oci_spec *spec)
{
	const char *path = userns_join_path(spec);
	return path && !is_own_userns(path) ? path : NULL;
}

static bool mapped(const struct oci_id_mapping *m, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= m[i].container_id && (uint64_t)id < (uint64_t)m[i].container_id + m[i].size)
			return true;
	return false;
}

static bool overlap(uint32_t a, uint32_t b, uint32_t size_a, uint32_t size_b)
{
	return (uint64_t)a < (uint64_t)b + size_b && (uint64_t)b < (uint64_t)a + size_a;
}

/* The map as the kernel reads it: "containerID hostID size\n" lines. */
static int map_text(const struct oci_id_mapping *m, size_t n, char *out, size_t out_len)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + len, out_len - len, "%u %u %u\n", m[i].container_id,
				 m[i].host_id, m[i].size);
		if (w < 0 || (size_t)w >= out_len - len)
			return -1;
		len += (size_t)w;
	}
	return (int)len;
}

/* What map_write() would refuse, said with the field's name. */
static int check_map(const char *field, const struct oci_id_mapping *m, size_t n,
		     struct cv_error *err)
{
	if (n > USERNS_MAX_MAP_LINES)
		return cv_errf(err, 0, "spec.linux.%s: %zu mappings, the kernel takes at most %d",
			       field, n, USERNS_MAX_MAP_LINES);
	for (size_t i = 0; i < n; i++) {
		if (m[i].size == 0)
			return cv_errf(err, 0, "spec.linux.%s[%zu].size: must not be 0", field, i);
		/* id + size must stay below 2^32 - 1, the invalid id. */
		if ((uint64_t)m[i].container_id + m[i].size > UINT32_MAX)
			return cv_errf(err, 0, "spec.linux.%s[%zu]: containerID %u + size %u goes past "
					       "the last id %u", field, i, m[i].container_id, m[i].size,
				       UINT32_MAX - 1);
		if ((uint64_t)m[i].host_id + m[i].size > UINT32_MAX)
			return cv_errf(err, 0, "spec.linux.%s[%zu]: hostID %u + size %u goes past "
					       "the last id %u", field, i, m[i].host_id, m[i].size,
				       UINT32_MAX - 1);
		for (size_t j = 0; j < i; j++) {
			if (overlap(m[i].container_id, m[j].container_id, m[i].size, m[j].size))
				return cv_errf(err, 0, "spec.linux.%s[%zu] and [%zu]: the containerID "
						       "ranges overlap", field, j, i);
			if (overlap(m[i].host_id, m[j].host_id, m[i].size, m[j].size))
				return cv_errf(err, 0, "spec.linux.%s[%zu] and [%zu]: the hostID ranges "
						       "overlap", field, j, i);
		}
	}
	char text[MAP_TEXT_MAX];
	if (map_text(m, n, text, sizeof(text)) < 0)
		return cv_errf(err, 0, "spec.linux.%s: the map is longer than the %d bytes the kernel "
				       "takes in one write", field, MAP_TEXT_MAX - 1);
	return 0;
}

int userns_check_spec(const struct oci_spec *spec, struct cv_error *err)
{
	const struct oci_linux *l = &spec->linux_;
	size_t nu = spec->has_linux ? l->n_uid_mappings : 0;
	size_t ng = spec->has_linux ? l->n_gid_mappings : 0;
	const struct oci_namespace *ns = user_entry(spec);
	const char *field = nu ? "uidMappings" : "gidMappings";
	if (!ns) {
		if (nu || ng)
			return cv_errf(err, 0, "spec.linux.%s: given without a user namespace in "
					       "spec.linux.namespaces", field);
		return 0;
	}
	if (ns->path && *ns->path) {
		if (nu || ng)
			return cv_errf(err, 0, "spec.linux.%s: given with a user namespace joined by "
					       "path (%s), whose mappings are already set", field, ns->path);
		for (size_t i = 0; !is_own_userns(ns->path) && i < l->n_namespaces; i++) {
			const struct oci_namespace *o = &l->namespaces[i];
			if (!o->type || (o->path && *o->path))
				continue;
			/* These apply to children only: the init would have to fork
			 * again inside the joined user namespace. */
			if (strcmp(o->type, "pid") == 0 || strcmp(o->type, "time") == 0)
				return cv_errf(err, 0, "spec.linux.namespaces: a new %s namespace cannot be "
						       "made with a user namespace joined by path; join "
						       "the %s namespace by path too", o->type, o->type);
		}
		return 0;
	}
	if (!nu)
		return cv_errf(err, 0, "spec.linux.uidMappings: required with a new user namespace "
				       "(spec.linux.namespaces)");
	if (!ng)
		return cv_errf(err, 0, "spec.linux.gidMappings: required with a new user namespace "
				       "(spec.linux.namespaces)");
	if (check_map("uidMappings", l->uid_mappings, nu, err) < 0 ||
	    check_map("gidMappings", l->gid_mappings, ng, err) < 0)
		return -1;
	/* The set-up runs as root of the namespace (runc's setresuid(0)). */
	if (!mapped(l->uid_mappings, nu, 0))
		return cv_errf(err, 0, "spec.linux.uidMappings: must map the container's uid 0 (the "
				       "container is set up as root of its user namespace)");
	if (!mapped(l->gid_mappings, ng, 0))
		return cv_errf(err, 0, "spec.linux.gidMappings: must map the container's gid 0 (the "
				       "container is set up as root of its user namespace)");
	const struct oci_user *u = &spec->process.user;
	if (!mapped(l->uid_mappings, nu, u->uid))
		return cv_errf(err, 0, "spec.process.user.uid: %u is not mapped by "
				       "spec.linux.uidMappings", u->uid);
	if (!mapped(l->gid_mappings, ng, u->gid))
		return cv_errf(err, 0, "spec.process.user.gid: %u is not mapped by "
				       "spec.linux.gidMappings", u->gid);
	for (size_t i = 0; i < u->n_additional_gids; i++)
		if (!mapped(l->gid_mappings, ng, u->additional_gids[i]))
			return cv_errf(err, 0, "spec.process.user.additionalGids[%zu]: %u is not "
					       "mapped by spec.linux.gidMappings", i,
				       u->additional_gids[i]);
	return 0;
}

int userns_unshare_later(const struct oci_spec *spec, int ns_flags)
{
	if (!userns_to_join(spec))
		return 0;
	return ns_flags & (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS);
}

static int write_map(int procfd, pid_t pid, const char *name, const struct oci_id_mapping *m,
		     size_t n, struct cv_error *err)
{
	char text[MAP_TEXT_MAX];
	int len = map_text(m, n, text, sizeof(text));
	if (len < 0)
		return cv_errf(err, E2BIG, "the %s of process %d is too long", name, pid);
	int fd = openat(procfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "opening /proc/%d/%s", pid, name);
	/* One write: the kernel takes a map once, whole. */
	ssize_t w = write(fd, text, (size_t)len);
	int e = errno;
	close(fd);
	if (w < 0)
		return cv_errf(err, e, "writing /proc/%d/%s (spec.linux.%s)", pid, name,
			       strcmp(name, "uid_map") == 0 ? "uidMappings" : "gidMappings");
	if (w != len)
		return cv_errf(err, EIO, "writing /proc/%d/%s: short write", pid, name);
	return 0;
}

int userns_write_maps(pid_t pid, int pidfd, const struct oci_spec *spec, struct cv_error *err)
{
	char dir[32];
	snprintf(dir, sizeof(dir), "/proc/%d", pid);
	int procfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return cv_errf(err, errno, "opening %s to map its user namespace", dir);
	/* Opened while the pidfd's process lives: the directory is its one. */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
		int e = errno;
		close(procfd);
		return cv_errf(err, e, "the container's init exited before its user namespace was "
				       "mapped");
	}
	const struct oci_linux *l = &spec->linux_;
	int r = write_map(procfd, pid, "uid_map", l->uid_mappings, l->n_uid_mappings, err);
	if (r == 0)
		r = write_map(procfd, pid, "gid_map", l->gid_mappings, l->n_gid_mappings, err);
	close(procfd);
	return r;
}

int userns_become_root(struct cv_error *err)
{
	/* boot's supplementary groups are the host's: gone first. */
	if (setgroups(0, NULL) < 0)
		return cv_errf(err, errno, "dropping the host's groups in the user namespace");
	if (setresgid(0, 0, 0) < 0)
		return cv_errf(err, errno, "becoming gid 0 of the user namespace (is it mapped?)");
	if (setresuid(0, 0, 0) < 0)
		return cv_errf(err, errno, "becoming uid 0 of the user namespace (is it mapped?)");
	return 0;
}

static int same_file(int fd, const char *path, struct cv_error *err)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0)
		return cv_errf(err, errno, "fstat of a namespace");
	if (stat(path, &b) < 0)
		return cv_errf(err, errno, "stat %s", path);
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int userns_owns_netns(struct cv_error *err)
{
	int net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (net < 0)
		return cv_errf(err, errno, "opening /proc/self/ns/net");
	int owner = ioctl(net, NS_GET_USERNS);
	int e = errno;
	close(net);
	/* EPERM: the owner is outside our user namespace, so not ours. */
	if (owner < 0)
		return e == EPERM ? 0 : cv_errf(err, e, "finding the owner of the network namespace");
	int r = same_file(owner, "/proc/self/ns/user", err);
	close(owner);
	return r;
}

int userns_exec_join_flags(int join_flags, pid_t init_pid)
{
	if (!(join_flags & CLONE_NEWUSER))
		return join_flags;
	char p[48];
	snprintf(p, sizeof(p), "/proc/%d/ns/user", init_pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return join_flags; /* the exec will say why it cannot join */
	struct cv_error e;
	int same = same_file(fd, "/proc/self/ns/user", &e);
	close(fd);
	return same == 1 ? join_flags & ~CLONE_NEWUSER : join_flags;
}

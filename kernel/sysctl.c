/* spec.linux.sysctl (kernel/sysctl.h). The lists are runc's
 * (libcontainer/configs/validate): a sysctl outside them is global to the
 * host, and one inside them is per namespace, so it is only the
 * container's to set when the namespace is the container's. */
#include "kernel/sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SYSCTL_PATH_MAX 512

static const struct {
	const char *key; /* exact key, or a prefix when it ends in '.' */
	int ns;          /* CLONE_NEW* that owns it */
	const char *ns_name;
} namespaced[] = {
	{ "kernel.msgmax", CLONE_NEWIPC, "ipc" },
	{ "kernel.msgmnb", CLONE_NEWIPC, "ipc" },
	{ "kernel.msgmni", CLONE_NEWIPC, "ipc" },
	{ "kernel.sem", CLONE_NEWIPC, "ipc" },
	{ "kernel.shmall", CLONE_NEWIPC, "ipc" },
	{ "kernel.shmmax", CLONE_NEWIPC, "ipc" },
	{ "kernel.shmmni", CLONE_NEWIPC, "ipc" },
	{ "kernel.shm_rmid_forced", CLONE_NEWIPC, "ipc" },
	{ "fs.mqueue.", CLONE_NEWIPC, "ipc" },
	{ "net.", CLONE_NEWNET, "network" },
	{ "kernel.hostname", CLONE_NEWUTS, "uts" },
	{ "kernel.domainname", CLONE_NEWUTS, "uts" },
};

/* Namespaces the container has of its own: every type listed in
 * spec.linux.namespaces, created by the runtime or joined by path. */
static int own_namespaces(const struct oci_spec *spec)
{
	int flags = 0;
	for (size_t i = 0; i < spec->linux_.n_namespaces; i++)
		flags |= oci_namespace_flag(spec->linux_.namespaces[i].type);
	return flags;
}

/* One key: well formed (dot-separated, non-empty components, no '/'),
 * namespaced, and its namespace the container's. */
static int check_key(const char *k, size_t kl, int own, struct cv_error *err)
{
	if (kl == 0)
		return cv_errf(err, 0, "spec.linux.sysctl: empty key");
	if (kl >= SYSCTL_PATH_MAX - sizeof("/proc/sys/"))
		return cv_errf(err, 0, "spec.linux.sysctl: key \"%.40s...\" is too long", k);
	if (k[0] == '.' || k[kl - 1] == '.' || memmem(k, kl, "..", 2) || memchr(k, '/', kl))
		return cv_errf(err, 0,
			       "spec.linux.sysctl: invalid key \"%.*s\" (expected dot-separated names "
			       "like \"net.ipv4.ip_forward\")",
			       (int)kl, k);
	for (size_t i = 0; i < NELEMS(namespaced); i++) {
		size_t l = strlen(namespaced[i].key);
		bool prefix = namespaced[i].key[l - 1] == '.';
		if (prefix ? (kl <= l || memcmp(k, namespaced[i].key, l) != 0)
			   : (kl != l || memcmp(k, namespaced[i].key, l) != 0))
			continue;
		if (!(own & namespaced[i].ns))
			return cv_errf(err, 0,
				       "spec.linux.sysctl: \"%.*s\" needs the container's own %s namespace "
				       "(spec.linux.namespaces): refusing to change the host's",
				       (int)kl, k, namespaced[i].ns_name);
		return 0;
	}
	return cv_errf(err, 0, "spec.linux.sysctl: \"%.*s\" is not namespaced: refusing to change the host",
		       (int)kl, k);
}

int sysctl_check(const struct oci_spec *spec, struct cv_error *err)
{
	if (!spec->has_linux || !spec->linux_.sysctl)
		return 0;
	const msgpack_object *map = spec->linux_.sysctl;
	if (map->type != MSGPACK_OBJECT_MAP)
		return cv_errf(err, 0, "spec.linux.sysctl: expected map");
	int own = own_namespaces(spec);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "spec.linux.sysctl: keys and values must be strings");
		if (check_key(k->via.str.ptr, k->via.str.size, own, err) < 0)
			return -1;
	}
	return 0;
}

/* /proc/sys/<key with '.' → '/'>, opened for writing only if it is a
 * procfs file reached without symlinks: the rootfs comes from the bundle
 * and a /proc that is not procfs would turn the write into anything. */
static int open_sysctl(const char *path, struct cv_error *err)
{
	struct open_how how = {
		.flags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
	};
	/* RESOLVE_IN_ROOT is relative to dirfd: give it "/" itself. */
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return cv_errf(err, errno, "opening the container's root");
	int fd = (int)syscall(SYS_openat2, root, path + 1, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(root, path + 1, (int)how.flags);
	int e = errno;
	close(root);
	if (fd < 0)
		return cv_errf(err, e, "opening %s", path);
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
		close(fd);
		return cv_errf(err, EXDEV, "%s is not on procfs (spec.mounts must mount proc on /proc)",
			       path);
	}
	return fd;
}

int sysctl_apply(const struct oci_spec *spec, struct cv_error *err)
{
	/* All keys first: a refused one must not follow written ones. */
	if (sysctl_check(spec, err) < 0)
		return -1;
	if (!spec->has_linux || !spec->linux_.sysctl)
		return 0;
	const msgpack_object *map = spec->linux_.sysctl;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
		uint32_t kl = k->via.str.size;
		char path[SYSCTL_PATH_MAX] = "/proc/sys/";
		size_t pl = strlen(path);
		for (uint32_t j = 0; j < kl; j++)
			path[pl + j] = k->via.str.ptr[j] == '.' ? '/' : k->via.str.ptr[j];
		path[pl + kl] = '\0';
		int fd = open_sysctl(path, err);
		ssize_t n = -1;
		if (fd >= 0) {
			do
				n = write(fd, v->via.str.ptr, v->via.str.size);
			while (n < 0 && errno == EINTR);
			int e = errno;
			close(fd);
			if (n < 0)
				cv_errf(err, e, "writing \"%.*s\" to %s", (int)v->via.str.size,
					v->via.str.ptr, path);
			else if ((size_t)n != v->via.str.size)
				cv_errf(err, EIO, "writing \"%.*s\" to %s: short write",
					(int)v->via.str.size, v->via.str.ptr, path);
		}
		if (fd < 0 || n < 0 || (size_t)n != v->via.str.size)
			return cv_error_wrap(err, "spec.linux.sysctl[\"%.*s\"]", (int)kl, k->via.str.ptr);
	}
	return 0;
}

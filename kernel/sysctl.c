/* spec.linux.sysctl (kernel/sysctl.h). The lists are runc's
 * (libcontainer/configs/validate): a sysctl outside them is global to the
 * host, and one inside them is per namespace, so it is only the
 * container's to set when the namespace is the container's. */
#include "kernel/sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"

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
	for (size_t i = 0; i < ARRAY_SIZE(namespaced); i++) {
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

/* A procfs of our own, mounted nowhere (the new mount API): the
 * container's /proc comes from the bundle's rootfs and spec, so its files
 * are not trusted even though sysctl_apply runs before readonlyPaths make
 * /proc/sys read-only. /proc/sys resolves net, ipc and uts entries by the
 * writer's namespaces, which are the container's. -1 when the kernel has
 * no fsopen (before 5.2). */
static int private_proc(void)
{
	int fs = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	int mnt = -1;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	close(fs);
	return mnt;
}

/* Opens "sys/<key path>" for writing beneath dirfd without symlinks, and
 * only if it is a procfs file: with the container's /proc (the fallback)
 * a /proc that is not procfs would turn the write into anything. */
static int open_sysctl(int dirfd, const char *rel, struct cv_error *err)
{
	struct open_how how = {
		.flags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, rel, (int)how.flags);
	if (fd < 0)
		return cv_errf(err, errno, "opening /proc/%s", rel);
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
		close(fd);
		return cv_errf(err, EXDEV, "/proc/%s is not on procfs", rel);
	}
	return fd;
}

static int write_one(int dirfd, const msgpack_object *k, const msgpack_object *v,
		     struct cv_error *err)
{
	uint32_t kl = k->via.str.size;
	char rel[SYSCTL_PATH_MAX] = "sys/";
	size_t pl = strlen(rel);
	for (uint32_t j = 0; j < kl; j++) /* length checked by sysctl_check */
		rel[pl + j] = k->via.str.ptr[j] == '.' ? '/' : k->via.str.ptr[j];
	rel[pl + kl] = '\0';
	int fd = open_sysctl(dirfd, rel, err);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = write(fd, v->via.str.ptr, v->via.str.size);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n < 0)
		return cv_errf(err, e, "writing \"%.*s\" to /proc/%s", (int)v->via.str.size,
			       v->via.str.ptr, rel);
	if ((size_t)n != v->via.str.size)
		return cv_errf(err, EIO, "writing \"%.*s\" to /proc/%s: short write",
			       (int)v->via.str.size, v->via.str.ptr, rel);
	return 0;
}

int sysctl_apply(const struct oci_spec *spec, struct cv_error *err)
{
	/* All keys first: a refused one must not follow written ones. */
	if (sysctl_check(spec, err) < 0)
		return -1;
	if (!spec->has_linux || !spec->linux_.sysctl || spec->linux_.sysctl->via.map.size == 0)
		return 0;
	int dirfd = private_proc();
	if (dirfd < 0) /* no new mount API: the container's /proc */
		dirfd = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return cv_errf(err, errno, "opening a procfs for spec.linux.sysctl");
	const msgpack_object *map = spec->linux_.sysctl;
	int r = 0;
	for (uint32_t i = 0; i < map->via.map.size && r == 0; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
		if (write_one(dirfd, k, v, err) < 0)
			r = cv_error_wrap(err, "spec.linux.sysctl[\"%.*s\"]", (int)k->via.str.size,
					  k->via.str.ptr);
	}
	close(dirfd);
	return r;
}

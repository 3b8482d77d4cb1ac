/* The container init's filesystem, built in its new mount namespace before
 * execve: rootfs bind, the spec's mounts (destinations resolved inside the
 * rootfs with openat2(RESOLVE_IN_ROOT) so symlinks cannot point outside),
 * /dev nodes, pivot_root, root.readonly, maskedPaths and readonlyPaths;
 * and the /dev/console bind of a terminal init. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "kernel/devices.h"
#include "kernel/spawn_internal.h"
#include "kernel/userns.h"

struct mount_opt {
	const char *name;
	bool clear;
	unsigned long flag;
};

static const struct mount_opt flag_opts[] = {
	{ "ro", false, MS_RDONLY },
	{ "rw", true, MS_RDONLY },
	{ "nosuid", false, MS_NOSUID },
	{ "suid", true, MS_NOSUID },
	{ "nodev", false, MS_NODEV },
	{ "dev", true, MS_NODEV },
	{ "noexec", false, MS_NOEXEC },
	{ "exec", true, MS_NOEXEC },
	{ "sync", false, MS_SYNCHRONOUS },
	{ "async", true, MS_SYNCHRONOUS },
	{ "remount", false, MS_REMOUNT },
	{ "mand", false, MS_MANDLOCK },
	{ "nomand", true, MS_MANDLOCK },
	{ "dirsync", false, MS_DIRSYNC },
	{ "atime", true, MS_NOATIME },
	{ "noatime", false, MS_NOATIME },
	{ "diratime", true, MS_NODIRATIME },
	{ "nodiratime", false, MS_NODIRATIME },
	{ "relatime", false, MS_RELATIME },
	{ "norelatime", true, MS_RELATIME },
	{ "strictatime", false, MS_STRICTATIME },
	{ "nostrictatime", true, MS_STRICTATIME },
	{ "lazytime", false, MS_LAZYTIME },
	{ "bind", false, MS_BIND },
	{ "rbind", false, MS_BIND | MS_REC },
};

static const struct mount_opt propagation_opts[] = {
	{ "private", false, MS_PRIVATE },
	{ "rprivate", false, MS_PRIVATE | MS_REC },
	{ "shared", false, MS_SHARED },
	{ "rshared", false, MS_SHARED | MS_REC },
	{ "slave", false, MS_SLAVE },
	{ "rslave", false, MS_SLAVE | MS_REC },
	{ "unbindable", false, MS_UNBINDABLE },
	{ "runbindable", false, MS_UNBINDABLE | MS_REC },
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct mount_opt *find_opt(const struct mount_opt *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

int child_parse_mount_options(char *const *opts, size_t n, unsigned long *flags,
			      unsigned long *propagation, bool *recursive_bind, char *data,
			      size_t data_len, struct cv_error *err)
{
	*flags = 0;
	*propagation = 0;
	*recursive_bind = false;
	size_t dl = 0;
	if (data_len)
		data[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *o = opts[i] ? opts[i] : "";
		const struct mount_opt *f = find_opt(flag_opts, N_OF(flag_opts), o);
		if (f) {
			if (f->clear)
				*flags &= ~f->flag;
			else
				*flags |= f->flag;
			if (f->flag & MS_REC) {
				*recursive_bind = true;
				*flags &= ~(unsigned long)MS_REC;
			}
			continue;
		}
		const struct mount_opt *p = find_opt(propagation_opts, N_OF(propagation_opts), o);
		if (p) {
			*propagation = p->flag;
			continue;
		}
		if (!*o)
			continue;
		/* Anything else is for the filesystem: "mode=755", "size=65536k". */
		int w = snprintf(data + dl, data_len - dl, "%s%s", dl ? "," : "", o);
		if (w < 0 || (size_t)w >= data_len - dl)
			return cv_errf(err, E2BIG, "mount options too long at \"%s\"", o);
		dl += (size_t)w;
	}
	return 0;
}

int child_check_destination(const char *dst, struct cv_error *err)
{
	if (!dst || !*dst)
		return cv_errf(err, EINVAL, "mount destination is empty");
	const char *p = dst;
	while (*p) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if (l == 2 && p[0] == '.' && p[1] == '.')
			return cv_errf(err, EINVAL,
				       "mount destination \"%s\" contains \"..\": refusing to leave the "
				       "container's root",
				       dst);
		p += l;
	}
	return 0;
}

static int openat2_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EAGAIN || errno == EINTR));
	return fd;
}

/* mkdir -p dst inside the rootfs (the last component a file when is_file),
 * every component resolved with RESOLVE_IN_ROOT. Returns an O_PATH fd of
 * the destination (caller closes). */
static int mkdir_in_root(int rootfd, const char *dst, bool is_file, struct cv_error *err)
{
	char prefix[4096];
	size_t pl = 0;
	int parent = openat2_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
	if (parent < 0)
		return cv_errf(err, errno, "opening the container's root");
	const char *p = dst;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t l = strcspn(p, "/");
		const char *next = p + l;
		while (*next == '/')
			next++;
		bool last = *next == '\0';
		if (pl + l + 2 >= sizeof(prefix)) {
			close(parent);
			return cv_errf(err, ENAMETOOLONG, "mount destination \"%s\"", dst);
		}
		prefix[pl++] = '/';
		memcpy(prefix + pl, p, l);
		pl += l;
		prefix[pl] = '\0';
		int fd = openat2_in_root(rootfd, prefix, O_PATH);
		if (fd < 0 && errno == ENOENT) {
			char comp[256];
			if (l >= sizeof(comp)) {
				close(parent);
				return cv_errf(err, ENAMETOOLONG, "mount destination \"%s\"", dst);
			}
			memcpy(comp, p, l);
			comp[l] = '\0';
			int r;
			if (last && is_file) {
				/* O_NOFOLLOW|O_EXCL: never create through a dangling symlink. */
				r = openat(parent, comp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC,
					   0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(parent, comp, 0755);
			}
			if (r < 0 && errno != EEXIST) {
				int e = errno;
				close(parent);
				return cv_errf(err, e, "creating \"%s\" in the container's root", prefix);
			}
			fd = openat2_in_root(rootfd, prefix, O_PATH);
		}
		if (fd < 0) {
			int e = errno;
			close(parent);
			return cv_errf(err, e, "resolving \"%s\" in the container's root", prefix);
		}
		close(parent);
		parent = fd;
		p += l;
	}
	return parent;
}

static void fd_path(int fd, char *buf, size_t n)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

/* Remounts what is now mounted at dst (reopened: an fd taken before the
 * mount still points below it). */
static int remount_and_propagate(int rootfd, const struct oci_mount *m, unsigned long remount_flags,
				 unsigned long propagation, struct cv_error *err)
{
	if (!remount_flags && !propagation)
		return 0;
	int fd = openat2_in_root(rootfd, m->destination, O_PATH);
	if (fd < 0)
		return cv_errf(err, errno, "reopening mount point %s", m->destination);
	char t[64];
	fd_path(fd, t, sizeof(t));
	int r = 0;
	if (remount_flags && mount(NULL, t, NULL, remount_flags, NULL) < 0)
		r = cv_errf(err, errno, "remounting %s read-only/with its flags", m->destination);
	if (r == 0 && propagation && mount(NULL, t, NULL, propagation, NULL) < 0)
		r = cv_errf(err, errno, "setting the propagation of %s", m->destination);
	close(fd);
	return r;
}

/* Kept flags for a bind remount: a remount that would clear nosuid, nodev
 * or noexec (or atime flags) already on the mount is refused when locked. */
static unsigned long kept_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* "cgroup": a read-only bind of the container's node of the unified
 * hierarchy (this host keeps its controllers in v1, so v2 is what the
 * container can usefully see). Failures are logged and skipped. */
static int mount_cgroup(int rootfd, const struct oci_mount *m, const struct cgroup *cg,
			struct cv_error *err)
{
	const char *v2 = cgroup_v2_root();
	if (!v2) {
		LOG(LL_WARN, "no cgroup2 hierarchy on this host: not mounting %s", m->destination);
		return 0;
	}
	char src[4096];
	if (cg && cg->path && *cg->path)
		snprintf(src, sizeof(src), "%s/%s", v2, cg->path);
	else
		snprintf(src, sizeof(src), "%s", v2);
	int fd = mkdir_in_root(rootfd, m->destination, false, err);
	if (fd < 0)
		return -1;
	char t[64];
	fd_path(fd, t, sizeof(t));
	if (mount(src, t, NULL, MS_BIND | MS_REC, NULL) < 0) {
		LOG(LL_WARN, "binding %s on %s failed (%s): the container has no cgroup view", src,
		    m->destination, strerror(errno));
		close(fd);
		return 0;
	}
	close(fd);
	return remount_and_propagate(rootfd, m,
				     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				     0, err);
}

/* Removes a "gid=N" option from a mount data string; false if none. */
static bool drop_gid_option(char *data)
{
	bool found = false;
	char *w = data;
	const char *r = data;
	while (*r) {
		size_t l = strcspn(r, ",");
		if (l >= 4 && strncmp(r, "gid=", 4) == 0) {
			found = true;
		} else {
			if (w != data)
				*w++ = ',';
			memmove(w, r, l);
			w += l;
		}
		r += l;
		if (*r == ',')
			r++;
	}
	*w = '\0';
	return found;
}

static int mount_one(int rootfd, const struct oci_mount *m, const char *bundle,
		     const struct cgroup *cg, struct cv_error *err)
{
	if (child_check_destination(m->destination, err) < 0)
		return -1;
	const char *type = m->type ? m->type : "";
	unsigned long flags, prop;
	bool rec;
	char data[1024];
	if (child_parse_mount_options(m->options, m->n_options, &flags, &prop, &rec, data,
				      sizeof(data), err) < 0)
		return cv_error_wrap(err, "mount %s", m->destination);
	if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0)
		return mount_cgroup(rootfd, m, cg, err);

	bool bind = strcmp(type, "bind") == 0 || (flags & MS_BIND);
	if (bind) {
		char src[4096];
		const char *s = m->source ? m->source : "";
		if (s[0] == '/')
			snprintf(src, sizeof(src), "%s", s);
		else
			snprintf(src, sizeof(src), "%s/%s", bundle, s);
		struct stat st;
		if (stat(src, &st) < 0)
			return cv_errf(err, errno, "bind mount source %s (for %s)", src, m->destination);
		int fd = mkdir_in_root(rootfd, m->destination, !S_ISDIR(st.st_mode), err);
		if (fd < 0)
			return -1;
		char t[64];
		fd_path(fd, t, sizeof(t));
		int r = mount(src, t, NULL, MS_BIND | (rec ? MS_REC : 0), NULL);
		int e = errno;
		close(fd);
		if (r < 0)
			return cv_errf(err, e, "bind-mounting %s on %s", src, m->destination);
		/* A bind ignores every flag but MS_REC: the rest needs a remount. */
		unsigned long rf = flags & ~(unsigned long)(MS_BIND | MS_REMOUNT);
		if (rf)
			rf |= MS_REMOUNT | MS_BIND | kept_flags(src);
		return remount_and_propagate(rootfd, m, rf, prop, err);
	}

	int fd = mkdir_in_root(rootfd, m->destination, false, err);
	if (fd < 0)
		return -1;
	char t[64];
	fd_path(fd, t, sizeof(t));
	const char *source = m->source && *m->source ? m->source : type;
	int r = mount(source, t, type, flags & ~(unsigned long)MS_REMOUNT, data[0] ? data : NULL);
	int e = errno;
	if (r < 0 && e == EINVAL && strcmp(type, "devpts") == 0 && drop_gid_option(data)) {
		/* In a user namespace gid= must be mapped there: without it the
		 * ptys get the mounter's gid (as crun does). */
		LOG(LL_WARN, "devpts on %s: gid= refused (unmapped in the user namespace?), "
			     "mounting without it", m->destination);
		r = mount(source, t, type, flags & ~(unsigned long)MS_REMOUNT, data[0] ? data : NULL);
		e = errno;
	}
	close(fd);
	if (r < 0 && e == EPERM && strcmp(type, "sysfs") == 0 && userns_owns_netns(err) == 0)
		return cv_errf(err, e, "mounting sysfs on %s: the network namespace does not belong to "
				       "the container's user namespace (sysfs needs a new network "
				       "namespace made with the user namespace, spec.linux.namespaces)",
			       m->destination);
	if (r < 0)
		return cv_errf(err, e, "mounting %s on %s", *type ? type : source, m->destination);
	return remount_and_propagate(rootfd, m, 0, prop, err);
}

static int mask_paths(char *const *paths, size_t n, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = paths[i];
		if (!p || !*p)
			continue;
		struct stat st;
		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return cv_errf(err, errno, "masking %s", p);
		}
		int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL)
					    : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			return cv_errf(err, errno, "masking %s", p);
	}
	return 0;
}

static int readonly_paths(char *const *paths, size_t n, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = paths[i];
		if (!p || !*p)
			continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return cv_errf(err, errno, "making %s read-only (bind)", p);
		}
		unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(p);
		if (mount(NULL, p, NULL, f, NULL) < 0)
			return cv_errf(err, errno, "making %s read-only (remount)", p);
	}
	return 0;
}

static int apply_root_propagation(const char *name, struct cv_error *err)
{
	const struct mount_opt *p = find_opt(propagation_opts, N_OF(propagation_opts), name);
	if (!p)
		return cv_errf(err, 0, "spec.linux.rootfsPropagation: unknown propagation \"%s\"", name);
	if (mount(NULL, "/", NULL, p->flag, NULL) < 0)
		return cv_errf(err, errno, "setting the root's propagation to %s", name);
	return 0;
}

int child_setup_rootfs(const struct oci_spec *spec, const char *bundle, const struct cgroup *cg,
		       struct cv_error *err)
{
	char rootfs[4096];
	const char *rp = spec->root.path;
	int n = rp[0] == '/' ? snprintf(rootfs, sizeof(rootfs), "%s", rp)
			     : snprintf(rootfs, sizeof(rootfs), "%s/%s", bundle ? bundle : ".", rp);
	if (n < 0 || (size_t)n >= sizeof(rootfs))
		return cv_errf(err, ENAMETOOLONG, "spec.root.path");
	const char *prop = spec->has_linux ? spec->linux_.rootfs_propagation : NULL;
	if (prop && *prop && !find_opt(propagation_opts, N_OF(propagation_opts), prop))
		return cv_errf(err, 0, "spec.linux.rootfsPropagation: unknown propagation \"%s\"", prop);

	/* Private first, whatever the spec wants: pivot_root refuses a shared
	 * parent, and our mounts must not leak to the host. The spec's choice
	 * is applied to the new root afterwards. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return cv_errf(err, errno, "making / private in the container's mount namespace");
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return cv_errf(err, errno, "bind-mounting the container's root %s", rootfs);
	int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return cv_errf(err, errno, "opening the container's root %s", rootfs);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		if (mount_one(rootfd, &spec->mounts[i], bundle, cg, err) < 0) {
			close(rootfd);
			return -1;
		}
	}
	/* In a user namespace mknod is never permitted: nodes are bind-mounted. */
	if (devices_setup(rootfd, spec, userns_listed(spec), err) < 0) {
		close(rootfd);
		return -1;
	}
	close(rootfd);

	if (chdir(rootfs) < 0)
		return cv_errf(err, errno, "entering the container's root %s", rootfs);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return cv_errf(err, errno, "pivot_root into %s", rootfs);
	if (umount2(".", MNT_DETACH) < 0)
		return cv_errf(err, errno, "detaching the host's root after pivot_root");
	if (chdir("/") < 0)
		return cv_errf(err, errno, "entering the container's new root");

	if (spec->root.readonly &&
	    mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags("/"), NULL) < 0)
		return cv_errf(err, errno, "remounting the container's root read-only");
	if (prop && *prop && apply_root_propagation(prop, err) < 0)
		return -1;
	if (spec->has_linux) {
		if (mask_paths(spec->linux_.masked_paths, spec->linux_.n_masked_paths, err) < 0)
			return -1;
		if (readonly_paths(spec->linux_.readonly_paths, spec->linux_.n_readonly_paths, err) < 0)
			return -1;
	}
	return 0;
}

/* After pivot_root: binds the pty replica onto /dev/console, creating the
 * mount point file if the rootfs has none (as runc does). /dev/console is
 * the container's: resolved with RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS so a
 * symlink planted there cannot redirect the bind, and the replica's mount
 * is cloned from its fd (open_tree), never looked up by name. */
int child_bind_console(int replica, struct cv_error *err)
{
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return cv_errf(err, errno, "opening the container's root");
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int dst = (int)syscall(SYS_openat2, root, "dev/console", &how, sizeof(how));
	if (dst < 0 && errno == ENOENT) {
		struct open_how dh = {
			.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		int dev = (int)syscall(SYS_openat2, root, "dev", &dh, sizeof(dh));
		if (dev < 0) {
			int e = errno;
			close(root);
			return cv_errf(err, e, "opening the container's /dev for /dev/console");
		}
		int f = openat(dev, "console", O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC,
			       0600);
		if (f < 0 && errno != EEXIST) {
			int e = errno;
			close(dev);
			close(root);
			return cv_errf(err, e, "creating the mount point /dev/console");
		}
		if (f >= 0)
			close(f);
		close(dev);
		dst = (int)syscall(SYS_openat2, root, "dev/console", &how, sizeof(how));
	}
	int e = errno;
	close(root);
	if (dst < 0)
		return cv_errf(err, e, "opening /dev/console in the container");
	struct stat st;
	if (fstat(dst, &st) < 0 || S_ISDIR(st.st_mode)) {
		close(dst);
		return cv_errf(err, EISDIR, "/dev/console in the container is not a file");
	}
	int tree = (int)syscall(SYS_open_tree, replica, "",
				OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0) {
		e = errno;
		close(dst);
		return cv_errf(err, e, "cloning a mount of the console's pty");
	}
	int r = (int)syscall(SYS_move_mount, tree, "", dst, "",
			     MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	e = errno;
	close(tree);
	close(dst);
	if (r < 0)
		return cv_errf(err, e, "bind-mounting the console's pty on /dev/console");
	return 0;
}

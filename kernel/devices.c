/* The container's device nodes (kernel/devices.h): runc's default set in a
 * /dev of its own and spec.linux.devices, made with *at() calls relative to
 * an fd of the container's /dev. */
#include "kernel/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

/* ---- the default set (runc's, for a /dev that is the container's own) ---- */

static const struct {
	const char *name;
	unsigned maj, min;
} default_nodes[] = {
	{ "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
	{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static const struct {
	const char *target, *name;
	const char *needs; /* made only when the host has this file */
} default_links[] = {
	{ "/proc/self/fd", "fd", NULL },     { "/proc/self/fd/0", "stdin", NULL },
	{ "/proc/self/fd/1", "stdout", NULL }, { "/proc/self/fd/2", "stderr", NULL },
	{ "pts/ptmx", "ptmx", NULL },        { "/proc/kcore", "core", "/proc/kcore" },
};

/* The filesystems every container /dev has, unless the spec mounts its own
 * there. A devpts of its own (newinstance) with a ptmx anyone may open, so
 * that ptmx -> pts/ptmx works; mqueue belongs to the ipc namespace. */
static const struct {
	const char *name, *type, *source, *data;
	unsigned long flags;
	bool optional; /* a failure is a warning (mqueue needs its ipc namespace's rights) */
} default_mounts[] = {
	{ "pts", "devpts", "devpts", "newinstance,ptmxmode=0666,mode=0620", MS_NOSUID | MS_NOEXEC,
	  false },
	{ "shm", "tmpfs", "shm", "mode=1777,size=65536k", MS_NOSUID | MS_NOEXEC | MS_NODEV, false },
	{ "mqueue", "mqueue", "mqueue", NULL, MS_NOSUID | MS_NOEXEC | MS_NODEV, true },
};

/* ---- paths ---- */

/* dst names /dev/<rel> exactly ("//dev/" and a trailing "/" allowed);
 * rel NULL means /dev itself. */
static bool dest_is(const char *dst, const char *rel)
{
	while (*dst == '/')
		dst++;
	if (strncmp(dst, "dev", 3) != 0)
		return false;
	dst += 3;
	if (!rel)
		return strspn(dst, "/") == strlen(dst);
	if (*dst != '/')
		return false;
	while (*dst == '/')
		dst++;
	size_t l = strlen(rel);
	return strncmp(dst, rel, l) == 0 && strspn(dst + l, "/") == strlen(dst + l);
}

static bool has_bind_option(const struct oci_mount *m)
{
	if (m->type && strcmp(m->type, "bind") == 0)
		return true;
	for (size_t j = 0; j < m->n_options; j++)
		if (m->options[j] &&
		    (strcmp(m->options[j], "bind") == 0 || strcmp(m->options[j], "rbind") == 0))
			return true;
	return false;
}

enum devices_dev_kind devices_dev_kind(const struct oci_spec *spec)
{
	enum devices_dev_kind k = DEVICES_DEV_ROOTFS;
	for (size_t i = 0; i < spec->n_mounts; i++)
		if (spec->mounts[i].destination && dest_is(spec->mounts[i].destination, NULL))
			k = has_bind_option(&spec->mounts[i]) ? DEVICES_DEV_BOUND : DEVICES_DEV_OWN;
	return k;
}

static bool spec_mounts(const struct oci_spec *spec, const char *rel)
{
	for (size_t i = 0; i < spec->n_mounts; i++)
		if (spec->mounts[i].destination && dest_is(spec->mounts[i].destination, rel))
			return true;
	return false;
}

static bool spec_lists(const struct oci_spec *spec, const char *rel)
{
	for (size_t i = 0; spec->has_linux && i < spec->linux_.n_devices; i++)
		if (dest_is(spec->linux_.devices[i].path, rel))
			return true;
	return false;
}

/* Opens the container's /dev: resolved inside the root (RESOLVE_IN_ROOT,
 * where the spec's mount on /dev went too), made if the rootfs has none. */
static int open_dev(int rootfd, bool create, struct cv_error *err)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, "dev", &how, sizeof(how));
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(rootfd, "dev", 0755) < 0 && errno != EEXIST)
			return cv_errf(err, errno, "creating the container's /dev");
		fd = (int)syscall(SYS_openat2, rootfd, "dev", &how, sizeof(how));
	}
	if (fd < 0)
		return cv_errf(err, errno, "opening the container's /dev");
	return fd;
}

/* Walks rel's directories below dfd, never following a symlink (O_NOFOLLOW
 * on every component), making the missing ones when mk. Returns an O_PATH
 * fd of the last directory and points *name at the last component. */
static int walk_parent(int dfd, const char *rel, bool mk, const char **name, const char *what,
		       struct cv_error *err)
{
	int cur = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return cv_errf(err, errno, "%s", what);
	const char *p = rel;
	for (;;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.') || l == 0) {
			/* The spec decoder refuses these already; openat(..) would
			 * leave /dev, so never rely on that alone. */
			close(cur);
			return cv_errf(err, EINVAL, "%s: \".\", \"..\" or empty component", what);
		}
		const char *next = p + l;
		while (*next == '/')
			next++;
		if (!*next) {
			*name = p;
			return cur;
		}
		char comp[256];
		if (l >= sizeof(comp)) {
			close(cur);
			return cv_errf(err, ENAMETOOLONG, "%s", what);
		}
		memcpy(comp, p, l);
		comp[l] = '\0';
		int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && mk) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(cur);
				return cv_errf(err, e, "%s: creating /dev/%.*s", what, (int)(p + l - rel), rel);
			}
			fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int e = errno;
		close(cur);
		if (fd < 0)
			return cv_errf(err, e, "%s: /dev/%.*s%s", what, (int)(p + l - rel), rel,
				       e == ENOTDIR || e == ELOOP ? " is not a directory (a symlink?)" : "");
		cur = fd;
		p = next;
	}
}

/* ---- nodes ---- */

struct node {
	const char *rel; /* below /dev: "fuse", "net/tun" */
	mode_t ifmt;     /* S_IFCHR, S_IFBLK, S_IFIFO */
	dev_t rdev;
	mode_t perm;
	uid_t uid;
	gid_t gid;
	bool spec; /* from spec.linux.devices: replaces what is there */
	const char *what; /* "spec.linux.devices[2] (/dev/fuse)" for errors */
};

static bool is_node(const struct stat *st, const struct node *n)
{
	return (st->st_mode & S_IFMT) == n->ifmt && (n->ifmt == S_IFIFO || st->st_rdev == n->rdev);
}

/* chmod and chown through an O_PATH fd of the node itself: no name is
 * looked up again. */
static int set_attrs(int fd, const struct node *n, struct cv_error *err)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (chmod(p, n->perm) < 0)
		return cv_errf(err, errno, "%s: setting mode 0%o", n->what, (unsigned)n->perm);
	if (fchownat(fd, "", n->uid, n->gid, AT_EMPTY_PATH) < 0)
		return cv_errf(err, errno, "%s: setting owner %u:%u", n->what, (unsigned)n->uid,
			       (unsigned)n->gid);
	return 0;
}

/* The host's node to bind: /dev/<rel> if it is that node, else udev's
 * /dev/char/M:m or /dev/block/M:m link. The host's /dev is trusted. */
static int host_node(const struct node *n, char *src, size_t len, struct cv_error *err)
{
	struct stat st;
	snprintf(src, len, "/dev/%s", n->rel);
	if (stat(src, &st) == 0 && is_node(&st, n))
		return 0;
	snprintf(src, len, "/dev/%s/%u:%u", n->ifmt == S_IFBLK ? "block" : "char", major(n->rdev),
		 minor(n->rdev));
	if (stat(src, &st) == 0 && is_node(&st, n))
		return 0;
	return cv_errf(err, ENOENT,
		       "%s: mknod is not permitted here and the host has no %s node %u:%u to "
		       "bind-mount (looked at /dev/%s and %s)",
		       n->what, n->ifmt == S_IFBLK ? "block" : "char", major(n->rdev), minor(n->rdev),
		       n->rel, src);
}

static int bind_host(int pfd, const char *name, const struct node *n, struct cv_error *err)
{
	char src[300];
	if (host_node(n, src, sizeof(src), err) < 0)
		return -1;
	int f = openat(pfd, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600);
	if (f < 0)
		return cv_errf(err, errno, "%s: creating the mount point", n->what);
	close(f);
	int t = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (t < 0)
		return cv_errf(err, errno, "%s: reopening the mount point", n->what);
	char tp[64];
	snprintf(tp, sizeof(tp), "/proc/self/fd/%d", t);
	int r = mount(src, tp, NULL, MS_BIND, NULL);
	int e = errno;
	close(t);
	if (r < 0)
		return cv_errf(err, e, "%s: bind-mounting the host's %s", n->what, src);
	return 0;
}

static int make_node(int dfd, const struct node *n, struct cv_error *err)
{
	const char *name;
	int pfd = walk_parent(dfd, n->rel, true, &name, n->what, err);
	if (pfd < 0)
		return -1;
	int r = -1;
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!n->spec) {
			r = 0; /* the spec's mounts put something there: theirs */
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			cv_errf(err, EISDIR, "%s: a directory is in the way", n->what);
			goto out;
		}
		/* Anything but that very node (a symlink to /etc/shadow, a
		 * file) goes: unlinkat removes the entry, never its target. */
		if (!is_node(&st, n) && unlinkat(pfd, name, 0) < 0) {
			cv_errf(err, errno, "%s: removing what the rootfs has there", n->what);
			goto out;
		}
	} else if (errno != ENOENT) {
		cv_errf(err, errno, "%s", n->what);
		goto out;
	}
	int made = mknodat(pfd, name, n->ifmt | n->perm, n->ifmt == S_IFIFO ? 0 : n->rdev);
	if (made < 0 && errno != EEXIST) {
		if (n->ifmt == S_IFIFO || (errno != EPERM && errno != EACCES)) {
			cv_errf(err, errno, "%s: mknod", n->what);
			goto out;
		}
		/* No mknod (a user namespace): the host's node, as runc. */
		r = bind_host(pfd, name, n, err);
		goto out;
	}
	int fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		cv_errf(err, errno, "%s: opening the node made", n->what);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !is_node(&st, n)) {
		close(fd);
		cv_errf(err, EEXIST, "%s: something else took the node's place", n->what);
		goto out;
	}
	r = set_attrs(fd, n, err);
	close(fd);
out:
	close(pfd);
	return r;
}

/* make_node, with the bind chosen up front where mknod cannot work. */
static int place_node(int dfd, const struct node *n, bool no_mknod, struct cv_error *err)
{
	if (!no_mknod || n->ifmt == S_IFIFO)
		return make_node(dfd, n, err);
	const char *name;
	int pfd = walk_parent(dfd, n->rel, true, &name, n->what, err);
	if (pfd < 0)
		return -1;
	int r = 0;
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!n->spec || is_node(&st, n))
			goto out; /* the spec's mounts put it there, or it is that node */
		if (S_ISDIR(st.st_mode) || unlinkat(pfd, name, 0) < 0) {
			r = cv_errf(err, S_ISDIR(st.st_mode) ? EISDIR : errno,
				    "%s: removing what the rootfs has there", n->what);
			goto out;
		}
	}
	r = bind_host(pfd, name, n, err);
out:
	close(pfd);
	return r;
}

/* A /dev bound from elsewhere: the node must be there already. */
static int check_node(int dfd, const struct node *n, struct cv_error *err)
{
	const char *name;
	int pfd = walk_parent(dfd, n->rel, false, &name, n->what, err);
	if (pfd < 0)
		return -1;
	struct stat st;
	int r = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW);
	close(pfd);
	if (r == 0 && is_node(&st, n))
		return 0;
	return cv_errf(err, r < 0 ? errno : EEXIST,
		       "%s: /dev is a bind mount (spec.mounts) and has no such node; refusing to "
		       "create nodes in a /dev that is not the container's own",
		       n->what);
}

static mode_t ifmt_of(const char *type)
{
	return type[0] == 'b' ? S_IFBLK : type[0] == 'p' ? S_IFIFO : S_IFCHR;
}

/* ---- the default set ---- */

static int default_set(int dfd, const struct oci_spec *spec, bool no_mknod, struct cv_error *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(default_nodes); i++) {
		if (spec_lists(spec, default_nodes[i].name))
			continue; /* the spec's entry wins, as in runc */
		char what[48];
		snprintf(what, sizeof(what), "/dev/%s (default device)", default_nodes[i].name);
		struct node n = {
			.rel = default_nodes[i].name,
			.ifmt = S_IFCHR,
			.rdev = makedev(default_nodes[i].maj, default_nodes[i].min),
			.perm = 0666,
			.what = what,
		};
		if (place_node(dfd, &n, no_mknod, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(default_mounts); i++) {
		const char *name = default_mounts[i].name;
		if (spec_mounts(spec, name))
			continue;
		if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
			return cv_errf(err, errno, "creating /dev/%s", name);
		int fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return cv_errf(err, errno, "opening /dev/%s", name);
		char t[64];
		snprintf(t, sizeof(t), "/proc/self/fd/%d", fd);
		int r = mount(default_mounts[i].source, t, default_mounts[i].type,
			      default_mounts[i].flags, default_mounts[i].data);
		int e = errno;
		close(fd);
		if (r < 0 && default_mounts[i].optional) {
			LOG(LL_WARN, "mounting %s on /dev/%s: %s (the directory stays empty)",
			    default_mounts[i].type, name, strerror(e));
		} else if (r < 0) {
			return cv_errf(err, e, "mounting %s on /dev/%s", default_mounts[i].type, name);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(default_links); i++) {
		const char *needs = default_links[i].needs;
		if (needs && access(needs, F_OK) < 0)
			continue;
		if (spec_lists(spec, default_links[i].name))
			continue;
		/* symlinkat never follows an existing entry: EEXIST keeps what
		 * the spec's mounts put there. */
		if (symlinkat(default_links[i].target, dfd, default_links[i].name) < 0 &&
		    errno != EEXIST)
			return cv_errf(err, errno, "creating the symlink /dev/%s", default_links[i].name);
	}
	return 0;
}

int devices_setup(int rootfd, const struct oci_spec *spec, bool no_mknod, struct cv_error *err)
{
	enum devices_dev_kind kind = devices_dev_kind(spec);
	size_t n = spec->has_linux ? spec->linux_.n_devices : 0;
	if (kind != DEVICES_DEV_OWN && n == 0)
		return 0;
	int dfd = open_dev(rootfd, kind == DEVICES_DEV_ROOTFS, err);
	if (dfd < 0)
		return -1;
	int r = 0;
	if (kind == DEVICES_DEV_OWN)
		r = default_set(dfd, spec, no_mknod, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct oci_device *d = &spec->linux_.devices[i];
		char what[300];
		snprintf(what, sizeof(what), "spec.linux.devices[%zu] (%.256s)", i, d->path);
		struct node nd = {
			.rel = d->path + strlen("/dev/"), /* validated: "/dev/..." */
			.ifmt = ifmt_of(d->type),
			.rdev = makedev((unsigned)d->major, (unsigned)d->minor),
			.perm = d->has_file_mode ? (mode_t)(d->file_mode & 07777) : 0666,
			.uid = d->has_uid ? d->uid : 0,
			.gid = d->has_gid ? d->gid : 0,
			.spec = true,
			.what = what,
		};
		r = kind == DEVICES_DEV_BOUND ? check_node(dfd, &nd, err)
					      : place_node(dfd, &nd, no_mknod, err);
	}
	close(dfd);
	return r;
}

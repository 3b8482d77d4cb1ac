/* The container init's filesystem, built in its new mount namespace before
 * execve: rootfs bind, the spec's mounts (destinations resolved inside the
 * rootfs with openat2(RESOLVE_IN_ROOT) so symlinks cannot point outside),
 * /dev nodes, pivot_root, root.readonly, maskedPaths and readonlyPaths;
 * and the /dev/console bind of a terminal init. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "kernel/devices.h"
#include "kernel/mount_opts.h"
#include "kernel/spawn_internal.h"
#include "kernel/sysctl.h"
#include "kernel/userns.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

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

#define MKDIR_MAX_LINKS 40 /* the kernel's own limit on nested symlinks */

static int mkdir_in_root_depth(int rootfd, const char *dst, bool is_file, int links,
			       struct cv_error *err);

/* comp (in parent, whose path in the root is the first parent_len bytes of
 * prefix) is a symlink whose target does not exist yet: creates the
 * target inside the root, as runc's MkdirAll through securejoin does. The
 * target is read as text and resolved in the root again: an absolute
 * link names a path of the container's root, never of the host's. */
static int mkdir_link_target(int rootfd, int parent, const char *comp, const char *prefix,
			     size_t parent_len, bool is_file, int links, struct cv_error *err)
{
	if (links >= MKDIR_MAX_LINKS)
		return cv_errf(err, ELOOP, "resolving \"%s\" in the container's root", prefix);
	char target[4096], path[8192];
	ssize_t n = readlinkat(parent, comp, target, sizeof(target) - 1);
	if (n < 0)
		return cv_errf(err, errno, "resolving \"%s\" in the container's root", prefix);
	target[n] = '\0';
	if (target[0] == '/')
		snprintf(path, sizeof(path), "%s", target);
	else
		snprintf(path, sizeof(path), "%.*s/%s", (int)parent_len, prefix, target);
	int fd = mkdir_in_root_depth(rootfd, path, is_file, links + 1, err);
	if (fd >= 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

/* mkdir -p dst inside the rootfs (the last component a file when is_file),
 * every component resolved with RESOLVE_IN_ROOT. Returns an O_PATH fd of
 * the destination (caller closes). */
static int mkdir_in_root(int rootfd, const char *dst, bool is_file, struct cv_error *err)
{
	return mkdir_in_root_depth(rootfd, dst, is_file, 0, err);
}

static int mkdir_in_root_depth(int rootfd, const char *dst, bool is_file, int links,
			       struct cv_error *err)
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
			struct stat lst;
			if (r < 0 && fstatat(parent, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(lst.st_mode) &&
			    mkdir_link_target(rootfd, parent, comp, prefix, pl - l - 1, last && is_file,
					      links, err) < 0) {
				close(parent);
				return -1;
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

/* Flags of the mount at path (or fd) that a bind remount must keep: in a
 * user namespace the kernel refuses to clear a locked nosuid, nodev or
 * noexec, and outside one a remount must not widen what the source had
 * (a bind of a nosuid host directory stays nosuid). The atime mode is
 * kept only when the options name none. */
static unsigned long kept_from(const struct statvfs *sv, unsigned long want)
{
	unsigned long f = 0;
	if (sv->f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv->f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv->f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (!(want & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME | MS_NODIRATIME))) {
		if (sv->f_flag & ST_NOATIME)
			f |= MS_NOATIME;
		if (sv->f_flag & ST_NODIRATIME)
			f |= MS_NODIRATIME;
		if (sv->f_flag & ST_RELATIME)
			f |= MS_RELATIME;
	}
	return f;
}

static unsigned long kept_flags(const char *path)
{
	struct statvfs sv;
	return statvfs(path, &sv) < 0 ? 0 : kept_from(&sv, 0);
}

/* What follows the mount itself, on what is now mounted at dst (reopened:
 * an fd taken before the mount still points below it): the bind remount
 * with the options' flags, the propagation changes in order, then the
 * recursive attributes (rro, rnosuid, ...) with mount_setattr. */
static int finish_mount(int rootfd, const struct oci_mount *m, const char *field,
			unsigned long remount_flags, const struct mount_opts *o,
			struct cv_error *err)
{
	if (!remount_flags && !o->n_propagation && !o->rec_set && !o->rec_clr)
		return 0;
	int fd = openat2_in_root(rootfd, m->destination, O_PATH);
	if (fd < 0)
		return cv_errf(err, errno, "%s: reopening the mount point", field);
	char t[64];
	fd_path(fd, t, sizeof(t));
	int r = 0;
	struct statvfs sv;
	if (remount_flags) {
		if (fstatvfs(fd, &sv) == 0)
			remount_flags |= kept_from(&sv, remount_flags);
		if (mount(NULL, t, NULL, remount_flags | MS_REMOUNT | MS_BIND, NULL) < 0)
			r = cv_errf(err, errno, "%s: remounting the bind with its options", field);
	}
	for (size_t i = 0; r == 0 && i < o->n_propagation; i++)
		if (mount(NULL, t, NULL, o->propagation[i], NULL) < 0)
			r = cv_errf(err, errno, "%s: setting the mount's propagation", field);
	if (r == 0 && (o->rec_set || o->rec_clr)) {
		struct mount_attr attr = { .attr_set = o->rec_set, .attr_clr = o->rec_clr };
		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
			    sizeof(attr)) < 0)
			r = cv_errf(err, errno,
				    "%s: setting the recursive options (rro, rnosuid, ...) with "
				    "mount_setattr",
				    field);
	}
	close(fd);
	return r;
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
	struct mount_opts none = { 0 };
	return finish_mount(rootfd, m, m->destination, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			    &none, err);
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

/* --- tmpcopyup: a tmpfs that starts with the image's directory --- */

#define COPYUP_MAX_DEPTH 128

static int copy_tree(int from, int to, const char *field, int depth, struct cv_error *err);

/* Owner, mode and times of st onto name in dir (never through a symlink:
 * the mode of a symlink is not settable and is skipped). */
static int copy_meta(int dir, const char *name, const struct stat *st, const char *field,
		     struct cv_error *err)
{
	if (fchownat(dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return cv_errf(err, errno, "%s: tmpcopyup: setting the owner of \"%s\"", field, name);
	if (!S_ISLNK(st->st_mode) && fchmodat(dir, name, st->st_mode & 07777, 0) < 0)
		return cv_errf(err, errno, "%s: tmpcopyup: setting the mode of \"%s\"", field, name);
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return cv_errf(err, errno, "%s: tmpcopyup: setting the times of \"%s\"", field, name);
	return 0;
}

/* A regular file's bytes. Opened without following a symlink and without
 * blocking, and it must still be the regular file that was listed. */
static int copy_file(int from, int to, const char *name, const struct stat *st, const char *field,
		     struct cv_error *err)
{
	int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in < 0)
		return cv_errf(err, errno, "%s: tmpcopyup: opening \"%s\"", field, name);
	struct stat now;
	if (fstat(in, &now) < 0 || !S_ISREG(now.st_mode) || now.st_ino != st->st_ino ||
	    now.st_dev != st->st_dev) {
		close(in);
		return cv_errf(err, EAGAIN, "%s: tmpcopyup: \"%s\" changed while being copied", field,
			       name);
	}
	int out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return cv_errf(err, e, "%s: tmpcopyup: creating \"%s\"", field, name);
	}
	char buf[65536];
	int r = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = cv_errf(err, errno, "%s: tmpcopyup: reading \"%s\"", field, name);
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = cv_errf(err, errno, "%s: tmpcopyup: writing \"%s\"", field, name);
				break;
			}
			off += w;
		}
		if (r < 0)
			break;
	}
	close(in);
	close(out);
	return r;
}

static int copy_entry(int from, int to, const char *name, const char *field, int depth,
		      struct cv_error *err)
{
	struct stat st;
	if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return cv_errf(err, errno, "%s: tmpcopyup: reading \"%s\"", field, name);
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(to, name, 0700) < 0)
			return cv_errf(err, errno, "%s: tmpcopyup: creating the directory \"%s\"", field,
				       name);
		int sf = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		int tf = sf < 0 ? -1 : openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sf >= 0 && tf < 0)
			e = errno;
		int r = sf < 0 || tf < 0 ? cv_errf(err, e, "%s: tmpcopyup: opening \"%s\"", field, name)
					 : copy_tree(sf, tf, field, depth + 1, err);
		if (sf >= 0)
			close(sf);
		if (tf >= 0)
			close(tf);
		if (r < 0)
			return cv_error_wrap(err, "in \"%s\"", name);
	} else if (S_ISREG(st.st_mode)) {
		if (copy_file(from, to, name, &st, field, err) < 0)
			return -1;
	} else if (S_ISLNK(st.st_mode)) {
		/* The link itself, never its target. */
		char target[4096];
		ssize_t n = readlinkat(from, name, target, sizeof(target) - 1);
		if (n < 0)
			return cv_errf(err, errno, "%s: tmpcopyup: reading the link \"%s\"", field, name);
		target[n] = '\0';
		if (symlinkat(target, to, name) < 0)
			return cv_errf(err, errno, "%s: tmpcopyup: creating the link \"%s\"", field, name);
	} else if (mknodat(to, name, st.st_mode, st.st_rdev) < 0) {
		return cv_errf(err, errno, "%s: tmpcopyup: creating the node \"%s\"", field, name);
	}
	return copy_meta(to, name, &st, field, err);
}

/* Copies the entries of directory from into directory to, one name at a
 * time relative to the directory fds: no path is ever resolved, so a
 * symlink in the image is copied as a symlink and never followed. */
static int copy_tree(int from, int to, const char *field, int depth, struct cv_error *err)
{
	if (depth > COPYUP_MAX_DEPTH)
		return cv_errf(err, ELOOP, "%s: tmpcopyup: directories nested deeper than %d", field,
			       COPYUP_MAX_DEPTH);
	int dfd = fcntl(from, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return cv_errf(err, errno, "%s: tmpcopyup: listing a directory", field);
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return cv_errf(err, e, "%s: tmpcopyup: listing a directory", field);
	}
	int r = 0;
	struct dirent *de;
	errno = 0;
	while (r == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = copy_entry(from, to, de->d_name, field, depth, err);
		errno = 0;
	}
	if (r == 0 && errno)
		r = cv_errf(err, errno, "%s: tmpcopyup: listing a directory", field);
	closedir(d);
	return r;
}

/* The superblock flags of the options as fsconfig flags, and the mount
 * flags as MOUNT_ATTR_* (set once the copy is done: ro would refuse it). */
static int tmpfs_config(int fs, const struct mount_opts *o, const char *field,
			struct cv_error *err)
{
	static const struct {
		unsigned long ms;
		const char *name;
	} sb[] = {
		{ MS_SYNCHRONOUS, "sync" }, { MS_DIRSYNC, "dirsync" },
		{ MS_LAZYTIME, "lazytime" }, { MS_MANDLOCK, "mand" },
	};
	if (o->flags & (MS_POSIXACL | MS_I_VERSION))
		return cv_errf(err, 0, "%s.options: acl and iversion do not go with tmpcopyup",
			       field);
	for (size_t i = 0; i < N_OF(sb); i++)
		if ((o->flags & sb[i].ms) &&
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, sb[i].name, NULL, 0) < 0)
			return cv_errf(err, errno, "%s.options: tmpfs refused \"%s\"", field, sb[i].name);
	char data[sizeof(o->data)];
	memcpy(data, o->data, sizeof(data));
	char *save = NULL;
	for (char *kv = strtok_r(data, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		int r;
		if (eq) {
			*eq = '\0';
			r = (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, kv, eq + 1, 0);
			*eq = '=';
		} else {
			r = (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, kv, NULL, 0);
		}
		if (r < 0)
			return cv_errf(err, errno, "%s.options: tmpfs refused \"%s\"", field, kv);
	}
	return 0;
}

static uint64_t attr_of(unsigned long f)
{
	uint64_t a = 0;
	if (f & MS_RDONLY)
		a |= MOUNT_ATTR_RDONLY;
	if (f & MS_NOSUID)
		a |= MOUNT_ATTR_NOSUID;
	if (f & MS_NODEV)
		a |= MOUNT_ATTR_NODEV;
	if (f & MS_NOEXEC)
		a |= MOUNT_ATTR_NOEXEC;
	if (f & MS_NODIRATIME)
		a |= MOUNT_ATTR_NODIRATIME;
	if (f & MS_NOSYMFOLLOW)
		a |= MOUNT_ATTR_NOSYMFOLLOW;
	if (f & MS_STRICTATIME)
		a |= MOUNT_ATTR_STRICTATIME;
	else if (f & MS_NOATIME)
		a |= MOUNT_ATTR_NOATIME;
	return a;
}

/* runc's tmpcopyup: a fresh tmpfs that starts with what the image has at
 * the destination (podman's --tmpfs and --read-only ask for it). The
 * tmpfs is made detached (fsopen/fsmount), filled from the destination
 * directory, which is resolved inside the rootfs like every mount point,
 * then moved onto it. */
static int mount_tmpcopyup(int rootfd, const struct oci_mount *m, const struct mount_opts *o,
			   const char *field, struct cv_error *err)
{
	int dst = mkdir_in_root(rootfd, m->destination, false, err);
	if (dst < 0)
		return -1;
	int src = openat(dst, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0) {
		int e = errno;
		close(dst);
		return cv_errf(err, e, "%s: tmpcopyup: opening the image's directory", field);
	}
	int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	int mnt = -1, top = -1, r = -1;
	if (fs < 0) {
		cv_errf(err, errno, "%s: tmpcopyup: creating a tmpfs", field);
		goto out;
	}
	/* The source shows in mountinfo, as with mount(2). */
	const char *source = m->source && *m->source ? m->source : "tmpfs";
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", source, 0) < 0) {
		cv_errf(err, errno, "%s: tmpcopyup: tmpfs refused the source \"%s\"", field, source);
		goto out;
	}
	if (tmpfs_config(fs, o, field, err) < 0)
		goto out;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		cv_errf(err, errno, "%s: tmpcopyup: creating a tmpfs with \"%s\"", field, o->data);
		goto out;
	}
	mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0) {
		cv_errf(err, errno, "%s: tmpcopyup: mounting the tmpfs", field);
		goto out;
	}
	/* fsmount's fd is O_PATH-like: a real one for fchown and fchmod. */
	top = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (top < 0 || fstat(src, &st) < 0 || fchown(top, st.st_uid, st.st_gid) < 0 ||
	    fchmod(top, st.st_mode & 07777) < 0) {
		cv_errf(err, errno, "%s: tmpcopyup: giving the tmpfs the directory's owner and mode",
			field);
		goto out;
	}
	if (copy_tree(src, top, field, 0, err) < 0)
		goto out;
	struct mount_attr attr = { .attr_set = attr_of(o->flags) };
	if (attr.attr_set & MOUNT_ATTR__ATIME)
		attr.attr_clr = MOUNT_ATTR__ATIME;
	if (attr.attr_set &&
	    syscall(SYS_mount_setattr, mnt, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		cv_errf(err, errno, "%s: setting the tmpfs's mount options", field);
		goto out;
	}
	if (syscall(SYS_move_mount, mnt, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
	    0) {
		cv_errf(err, errno, "%s: moving the tmpfs onto its mount point", field);
		goto out;
	}
	r = 0;
out:
	if (top >= 0)
		close(top);
	if (mnt >= 0)
		close(mnt);
	if (fs >= 0)
		close(fs);
	close(src);
	close(dst);
	return r;
}

/* A bind mount whose source the gofer resolved: its detached mount
 * (recursive or not, as the options said) moved onto the destination. */
static int bind_donated(int rootfd, const struct oci_mount *m, int tree, const char *field,
			const struct mount_opts *o, struct cv_error *err)
{
	struct stat st;
	if (fstat(tree, &st) < 0)
		return cv_errf(err, errno, "%s: the gofer's bind mount", field);
	int fd = mkdir_in_root(rootfd, m->destination, !S_ISDIR(st.st_mode), err);
	if (fd < 0)
		return -1;
	int r = (int)syscall(SYS_move_mount, tree, "", fd, "",
			     MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	int e = errno;
	close(fd);
	if (r < 0)
		return cv_errf(err, e, "%s: attaching the gofer's bind mount", field);
	unsigned long rf = o->flags & ~(unsigned long)(MS_BIND | MS_REMOUNT);
	return finish_mount(rootfd, m, field, rf, o, err);
}

static int mount_one(int rootfd, const struct oci_mount *m, size_t idx, const char *bundle,
		     int donated, const struct cgroup *cg, struct cv_error *err)
{
	char field[160];
	snprintf(field, sizeof(field), "spec.mounts[%zu] (%.100s)", idx,
		 m->destination ? m->destination : "");
	if (child_check_destination(m->destination, err) < 0)
		return cv_error_wrap(err, "%s", field);
	const char *type = m->type ? m->type : "";
	struct mount_opts o;
	if (mount_opts_parse(m->options, m->n_options, field, &o, err) < 0)
		return -1;
	if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0)
		return mount_cgroup(rootfd, m, cg, err);

	bool bind = strcmp(type, "bind") == 0 || (o.flags & MS_BIND);
	if (o.tmpcopyup && (bind || strcmp(type, "tmpfs") != 0))
		return cv_errf(err, 0, "%s.options: tmpcopyup is only for type tmpfs, not \"%s\"",
			       field, bind ? "bind" : type);
	if (bind && donated >= 0)
		return bind_donated(rootfd, m, donated, field, &o, err);
	if (bind) {
		char src[4096];
		const char *s = m->source ? m->source : "";
		if (s[0] == '/')
			snprintf(src, sizeof(src), "%s", s);
		else
			snprintf(src, sizeof(src), "%s/%s", bundle, s);
		struct stat st;
		if (stat(src, &st) < 0)
			return cv_errf(err, errno, "%s: bind mount source %s", field, src);
		int fd = mkdir_in_root(rootfd, m->destination, !S_ISDIR(st.st_mode), err);
		if (fd < 0)
			return -1;
		char t[64];
		fd_path(fd, t, sizeof(t));
		int r = mount(src, t, NULL, MS_BIND | (o.recursive_bind ? MS_REC : 0), NULL);
		int e = errno;
		close(fd);
		if (r < 0)
			return cv_errf(err, e, "%s: bind-mounting %s", field, src);
		/* A bind ignores every flag but MS_REC: the rest needs a remount
		 * (runc's order: remount, propagation, recursive attributes). */
		unsigned long rf = o.flags & ~(unsigned long)(MS_BIND | MS_REMOUNT);
		return finish_mount(rootfd, m, field, rf, &o, err);
	}
	if (o.tmpcopyup) {
		if (mount_tmpcopyup(rootfd, m, &o, field, err) < 0)
			return -1;
		return finish_mount(rootfd, m, field, 0, &o, err);
	}

	int fd = mkdir_in_root(rootfd, m->destination, false, err);
	if (fd < 0)
		return -1;
	char t[64];
	fd_path(fd, t, sizeof(t));
	char *data = o.data;
	const char *source = m->source && *m->source ? m->source : type;
	unsigned long flags = o.flags & ~(unsigned long)MS_REMOUNT;
	int r = mount(source, t, type, flags, data[0] ? data : NULL);
	int e = errno;
	if (r < 0 && e == EINVAL && strcmp(type, "devpts") == 0 && drop_gid_option(data)) {
		/* In a user namespace gid= must be mapped there: without it the
		 * ptys get the mounter's gid (as crun does). */
		LOG(LL_WARN, "devpts on %s: gid= refused (unmapped in the user namespace?), "
			     "mounting without it", m->destination);
		r = mount(source, t, type, flags, data[0] ? data : NULL);
		e = errno;
	}
	close(fd);
	if (r < 0 && e == EPERM && strcmp(type, "sysfs") == 0 && userns_owns_netns(err) == 0)
		return cv_errf(err, e, "mounting sysfs on %s: the network namespace does not belong to "
				       "the container's user namespace (sysfs needs a new network "
				       "namespace made with the user namespace, spec.linux.namespaces)",
			       m->destination);
	if (r < 0)
		return cv_errf(err, e, "%s: mounting %s", field, *type ? type : source);
	return finish_mount(rootfd, m, field, 0, &o, err);
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
	unsigned long p = mount_opts_propagation(name);
	if (!p)
		return cv_errf(err, 0, "spec.linux.rootfsPropagation: unknown propagation \"%s\"", name);
	if (mount(NULL, "/", NULL, p, NULL) < 0)
		return cv_errf(err, errno, "setting the root's propagation to %s", name);
	return 0;
}

int child_setup_rootfs(const struct spawn_init_args *a, child_before_pivot_fn before_pivot,
		       void *ctx, struct cv_error *err)
{
	const struct oci_spec *spec = a->spec;
	const char *bundle = a->bundle;
	const struct cgroup *cg = a->cg;
	int root_tree = a->has_root_tree ? a->root_tree : -1;
	bool overlay_memory = a->root_overlay_memory;
	char rootfs[4096];
	const char *rp = spec->root.path ? spec->root.path : "";
	int n = root_tree >= 0 ? snprintf(rootfs, sizeof(rootfs), "(the donated root tree)")
		: rp[0] == '/' ? snprintf(rootfs, sizeof(rootfs), "%s", rp)
			       : snprintf(rootfs, sizeof(rootfs), "%s/%s", bundle ? bundle : ".", rp);
	if (n < 0 || (size_t)n >= sizeof(rootfs))
		return cv_errf(err, ENAMETOOLONG, "spec.root.path");
	const char *prop = spec->has_linux ? spec->linux_.rootfs_propagation : NULL;
	if (prop && *prop && !mount_opts_propagation(prop))
		return cv_errf(err, 0, "spec.linux.rootfsPropagation: unknown propagation \"%s\"", prop);

	/* Private first, whatever the spec wants: pivot_root refuses a shared
	 * parent, and our mounts must not leak to the host. The spec's choice
	 * is applied to the new root afterwards. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return cv_errf(err, errno, "making / private in the container's mount namespace");
	int rootfd;
	if (root_tree >= 0) {
		rootfd = child_attach_root_tree(root_tree, overlay_memory,
						a->root_overlay_memory ? a->root_upper_tree : -1, err);
		if (rootfd < 0)
			return -1;
	} else {
		if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			return cv_errf(err, errno, "bind-mounting the container's root %s", rootfs);
		rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			return cv_errf(err, errno, "opening the container's root %s", rootfs);
	}
	for (size_t i = 0; i < spec->n_mounts; i++) {
		int donated = a->mount_fds ? a->mount_fds[i] : -1;
		if (mount_one(rootfd, &spec->mounts[i], i, bundle, donated, cg, err) < 0) {
			close(rootfd);
			return -1;
		}
	}
	/* In a user namespace mknod is never permitted: nodes are bind-mounted. */
	if (devices_setup(rootfd, spec, userns_listed(spec), err) < 0) {
		close(rootfd);
		return -1;
	}
	int cd = root_tree >= 0 ? fchdir(rootfd) : chdir(rootfs);
	int cd_errno = errno;
	close(rootfd);
	if (cd < 0)
		return cv_errf(err, cd_errno, "entering the container's root %s", rootfs);
	/* OCI hooks: with the mounts in place and the old root still there
	 * (createContainer's cwd is the rootfs, as with runc). */
	if (before_pivot && before_pivot(ctx, err) < 0)
		return -1;
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return cv_errf(err, errno, "pivot_root into %s", rootfs);
	if (umount2(".", MNT_DETACH) < 0)
		return cv_errf(err, errno, "detaching the host's root after pivot_root");
	if (chdir("/") < 0)
		return cv_errf(err, errno, "entering the container's new root");

	/* runc's order: the sysctls while the container's /proc/sys is still
	 * writable, before readonlyPaths (which lists it) and root.readonly. */
	if (sysctl_apply(spec, err) < 0)
		return -1;

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

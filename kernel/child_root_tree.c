/* A subcontainer's root arrives as a detached mount (open_tree with
 * OPEN_TREE_CLONE, made by the CLI in the host's mount namespace), so the
 * init never looks a host path of the container up (docs/DESIGN.md,
 * "Pods"). A detached tree can be attached in any mount namespace; a
 * reference to an attached mount of another namespace could not (EINVAL
 * from move_mount), which is why the donor clones. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel/spawn_internal.h"

/* An overlay whose lower layer is the tree, its upper layer on a fresh
 * tmpfs (memory: what the container writes vanishes with it) or in the
 * donated directory upper_tree (self: it persists there). Returns the
 * overlay's detached mount. */
static int overlay_over(int tree, int upper_tree, struct cv_error *err)
{
	int fs = -1, tmnt = -1, upper = -1, work = -1, ov = -1, mnt = -1;
	if (upper_tree >= 0) {
		tmnt = fcntl(upper_tree, F_DUPFD_CLOEXEC, 0);
		if (tmnt < 0) {
			cv_errf(err, errno, "GoferMountConfs[0]: the filestore of the upper layer");
			goto out;
		}
	} else {
		fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
		if (fs < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
		    (tmnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0) {
			cv_errf(err, errno, "GoferMountConfs[0]: creating the tmpfs upper layer");
			goto out;
		}
	}
	if ((mkdirat(tmnt, "upper", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(tmnt, "work", 0700) < 0 && errno != EEXIST) ||
	    (upper = openat(tmnt, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (work = openat(tmnt, "work", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cv_errf(err, errno, "GoferMountConfs[0]: preparing the tmpfs upper layer");
		goto out;
	}
	ov = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (ov < 0 || syscall(SYS_fsconfig, ov, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
	    syscall(SYS_fsconfig, ov, FSCONFIG_SET_FD, "lowerdir+", NULL, tree) < 0 ||
	    syscall(SYS_fsconfig, ov, FSCONFIG_SET_FD, "upperdir", NULL, upper) < 0 ||
	    syscall(SYS_fsconfig, ov, FSCONFIG_SET_FD, "workdir", NULL, work) < 0 ||
	    syscall(SYS_fsconfig, ov, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
	    (mnt = (int)syscall(SYS_fsmount, ov, FSMOUNT_CLOEXEC, 0)) < 0) {
		cv_errf(err, errno, "GoferMountConfs[0]: creating the overlay over the root");
		goto out;
	}
out:;
	const int fds[] = { fs, tmnt, upper, work, ov };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return mnt;
}

int child_attach_root_tree(int root_tree, bool overlay, int upper_tree, struct cv_error *err)
{
	struct stat st;
	if (fstat(root_tree, &st) < 0 || !S_ISDIR(st.st_mode))
		return cv_errf(err, EINVAL, "the rootfs gofer FD is not a directory tree");
	int top = root_tree;
	if (overlay) {
		top = overlay_over(root_tree, upper_tree, err);
		if (top < 0)
			return -1;
	}
	/* Over the cwd: boot's, translated into this new mount namespace (its
	 * sandbox's bundle). Any directory would do: the init only reaches
	 * the tree through the fd from here on, and pivot_root detaches the
	 * rest. */
	if (syscall(SYS_move_mount, top, "", AT_FDCWD, ".", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int e = errno;
		if (top != root_tree)
			close(top);
		return cv_errf(err, e, "attaching the container's root (the rootfs gofer FD must be "
				       "a detached mount: open_tree with OPEN_TREE_CLONE)");
	}
	int fd = top == root_tree ? fcntl(top, F_DUPFD_CLOEXEC, 0) : top;
	if (fd < 0)
		return cv_errf(err, errno, "duplicating the container's root fd");
	return fd;
}

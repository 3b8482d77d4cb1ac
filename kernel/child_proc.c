/* Process attributes set in a cloned child before execve, shared by the
 * container init (child_init.c) and exec targets (child_exec.c): rlimits,
 * the uid/gid switch, seccomp, executable lookup, fd hygiene, HOME. */
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/passwd.h"
#include "kernel/seccomp_spec.h"
#include "kernel/spawn_internal.h"

int child_set_rlimits(const struct oci_rlimit *r, size_t n, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = r[i].type ? r[i].type : "";
		int res = oci_rlimit_resource(name);
		if (res < 0)
			return cv_errf(err, 0, "spec.process.rlimits[%zu].type: unknown rlimit \"%s\"", i,
				       name);
		struct rlimit rl = { .rlim_cur = (rlim_t)r[i].soft, .rlim_max = (rlim_t)r[i].hard };
		if (setrlimit(res, &rl) == 0)
			continue;
		int e = errno;
		struct rlimit cur;
		if (e == EPERM && getrlimit(res, &cur) == 0) {
			char hard[32];
			if (cur.rlim_max == RLIM_INFINITY)
				snprintf(hard, sizeof(hard), "unlimited");
			else
				snprintf(hard, sizeof(hard), "%llu", (unsigned long long)cur.rlim_max);
			return cv_errf(err, 0,
				       "setting %s to soft=%llu hard=%llu: Operation not permitted "
				       "(this host's hard limit is %s)",
				       name, (unsigned long long)r[i].soft,
				       (unsigned long long)r[i].hard, hard);
		}
		return cv_errf(err, e, "setting %s to soft=%llu hard=%llu", name,
			       (unsigned long long)r[i].soft, (unsigned long long)r[i].hard);
	}
	return 0;
}

/* After setresuid away from 0 the effective set is empty even with
 * KEEPCAPS; raise it back to the permitted set so the capability code can
 * still drop the bounding set (that needs CAP_SETPCAP in effective). */
static int raise_effective(struct cv_error *err)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return cv_errf(err, errno, "reading the process's capabilities");
	d[0].effective = d[0].permitted;
	d[1].effective = d[1].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return cv_errf(err, errno, "raising the effective capabilities after the uid switch");
	return 0;
}

int child_switch_user(uint32_t uid, uint32_t gid, const uint32_t *gids, size_t n_gids,
		      struct cv_error *err)
{
	gid_t list[n_gids ? n_gids : 1];
	for (size_t i = 0; i < n_gids; i++)
		list[i] = (gid_t)gids[i];
	if (setgroups(n_gids, list) < 0)
		return cv_errf(err, errno, "setting the additional groups (%zu of them)", n_gids);
	if (setresgid(gid, gid, gid) < 0)
		return cv_errf(err, errno, "setting the group id to %u", gid);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return cv_errf(err, errno, "keeping capabilities across the uid switch");
	if (setresuid(uid, uid, uid) < 0)
		return cv_errf(err, errno, "setting the user id to %u", uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return cv_errf(err, errno, "clearing PR_SET_KEEPCAPS");
	if (uid != 0)
		return raise_effective(err);
	return 0;
}

int child_seccomp_build(const struct oci_spec *spec, bool nnp, scmp_filter_ctx *out,
			struct cv_error *err)
{
	*out = NULL;
	if (!spec || !spec->has_linux || !spec->linux_.has_seccomp)
		return 0;
	if (seccomp_spec_build(&spec->linux_.seccomp, out, err) < 0)
		return -1;
	if (!nnp) {
		/* Loaded while CAP_SYS_ADMIN is still held, so the kernel does not
		 * need NO_NEW_PRIVS; setting it would change setuid semantics the
		 * spec did not ask for (runc does the same). */
		int r = seccomp_attr_set(*out, SCMP_FLTATR_CTL_NNP, 0);
		if (r < 0) {
			seccomp_release(*out);
			*out = NULL;
			return cv_errf(err, -r, "configuring the seccomp filter");
		}
	}
	return 0;
}

int child_seccomp_load(scmp_filter_ctx *ctx, struct cv_error *err)
{
	if (!*ctx)
		return 0;
	int r = seccomp_load(*ctx);
	seccomp_release(*ctx);
	*ctx = NULL;
	if (r < 0)
		return cv_errf(err, -r, "loading the seccomp filter (spec.linux.seccomp)");
	return 0;
}

static int find_in_path(const char *name, const char *path_var, const char *cwd, char *out,
			size_t out_len, struct cv_error *err)
{
	bool denied = false;
	const char *p = path_var;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t dl = colon ? (size_t)(colon - p) : strlen(p);
		char cand[4096];
		int n;
		if (dl == 0) /* an empty entry is the working directory */
			n = snprintf(cand, sizeof(cand), "%s/%s", cwd, name);
		else
			n = snprintf(cand, sizeof(cand), "%.*s/%s", (int)dl, p, name);
		struct stat st;
		if (n > 0 && (size_t)n < sizeof(cand) && stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0) {
				if ((size_t)n >= out_len)
					return cv_errf(err, ENAMETOOLONG, "executable path \"%s\"", cand);
				memcpy(out, cand, (size_t)n + 1);
				return 0;
			}
			denied = true;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	/* "[/usr/local/sbin /usr/local/bin ...]" as runsc prints the list. */
	char list[768];
	size_t li = 0;
	for (const char *q = path_var; *q && li + 2 < sizeof(list); q++)
		list[li++] = *q == ':' ? ' ' : *q;
	list[li] = '\0';
	cv_errf(err, 0, "error finding executable \"%s\" in PATH [%s]: %s", name, list,
		denied ? "permission denied" : "no such file or directory");
	err->code = denied ? EACCES : ENOENT;
	return -1;
}

int child_resolve_exe(const char *name, char *const *envv, const char *cwd, char *out,
		      size_t out_len, struct cv_error *err)
{
	if (!name || !*name)
		return cv_errf(err, ENOENT, "no executable given");
	if (!cwd || !*cwd)
		cwd = "/";
	if (strchr(name, '/')) {
		int n = name[0] == '/' ? snprintf(out, out_len, "%s", name)
				       : snprintf(out, out_len, "%s/%s", cwd, name);
		if (n < 0 || (size_t)n >= out_len)
			return cv_errf(err, ENAMETOOLONG, "executable path \"%s\"", name);
		struct stat st;
		if (stat(out, &st) < 0) {
			int e = errno;
			cv_errf(err, 0, "error finding executable \"%s\": %s", name,
				e == ENOENT ? "no such file or directory" : strerror(e));
			err->code = e;
			return -1;
		}
		if (S_ISDIR(st.st_mode))
			return cv_errf(err, EACCES, "executable \"%s\" is a directory", name);
		if (access(out, X_OK) < 0) {
			cv_errf(err, 0, "error finding executable \"%s\": permission denied", name);
			err->code = EACCES;
			return -1;
		}
		return 0;
	}
	const char *path_var = SPAWN_DEFAULT_PATH;
	for (char *const *e = envv; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path_var = *e + 5; /* the last one wins, as in a shell */
	return find_in_path(name, path_var, cwd, out, out_len, err);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

void child_close_fds_except(const int *keep, size_t n)
{
	int sorted[n + 1];
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (keep[i] >= 3)
			sorted[k++] = keep[i];
	qsort(sorted, k, sizeof(int), cmp_int);
	unsigned int lo = 3;
	for (size_t i = 0; i < k; i++) {
		if ((unsigned)sorted[i] > lo)
			close_range(lo, (unsigned)sorted[i] - 1, 0);
		if ((unsigned)sorted[i] + 1 > lo)
			lo = (unsigned)sorted[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

int child_move_fd_above(int fd, int min, struct cv_error *err)
{
	if (fd >= min)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, min);
	if (nfd < 0)
		return cv_errf(err, errno, "moving fd %d above %d", fd, min);
	close(fd);
	return nfd;
}

/* Opens the container's /etc/passwd for the HOME lookup without trusting
 * it: no symlink as the last component, no magic links, resolution held
 * inside the current root (the container's, after setns), non-blocking so
 * a FIFO cannot park us. ENOSYS/EPERM from openat2 (an old kernel, or a
 * seccomp profile that refuses it with an errno) fall back to openat with
 * the same flags: after setns "/" is the container root anyway. */
static int open_passwd(void)
{
	const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	struct open_how how = {
		.flags = (uint64_t)flags,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	/* RESOLVE_IN_ROOT is relative to dirfd, not to the process's root:
	 * hand it "/" itself (the working directory is the exec's cwd). */
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	int fd = (int)syscall(SYS_openat2, root, "etc/passwd", &how, sizeof(how));
	if (fd < 0 && (errno == ENOSYS || errno == EPERM))
		fd = openat(root, "etc/passwd", flags);
	close(root);
	return fd;
}

/* One passwd line (NUL-terminated, no newline): true and the home in out
 * when it is the entry of uid. */
static bool passwd_line_home(char *line, uint32_t uid, char *out, size_t out_len)
{
	char *field[PASSWD_NFIELDS];
	if (!passwd_line_is_uid(line, uid, field))
		return false;
	if (*field[PASSWD_HOME])
		snprintf(out, out_len, "%s", field[PASSWD_HOME]);
	return true;
}

void child_home_for_uid(uint32_t uid, char *out, size_t out_len)
{
	snprintf(out, out_len, "/");
	int fd = open_passwd();
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CHILD_PASSWD_MAX) {
		close(fd);
		return;
	}
	/* Streamed through a small buffer; the total read is capped too, since
	 * st_size says nothing for files like those of procfs. Lines longer
	 * than the buffer are skipped. */
	char buf[4096];
	size_t have = 0, total = 0;
	bool skipping = false, found = false;
	while (!found && total < CHILD_PASSWD_MAX) {
		size_t want = sizeof(buf) - 1 - have;
		if (want > CHILD_PASSWD_MAX - total)
			want = CHILD_PASSWD_MAX - total;
		ssize_t n = read(fd, buf + have, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A last line without a newline still counts. */
			if (have && !skipping) {
				buf[have] = '\0';
				passwd_line_home(buf, uid, out, out_len);
			}
			break;
		}
		total += (size_t)n;
		have += (size_t)n;
		char *line = buf, *nl;
		while (!found && (nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = '\0';
			if (!skipping)
				found = passwd_line_home(line, uid, out, out_len);
			skipping = false;
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1) {
			have = 0; /* an over-long line: drop it up to its newline */
			skipping = true;
		}
	}
	close(fd);
}

void child_reset_signals(void)
{
	/* Boot blocks the signals it reads through its signalfd and ignores
	 * SIGPIPE; both survive execve, so a container would never see SIGTERM
	 * and would get EPIPE instead of SIGPIPE. Start it clean, as runc does. */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		signal(sig, SIG_DFL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* `cvisor gofer` (hidden): one per subcontainer, started by `create`
 * outside the sandbox, in the host's mount namespace. It owns the
 * container's host paths: over its connection to the sandbox (fd 3, a
 * SOCK_SEQPACKET socket, one msgpack-RPC message per packet) it answers
 * Gofer.RootTree with the container's root as a detached mount
 * (open_tree OPEN_TREE_CLONE|AT_RECURSIVE, read-only when the spec says
 * so). It lives as long as the connection: when the sandbox closes it (the
 * container was destroyed, the sandbox ended) the gofer exits; when the
 * gofer dies, the sandbox kills that container (docs/DESIGN.md, "Pods"). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <linux/mount.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmd/verbs.h"
#include "core/fdsend.h"
#include "core/mpk.h"

#define GOFER_SOCK 3
#define GOFER_MSG_MAX 65536
/* The root and the bind mounts go in one packet (SCM_MAX_FD). */
#define GOFER_BINDS_MAX (FD_MSG_MAX - 1)

/* The spec's bind mounts, in its order, as `create` resolved them. */
static struct gofer_bind binds[GOFER_BINDS_MAX];
static size_t n_binds;

static int root_tree(const char *rootfs, bool readonly, struct cv_error *err)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, rootfs,
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0)
		return cv_errf(err, errno, "cloning the container's root %s", rootfs);
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	if (readonly &&
	    syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "making the container's root read-only");
	}
	return fd;
}

/* A bind mount's source, cloned here in the host's mount namespace (as
 * `mount --bind` would resolve it, the engine having chosen the path):
 * the container's init only moves the result into place. */
static int bind_tree(const struct gofer_bind *b, size_t i, struct cv_error *err)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, b->path,
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (b->recursive ? AT_RECURSIVE : 0));
	if (fd < 0)
		return cv_errf(err, errno, "bind mount %zu: cloning %s", i, b->path);
	return fd;
}

/* [1, msgid, error or nil, {"Files": n}] with the fds on the same packet. */
static void reply(uint64_t msgid, const char *error, const int *fds, size_t nfds)
{
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_uint64(&pk, msgid);
	if (error)
		mpk_pack_str(&pk, error);
	else
		msgpack_pack_nil(&pk);
	msgpack_pack_map(&pk, 1);
	mpk_pack_str(&pk, "Files");
	msgpack_pack_int(&pk, (int)nfds);
	fd_sendmsg(GOFER_SOCK, b.data, b.size, fds, nfds, 0);
	msgpack_sbuffer_destroy(&b);
}

int gofer_clone(const char *rootfs, bool readonly, const struct gofer_bind *b, size_t n,
		int *fds, struct cv_error *err)
{
	if (n > GOFER_BINDS_MAX)
		return cv_errf(err, E2BIG, "more than %d bind mounts", GOFER_BINDS_MAX);
	int fd = root_tree(rootfs, readonly, err);
	if (fd < 0)
		return -1;
	fds[0] = fd;
	for (size_t i = 0; i < n; i++) {
		fd = bind_tree(&b[i], i, err);
		if (fd < 0) {
			for (size_t j = 0; j <= i; j++)
				close(fds[j]);
			return -1;
		}
		fds[1 + i] = fd;
	}
	return (int)(1 + n);
}

/* Whether a spec mount is a bind mount, and a recursive one: the rule of
 * kernel/mount_opts.c (type "bind" or a bind/rbind option; rbind is
 * recursive; cgroup mounts never), which boot applies to the answer. */
static bool is_bind(json_object *m, bool *recursive)
{
	const char *type = cli_json_str(m, "type");
	bool bind = type && strcmp(type, "bind") == 0;
	*recursive = false;
	json_object *opts = cli_json_get(m, "options", json_type_array);
	size_t n = opts ? json_object_array_length(opts) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *o = json_object_get_string(json_object_array_get_idx(opts, i));
		if (o && strcmp(o, "bind") == 0)
			bind = true;
		if (o && strcmp(o, "rbind") == 0)
			bind = *recursive = true;
	}
	if (type && (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0))
		return false;
	return bind;
}

int gofer_binds_of_spec(json_object *spec, const char *bundle, struct gofer_bind **out,
			char **paths, size_t *n, struct cv_error *err)
{
	json_object *mounts = cli_json_get(spec, "mounts", json_type_array);
	size_t nm = mounts ? json_object_array_length(mounts) : 0;
	*out = calloc(nm ? nm : 1, sizeof(**out));
	*paths = calloc(nm ? nm : 1, PATH_MAX);
	*n = 0;
	if (!*out || !*paths) {
		free(*out);
		free(*paths);
		*out = NULL;
		*paths = NULL;
		return cv_errf(err, ENOMEM, "the spec's bind mounts");
	}
	for (size_t i = 0; i < nm; i++) {
		json_object *m = json_object_array_get_idx(mounts, i);
		bool rec;
		if (!is_bind(m, &rec))
			continue;
		const char *src = cli_json_str(m, "source");
		char *p = *paths + *n * PATH_MAX;
		snprintf(p, PATH_MAX, src && src[0] == '/' ? "%s" : "%s/%s",
			 src && src[0] == '/' ? src : bundle, src ? src : "");
		(*out)[(*n)++] = (struct gofer_bind){ p, rec };
	}
	if (*n > GOFER_BINDS_MAX) {
		free(*out);
		free(*paths);
		*out = NULL;
		*paths = NULL;
		return cv_errf(err, E2BIG, "spec.mounts: more than %d bind mounts", GOFER_BINDS_MAX);
	}
	return 0;
}

static void serve(const char *rootfs, bool readonly)
{
	static char buf[GOFER_MSG_MAX];
	for (;;) {
		ssize_t n;
		do
			n = recv(GOFER_SOCK, buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return; /* the sandbox hung up: our container is gone */
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		const msgpack_object *m = NULL;
		if (msgpack_unpack_next(&u, buf, (size_t)n, &off) == MSGPACK_UNPACK_SUCCESS &&
		    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 4)
			m = u.data.via.array.ptr;
		if (!m || m[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    m[2].type != MSGPACK_OBJECT_STR) {
			msgpack_unpacked_destroy(&u);
			continue; /* not a request: nothing to answer */
		}
		uint64_t id = m[1].via.u64;
		if (m[2].via.str.size == 14 && memcmp(m[2].via.str.ptr, "Gofer.RootTree", 14) == 0) {
			struct cv_error err = { 0 };
			int fds[1 + GOFER_BINDS_MAX];
			int nfds = gofer_clone(rootfs, readonly, binds, n_binds, fds, &err);
			reply(id, nfds < 0 ? err.msg : NULL, fds, nfds < 0 ? 0 : (size_t)nfds);
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
		} else {
			reply(id, "unknown gofer method", NULL, 0);
		}
		msgpack_unpacked_destroy(&u);
	}
}

int cmd_gofer(const struct cli_command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option opts[] = {
		{ "rootfs", required_argument, 0, 'r' },
		{ "readonly", no_argument, 0, 'o' },
		{ "bind", required_argument, 0, 'b' },
		{ "rbind", required_argument, 0, 'R' },
		{ 0, 0, 0, 0 },
	};
	const char *rootfs = NULL;
	bool readonly = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 'r')
			rootfs = optarg;
		else if (c == 'o')
			readonly = true;
		else if ((c == 'b' || c == 'R') && n_binds < GOFER_BINDS_MAX)
			binds[n_binds++] = (struct gofer_bind){ optarg, c == 'R' };
		else if (c == 'b' || c == 'R')
			return cli_failf("gofer: more than %d bind mounts", GOFER_BINDS_MAX);
		else
			return cli_failf("gofer: unknown flag");
	}
	if (!rootfs)
		return cli_failf("gofer needs --rootfs");
	serve(rootfs, readonly);
	return 0;
}

/* Cgroups.ReadControlFiles / Cgroups.WriteControlFiles (docs/API.md): a
 * batch of control files of the containers' cgroups, read or written, one
 * result per item. gVisor's control.CgroupsReadArgs / CgroupsWriteArgs
 * shapes.
 *
 * `path` names a container's node ("/" = the root container's, "/<cid>" =
 * that container's); `name` is a file of that node, opened with
 * openat(O_NOFOLLOW) relative to a directory fd of the node that boot opens
 * itself from the host's layout (kernel/cgroup.h, cgroup_node_dirfd), never
 * through the container's view. A bad item is answered with is_error; the
 * others in the batch are still served. Every fd opened for an item is
 * closed before the next item. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mpk.h"
#include "core/util.h"
#include "kernel/cgroup.h"
#include "kernel/methods.h"
#include "kernel/model.h"

/* At most this many items per call. */
#define CGF_MAX_ITEMS 64
/* A file larger than this is refused (the item), not cut. */
#define CGF_READ_MAX 65536
/* A longer value is refused (the item). */
#define CGF_VALUE_MAX 4096

struct cg_file {
	char *controller, *path, *name;
};

struct cg_item {
	struct cg_file file;
	char *value;
	bool has_file;
};

struct cg_args {
	struct cg_item *args;
	size_t n_args;
};

#define FF(key, field) \
	{ key, MPK_STR, offsetof(struct cg_file, field), MPK_NONE, MPK_NONE, 0, NULL }
static const struct mpk_field file_fields[] = {
	FF("controller", controller),
	FF("path", path),
	FF("name", name),
};
static const struct mpk_schema file_schema = { "CgroupControlFile", sizeof(struct cg_file),
					       file_fields, ARRAY_SIZE(file_fields) };

static const struct mpk_field item_fields[] = {
	{ "file", MPK_STRUCT, offsetof(struct cg_item, file), MPK_NONE,
	  offsetof(struct cg_item, has_file), MPK_REQUIRED, &file_schema },
	{ "value", MPK_STR, offsetof(struct cg_item, value), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema read_item_schema = { "CgroupsReadArg", sizeof(struct cg_item),
						    item_fields, 1 };
static const struct mpk_schema write_item_schema = { "CgroupsWriteArg", sizeof(struct cg_item),
						     item_fields, ARRAY_SIZE(item_fields) };

static const struct mpk_field read_fields[] = {
	{ "args", MPK_STRUCTV, offsetof(struct cg_args, args), offsetof(struct cg_args, n_args),
	  MPK_NONE, 0, &read_item_schema },
};
static const struct mpk_field write_fields[] = {
	{ "args", MPK_STRUCTV, offsetof(struct cg_args, args), offsetof(struct cg_args, n_args),
	  MPK_NONE, 0, &write_item_schema },
};
static const struct mpk_schema read_schema = { "CgroupsReadArgs", sizeof(struct cg_args),
					       read_fields, ARRAY_SIZE(read_fields) };
static const struct mpk_schema write_schema = { "CgroupsWriteArgs", sizeof(struct cg_args),
						write_fields, ARRAY_SIZE(write_fields) };

/* The container `path` names: "/" the root container, "/<cid>" that one.
 * Empty components ("//") are skipped; "." and ".." are refused, as is
 * anything deeper than a container's node. */
static struct container *resolve_path(struct sandbox *sb, const char *what, const char *path,
				      struct cv_error *err)
{
	if (!path || path[0] != '/') {
		cv_errf(err, 0, "%s.path: \"%s\" must start with \"/\" (\"/\" or \"/<container id>\")",
			what, path ? path : "");
		return NULL;
	}
	const char *comp = NULL;
	size_t comp_len = 0, ncomp = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
			cv_errf(err, 0, "%s.path: \"%s\": \".\" and \"..\" are refused (the path "
					"may not leave the sandbox's cgroup)", what, path);
			return NULL;
		}
		comp = s;
		comp_len = len;
		ncomp++;
	}
	if (ncomp > 1) {
		cv_errf(err, 0, "%s.path: \"%s\": only \"/\" (the root container) and "
				"\"/<container id>\" are served", what, path);
		return NULL;
	}
	struct container *c;
	if (ncomp == 0) {
		c = sb->root;
		if (!c) {
			cv_errf(err, 0, "%s.path: \"/\": the sandbox has no root container yet", what);
			return NULL;
		}
	} else {
		char id[256];
		if (comp_len >= sizeof(id)) {
			cv_errf(err, 0, "%s.path: container id too long", what);
			return NULL;
		}
		memcpy(id, comp, comp_len);
		id[comp_len] = '\0';
		c = sandbox_find_container(sb, id);
		if (!c) {
			cv_errf(err, 0, "%s.path: \"%s\": no container \"%s\" in this sandbox", what,
				path, id);
			return NULL;
		}
	}
	if (!c->cg_made) {
		cv_errf(err, 0, "%s.path: \"%s\": the container has no cgroup", what, path);
		return NULL;
	}
	return c;
}

static int check_name(const char *what, const char *name, struct cv_error *err)
{
	if (!name || !name[0])
		return cv_errf(err, 0, "%s.name: missing", what);
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return cv_errf(err, 0, "%s.name: \"%s\": a file name of the node (no \"/\", not "
				       "\".\" or \"..\")", what, name);
	if (strlen(name) > NAME_MAX)
		return cv_errf(err, 0, "%s.name: longer than %d bytes", what, NAME_MAX);
	return 0;
}

/* Opens the item's file (flags: O_RDONLY or O_WRONLY); -1 with err. */
static int open_item(struct sandbox *sb, const char *what, const struct cg_item *it, int flags,
		     struct cv_error *err)
{
	if (!it->has_file)
		return cv_errf(err, 0, "%s.file: missing", what);
	if (check_name(what, it->file.name, err) < 0)
		return -1;
	struct container *c = resolve_path(sb, what, it->file.path, err);
	if (!c)
		return -1;
	int dfd = cgroup_node_dirfd(&c->cg, it->file.controller, err);
	if (dfd < 0) {
		char m[CV_ERROR_MAX];
		snprintf(m, sizeof(m), "%s", err->msg);
		return cv_errf(err, 0, "%s.%s", what, m);
	}
	int fd = openat(dfd, it->file.name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return cv_errf(err, e, "%s.name: opening \"%s\"", what, it->file.name);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return cv_errf(err, 0, "%s.name: \"%s\" is not a regular file", what,
			       it->file.name);
	}
	return fd;
}

static void pack_result(msgpack_packer *pk, const char *val, size_t len, bool is_error)
{
	msgpack_pack_map(pk, 2);
	mpk_pack_key(pk, "value");
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, val, len);
	mpk_pack_key(pk, "is_error");
	if (is_error)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static void pack_error(msgpack_packer *pk, const struct cv_error *err)
{
	pack_result(pk, err->msg, strlen(err->msg), true);
}

/* Reads the whole file into buf (at most CGF_READ_MAX bytes); returns the
 * length with surrounding white space trimmed (gVisor's TrimSpace), or -1. */
static ssize_t read_all(int fd, char *buf, const char *what, const char *name,
			struct cv_error *err)
{
	size_t n = 0;
	for (;;) {
		if (n == CGF_READ_MAX) {
			char x;
			ssize_t r = read(fd, &x, 1);
			if (r == 0)
				break;
			return cv_errf(err, 0, "%s.name: \"%s\" is larger than %d bytes", what, name,
				       CGF_READ_MAX);
		}
		ssize_t r = read(fd, buf + n, CGF_READ_MAX - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cv_errf(err, errno, "%s.name: reading \"%s\"", what, name);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	size_t s = 0;
	while (s < n && (buf[s] == ' ' || buf[s] == '\n' || buf[s] == '\t'))
		s++;
	while (n > s && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\t'))
		n--;
	if (s)
		memmove(buf, buf + s, n - s);
	return (ssize_t)(n - s);
}

/* Decodes the batch; fails the call (naming the field) when it is not one. */
static int decode_batch(struct rpc_call *call, const msgpack_object *arg,
			const struct mpk_schema *schema, struct cg_args *a)
{
	struct cv_error err = { 0 };
	if (arg && arg->type == MSGPACK_OBJECT_MAP) {
		const msgpack_object *v = mpk_map_get(arg, "args");
		if (v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size > CGF_MAX_ITEMS) {
			rpc_fail(call, "%s.Args: %u items, at most %d per call", schema->name,
				 v->via.array.size, CGF_MAX_ITEMS);
			return -1;
		}
	}
	if (mpk_decode(arg, schema, a, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return -1;
	}
	return 0;
}

void cgroups_read_control_files(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cg_args a;
	if (decode_batch(call, arg, &read_schema, &a) < 0)
		return;
	char *buf = malloc(CGF_READ_MAX);
	if (!buf) {
		rpc_fail(call, "out of memory");
		return;
	}
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 1);
	mpk_pack_key(pk, "results");
	msgpack_pack_array(pk, a.n_args);
	for (size_t i = 0; i < a.n_args; i++) {
		struct cv_error err = { 0 };
		char what[64];
		snprintf(what, sizeof(what), "CgroupsReadArgs.Args[%zu]", i);
		int fd = open_item(sb, what, &a.args[i], O_RDONLY, &err);
		if (fd < 0) {
			pack_error(pk, &err);
			continue;
		}
		ssize_t n = read_all(fd, buf, what, a.args[i].file.name, &err);
		close(fd);
		if (n < 0)
			pack_error(pk, &err);
		else
			pack_result(pk, buf, (size_t)n, false);
	}
	free(buf);
	rpc_reply_packed(call);
}

/* Files whose writes move processes: not this API's job. */
static bool moves_processes(const char *name)
{
	return strcmp(name, "cgroup.procs") == 0 || strcmp(name, "cgroup.threads") == 0 ||
	       strcmp(name, "tasks") == 0;
}

void cgroups_write_control_files(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cg_args a;
	if (decode_batch(call, arg, &write_schema, &a) < 0)
		return;
	msgpack_packer *pk = rpc_result_packer(call);
	msgpack_pack_map(pk, 1);
	mpk_pack_key(pk, "results");
	msgpack_pack_array(pk, a.n_args);
	for (size_t i = 0; i < a.n_args; i++) {
		struct cv_error err = { 0 };
		char what[64];
		snprintf(what, sizeof(what), "CgroupsWriteArgs.Args[%zu]", i);
		const struct cg_item *it = &a.args[i];
		const char *val = it->value ? it->value : "";
		size_t len = strlen(val);
		if (it->has_file && it->file.name && moves_processes(it->file.name)) {
			cv_errf(&err, 0, "%s.name: writing \"%s\" is refused (moving processes "
					 "between cgroups is not this API's job)", what, it->file.name);
			pack_error(pk, &err);
			continue;
		}
		if (len > CGF_VALUE_MAX) {
			cv_errf(&err, 0, "%s.value: longer than %d bytes", what, CGF_VALUE_MAX);
			pack_error(pk, &err);
			continue;
		}
		int fd = open_item(sb, what, it, O_WRONLY, &err);
		if (fd < 0) {
			pack_error(pk, &err);
			continue;
		}
		ssize_t w = write(fd, val, len);
		int e = errno;
		close(fd);
		if (w < 0 || (size_t)w != len) {
			cv_errf(&err, w < 0 ? e : EIO, "%s: writing \"%s\" to \"%s\"", what, val,
				it->file.name);
			pack_error(pk, &err);
			continue;
		}
		pack_result(pk, "", 0, false);
	}
	rpc_reply_packed(call);
}

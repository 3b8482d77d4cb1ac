/* Packing an exec's arguments for the intermediate (kernel/spawn_wire.h).
 *
 * Layout (host byte order: both ends are the same binary on one host):
 *   struct wire_head
 *   uint32_t extra_gids[n_gids]
 *   int32_t  guest_fds[nfds]
 *   strings, each NUL-terminated: [filename], cwd, argv[argc], envv[envc]
 * and nothing after the last string. */
#include "kernel/spawn_wire.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

#define WIRE_MAGIC 0x57585643u /* "CVXW" */
#define WIRE_VERSION 1u

enum wire_flag {
	WIRE_HAS_CAPS = 1u << 0,
	WIRE_NNP = 1u << 1,
	WIRE_STDIO_PTY = 1u << 2,
	WIRE_EXEC_FD = 1u << 3,
	WIRE_FILENAME = 1u << 4,
};

struct wire_head {
	uint32_t magic, version;
	uint32_t uid, gid;
	uint32_t n_gids, nfds, argc, envc;
	uint32_t flags, pad;
	uint64_t caps[5]; /* bounding, effective, inheritable, permitted, ambient */
};

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* Appends len bytes to the memfd, retrying short writes. */
static int put(int fd, const void *p, size_t len, struct cv_error *err)
{
	const char *c = p;
	while (len > 0) {
		ssize_t n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cv_errf(err, n < 0 ? errno : EIO, "writing the exec arguments");
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static int put_str(int fd, const char *s, struct cv_error *err)
{
	return put(fd, s, strlen(s) + 1, err);
}

int spawn_wire_pack(const struct spawn_exec_args *a, int *memfd, struct cv_error *err)
{
	struct wire_head h;
	memset(&h, 0, sizeof(h));
	h.magic = WIRE_MAGIC;
	h.version = WIRE_VERSION;
	h.uid = a->uid;
	h.gid = a->gid;
	h.n_gids = (uint32_t)a->n_extra_gids;
	h.nfds = (uint32_t)a->nfds;
	h.argc = (uint32_t)strv_len(a->argv);
	h.envc = (uint32_t)strv_len(a->envv);
	h.flags = (a->has_caps ? WIRE_HAS_CAPS : 0) | (a->no_new_privs ? WIRE_NNP : 0) |
		  (a->stdio_is_pty ? WIRE_STDIO_PTY : 0) | (a->exec_fd >= 0 ? WIRE_EXEC_FD : 0) |
		  (a->filename && *a->filename ? WIRE_FILENAME : 0);
	h.caps[0] = a->caps.bounding;
	h.caps[1] = a->caps.effective;
	h.caps[2] = a->caps.inheritable;
	h.caps[3] = a->caps.permitted;
	h.caps[4] = a->caps.ambient;

	cleanup_close int fd = memfd_create("cvisor-exec-args", MFD_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "creating the exec argument memfd");
	if (put(fd, &h, sizeof(h), err) < 0)
		return -1;
	if (h.n_gids && put(fd, a->extra_gids, h.n_gids * sizeof(uint32_t), err) < 0)
		return -1;
	for (size_t i = 0; i < a->nfds; i++) {
		int32_t g = a->guest_fds[i];
		if (put(fd, &g, sizeof(g), err) < 0)
			return -1;
	}
	if ((h.flags & WIRE_FILENAME) && put_str(fd, a->filename, err) < 0)
		return -1;
	if (put_str(fd, a->cwd ? a->cwd : "/", err) < 0)
		return -1;
	for (uint32_t i = 0; i < h.argc; i++)
		if (put_str(fd, a->argv[i], err) < 0)
			return -1;
	for (uint32_t i = 0; i < h.envc; i++)
		if (put_str(fd, a->envv[i], err) < 0)
			return -1;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return cv_errf(err, errno, "rewinding the exec argument memfd");
	*memfd = steal_fd(&fd);
	return 0;
}

/* Points v[0..n-1] at the next n strings of [*p, end); v[n] = NULL. */
static int take_strings(const char **p, const char *end, char **v, size_t n, const char *what,
			struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *nul = memchr(*p, '\0', (size_t)(end - *p));
		if (!nul)
			return cv_errf(err, 0, "exec arguments: %s[%zu] is cut short", what, i);
		v[i] = (char *)*p;
		*p = nul + 1;
	}
	v[n] = NULL;
	return 0;
}

int spawn_wire_decode(const void *buf, size_t len, struct spawn_exec_args *a, void **storage,
		      struct cv_error *err)
{
	struct wire_head h;
	if (len < sizeof(h))
		return cv_errf(err, 0, "exec arguments: %zu bytes, shorter than the header", len);
	memcpy(&h, buf, sizeof(h));
	if (h.magic != WIRE_MAGIC || h.version != WIRE_VERSION)
		return cv_errf(err, 0, "exec arguments: bad magic or version");
	size_t rest = len - sizeof(h);
	/* Each string takes at least its NUL, so no count can exceed the bytes. */
	if (h.n_gids > rest / sizeof(uint32_t) || h.nfds > rest / sizeof(int32_t) ||
	    h.argc > rest || h.envc > rest || h.argc == 0)
		return cv_errf(err, 0, "exec arguments: counts do not fit %zu bytes", len);
	size_t fixed = (size_t)h.n_gids * sizeof(uint32_t) + (size_t)h.nfds * sizeof(int32_t);
	if (fixed > rest)
		return cv_errf(err, 0, "exec arguments: tables do not fit %zu bytes", len);
	size_t str_len = rest - fixed;
	size_t nptr = (size_t)h.argc + 1 + (size_t)h.envc + 1 + 2;
	size_t total = nptr * sizeof(char *) + fixed + str_len;
	char *mem = malloc(total ? total : 1);
	if (!mem)
		return cv_errf(err, ENOMEM, "exec arguments: %zu bytes", total);
	char **ptrs = (char **)mem;
	char *tables = mem + nptr * sizeof(char *);
	char *strs = tables + fixed;
	memcpy(tables, (const char *)buf + sizeof(h), fixed);
	memcpy(strs, (const char *)buf + sizeof(h) + fixed, str_len);

	const char *p = strs, *end = strs + str_len;
	char *one[2] = { NULL, NULL };
	if (h.flags & WIRE_FILENAME) {
		if (take_strings(&p, end, one, 1, "filename", err) < 0)
			goto fail;
		a->filename = one[0];
	} else {
		a->filename = NULL;
	}
	if (take_strings(&p, end, one, 1, "cwd", err) < 0)
		goto fail;
	a->cwd = one[0];
	char **argv = ptrs, **envv = ptrs + h.argc + 1;
	if (take_strings(&p, end, argv, h.argc, "argv", err) < 0 ||
	    take_strings(&p, end, envv, h.envc, "envv", err) < 0)
		goto fail;
	if (p != end) {
		cv_errf(err, 0, "exec arguments: %zu bytes left after the last string",
			(size_t)(end - p));
		goto fail;
	}
	a->argv = argv;
	a->envv = envv;
	a->uid = h.uid;
	a->gid = h.gid;
	a->extra_gids = h.n_gids ? (const uint32_t *)tables : NULL;
	a->n_extra_gids = h.n_gids;
	a->guest_fds = (const int *)(tables + (size_t)h.n_gids * sizeof(uint32_t));
	a->nfds = h.nfds;
	a->has_caps = (h.flags & WIRE_HAS_CAPS) != 0;
	a->no_new_privs = (h.flags & WIRE_NNP) != 0;
	a->stdio_is_pty = (h.flags & WIRE_STDIO_PTY) != 0;
	a->exec_fd = (h.flags & WIRE_EXEC_FD) ? 0 : -1; /* the real fd: the caller's */
	a->caps.bounding = h.caps[0];
	a->caps.effective = h.caps[1];
	a->caps.inheritable = h.caps[2];
	a->caps.permitted = h.caps[3];
	a->caps.ambient = h.caps[4];
	*storage = mem;
	return 0;
fail:
	free(mem);
	return -1;
}

int spawn_wire_unpack(int memfd, struct spawn_exec_args *a, void **storage,
		      struct cv_error *err)
{
	struct stat st;
	if (fstat(memfd, &st) < 0)
		return cv_errf(err, errno, "reading the exec arguments");
	if (st.st_size < 0 || (uint64_t)st.st_size > SPAWN_WIRE_MAX)
		return cv_errf(err, E2BIG, "exec arguments: %lld bytes (limit %u)",
			       (long long)st.st_size, SPAWN_WIRE_MAX);
	size_t len = (size_t)st.st_size;
	void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, memfd, 0) : NULL;
	if (len && map == MAP_FAILED)
		return cv_errf(err, errno, "mapping the exec arguments");
	int r = spawn_wire_decode(map, len, a, storage, err);
	if (len)
		munmap(map, len);
	return r;
}

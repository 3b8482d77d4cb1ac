/* The contents of a container's tmpfs mounts (kernel/ckpt_tmpfs.h).
 *
 * A tmpfs dies with its mount namespace, so its files go into the state
 * file. They are read and written by the container's own (ptrace-stopped)
 * process through injected syscalls: the paths resolve in its root and
 * mount namespace and with its credentials, never with the host's
 * (docs/DESIGN.md, "Checkpoint and restore"). Only directories and
 * regular files are kept; anything else in a tmpfs (a socket, a fifo, a
 * device, a symlink) fails the checkpoint by name. */
#include "kernel/ckpt_tmpfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ptrace_batch.h"

#define SCRATCH (64 * 1024)
#define TMPFS_MAX_BYTES (64ull << 20) /* kept in memory on restore: bounded */
#define TMPFS_MAX_DEPTH 16

struct walk {
	struct pti *t;
	int memfd;
	uint64_t scratch;
	struct sf_writer *w;
	pid_t pid;
	uint64_t bytes;
};

static int rsys(struct walk *k, int64_t *out, const char *what, const char *path, long nr,
		uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, struct cv_error *err)
{
	int64_t ret;
	if (pti_sys(k->t, &ret, err, nr, a1, a2, a3, a4, 0, 0) < 0)
		return cv_error_wrap(err, "process %d: tmpfs %s", k->pid, path);
	if (ret < 0 && ret > -4096)
		return cv_errf(err, (int)-ret, "process %d: tmpfs %s: %s", k->pid, path, what);
	if (out)
		*out = ret;
	return 0;
}

static int put_path(struct walk *k, const char *path, struct cv_error *err)
{
	return pti_mem_write(k->memfd, k->scratch, path, strlen(path) + 1, err);
}

static int put_record(struct walk *k, const char *path, const char *type, const struct stat *st,
		      uint64_t size, struct cv_error *err)
{
	msgpack_packer *pk = sf_record_begin(k->w, SF_KIND_FILE, 5, size, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "path");
	mpk_pack_str(pk, path);
	mpk_pack_key(pk, "type");
	mpk_pack_str(pk, type);
	mpk_pack_key(pk, "mode");
	msgpack_pack_uint32(pk, st->st_mode & 07777);
	mpk_pack_key(pk, "uid");
	msgpack_pack_uint32(pk, st->st_uid);
	mpk_pack_key(pk, "gid");
	msgpack_pack_uint32(pk, st->st_gid);
	return sf_record_end(k->w, err);
}

static int save_file(struct walk *k, const char *path, struct cv_error *err)
{
	int64_t fd;
	if (put_path(k, path, err) < 0 ||
	    rsys(k, &fd, "open", path, SYS_openat, (uint64_t)AT_FDCWD, k->scratch,
		 O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0, err) < 0)
		return -1;
	struct stat st;
	int rc = rsys(k, NULL, "fstat", path, SYS_fstat, (uint64_t)fd, k->scratch, 0, 0, err);
	if (rc == 0)
		rc = pti_mem_read(k->memfd, k->scratch, &st, sizeof(st), err);
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = cv_errf(err, 0,
			     "process %d: %s is not supported by checkpoint (kind: special file in a "
			     "tmpfs)",
			     k->pid, path);
	if (rc == 0 && (k->bytes += (uint64_t)st.st_size) > TMPFS_MAX_BYTES)
		rc = cv_errf(err, 0, "process %d: the tmpfs files exceed %llu MiB (at %s)", k->pid,
			     TMPFS_MAX_BYTES >> 20, path);
	if (rc == 0)
		rc = put_record(k, path, "file", &st, (uint64_t)st.st_size, err);
	static unsigned char buf[SCRATCH];
	for (uint64_t done = 0; rc == 0 && done < (uint64_t)st.st_size;) {
		int64_t n;
		uint64_t want = (uint64_t)st.st_size - done < SCRATCH ? (uint64_t)st.st_size - done
								      : SCRATCH;
		rc = rsys(k, &n, "read", path, SYS_read, (uint64_t)fd, k->scratch, want, 0, err);
		if (rc == 0 && n <= 0)
			rc = cv_errf(err, 0, "process %d: tmpfs %s shrank while read", k->pid, path);
		if (rc == 0)
			rc = pti_mem_read(k->memfd, k->scratch, buf, (size_t)n, err);
		if (rc == 0)
			rc = sf_write_data(k->w, buf, (size_t)n, err);
		done += (uint64_t)(n > 0 ? n : 0);
	}
	int64_t ign;
	pti_sys(k->t, &ign, err, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0);
	return rc;
}

static int walk_dir(struct walk *k, const char *path, int depth, struct cv_error *err)
{
	if (depth > TMPFS_MAX_DEPTH)
		return cv_errf(err, 0, "process %d: tmpfs %s nests too deep", k->pid, path);
	int64_t fd;
	if (put_path(k, path, err) < 0 ||
	    rsys(k, &fd, "open", path, SYS_openat, (uint64_t)AT_FDCWD, k->scratch,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, err) < 0)
		return -1;
	struct stat st;
	int rc = rsys(k, NULL, "fstat", path, SYS_fstat, (uint64_t)fd, k->scratch, 0, 0, err);
	if (rc == 0)
		rc = pti_mem_read(k->memfd, k->scratch, &st, sizeof(st), err);
	if (rc == 0)
		rc = put_record(k, path, "dir", &st, 0, err);
	/* Names first (the scratch page is reused by the recursion). */
	char *names = NULL;
	size_t nlen = 0;
	FILE *m = rc == 0 ? open_memstream(&names, &nlen) : NULL;
	static unsigned char buf[SCRATCH];
	for (;;) {
		int64_t n = 0;
		if (rc < 0 || !m)
			break;
		rc = rsys(k, &n, "getdents64", path, SYS_getdents64, (uint64_t)fd, k->scratch, SCRATCH,
			  0, err);
		if (rc < 0 || n == 0)
			break;
		if ((rc = pti_mem_read(k->memfd, k->scratch, buf, (size_t)n, err)) < 0)
			break;
		for (int64_t off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
				fprintf(m, "%c%s%c", d->d_type == DT_DIR ? 'd' : 'f', d->d_name, 0);
			off += d->d_reclen;
		}
	}
	if (m)
		fclose(m);
	int64_t ign;
	pti_sys(k->t, &ign, err, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0);
	for (size_t off = 0; rc == 0 && names && off < nlen;) {
		const char *e = names + off;
		size_t l = strlen(e);
		char child[CKPT_PATH_MAX];
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, e + 1) >= sizeof(child))
			rc = cv_errf(err, 0, "process %d: tmpfs path too long under %s", k->pid, path);
		else if (e[0] == 'd')
			rc = walk_dir(k, child, depth + 1, err);
		else
			rc = save_file(k, child, err);
		off += l + 1;
	}
	free(names);
	return rc;
}

int ckpt_tmpfs_save(struct ckpt_proc *p, struct sf_writer *w, struct cv_error *err)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", p->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return cv_errf(err, errno, "open %s", path);
	struct pti t = {.tid = p->threads[0].tid, .regs = p->threads[0].regs};
	int rc = pti_find_syscall(&t, err);
	int64_t scratch = -1;
	if (rc == 0 && pti_sys(&t, &scratch, err, SYS_mmap, 0, SCRATCH, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0) < 0)
		rc = -1;
	if (rc == 0 && scratch < 0 && scratch > -4096)
		rc = cv_errf(err, (int)-scratch, "process %d: a scratch area for tmpfs", p->pid);
	struct walk k = {.t = &t, .memfd = p->mem_fd, .scratch = (uint64_t)scratch, .w = w,
			 .pid = p->pid};
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts ... - fstype source superopts */
		char mnt[CKPT_PATH_MAX], opts[256], fstype[64];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s %255s", mnt, opts) != 2 ||
		    sscanf(dash + 3, "%63s", fstype) != 1)
			continue;
		/* /dev and its children are the runtime's (device nodes, shm
		 * set up again by create), and so are the read-only tmpfs that
		 * mask /proc and /sys paths; the container's own writable tmpfs
		 * mounts are the rest. Escaped names (\040) are skipped. */
		if (strcmp(fstype, "tmpfs") || strncmp(opts, "rw", 2) || !strncmp(mnt, "/dev", 4) ||
		    !strncmp(mnt, "/proc", 5) || !strncmp(mnt, "/sys", 4) || strchr(mnt, '\\'))
			continue;
		rc = walk_dir(&k, mnt, 0, err);
	}
	fclose(f);
	if (scratch > 0) {
		int64_t ign;
		struct cv_error e2 = {0};
		pti_sys(&t, &ign, &e2, SYS_munmap, (uint64_t)scratch, SCRATCH, 0, 0, 0, 0);
	}
	struct cv_error e3 = {0};
	pti_restore_regs(&t, &e3);
	return rc;
}

/* --- Restore ------------------------------------------------------------ */

int ckpt_tmpfs_add(struct ckpt_tmpfs *fs, const msgpack_object *rec, uint64_t data_len,
		   struct cv_error *err)
{
	const msgpack_object *pth = mpk_map_get(rec, "path"), *typ = mpk_map_get(rec, "type");
	uint64_t mode, uid, gid;
	if (!pth || pth->type != MSGPACK_OBJECT_STR || pth->via.str.size == 0 ||
	    pth->via.str.size >= CKPT_PATH_MAX || pth->via.str.ptr[0] != '/' ||
	    memchr(pth->via.str.ptr, '\0', pth->via.str.size) || !typ ||
	    typ->type != MSGPACK_OBJECT_STR || sf_get_u64(rec, "mode", &mode, err) < 0 ||
	    sf_get_u64(rec, "uid", &uid, err) < 0 || sf_get_u64(rec, "gid", &gid, err) < 0)
		return cv_errf(err, 0, "state file: a file record without a usable path, type, mode, "
				       "uid or gid");
	bool dir = typ->via.str.size == 3 && !memcmp(typ->via.str.ptr, "dir", 3);
	bool reg = typ->via.str.size == 4 && !memcmp(typ->via.str.ptr, "file", 4);
	if ((!dir && !reg) || (dir && data_len) || mode > 07777 || uid > UINT32_MAX ||
	    gid > UINT32_MAX)
		return cv_errf(err, 0, "state file: file %.*s: bad type, mode or owner",
			       (int)pth->via.str.size, pth->via.str.ptr);
	if ((fs->bytes += data_len) > TMPFS_MAX_BYTES)
		return cv_errf(err, 0, "state file: tmpfs files exceed %llu MiB",
			       TMPFS_MAX_BYTES >> 20);
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 16;
		if (cap > 65536)
			return cv_errf(err, 0, "state file: more than 65536 tmpfs files");
		struct ckpt_file *nf = realloc(fs->files, cap * sizeof(*nf));
		if (!nf)
			return cv_errf(err, ENOMEM, "state file: tmpfs files");
		fs->files = nf;
		fs->cap = cap;
	}
	struct ckpt_file *e = &fs->files[fs->n];
	memset(e, 0, sizeof(*e));
	e->path = strndup(pth->via.str.ptr, pth->via.str.size);
	e->data = data_len ? malloc(data_len) : NULL;
	if (!e->path || (data_len && !e->data)) {
		free(e->path);
		free(e->data);
		return cv_errf(err, ENOMEM, "state file: tmpfs file");
	}
	e->dir = dir;
	e->mode = (unsigned)mode;
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	e->len = (size_t)data_len;
	fs->n++;
	return 0;
}

void ckpt_tmpfs_free(struct ckpt_tmpfs *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->files[i].path);
		free(fs->files[i].data);
	}
	free(fs->files);
	memset(fs, 0, sizeof(*fs));
}

/* Restore: the entries' calls go in batches (kernel/ptrace_batch.h), in
 * the order saved (a directory before what it holds). A file's fd comes
 * from its openat: linked within the batch, and given as a number to the
 * batches after the one that opened it. */
struct restorer {
	struct ptb *b;
	struct pti *t;
	int memfd;
	int open_call; /* the current file's openat in this batch, or -1 */
	int64_t fd;    /* its fd once a batch with the openat ran, or -1 */
};

/* What a batch's results say beyond "all succeeded": a directory that
 * was there already is fine, any other mkdirat failure is not; a write
 * must have written all of its bytes. */
static int check_results(const struct ptb *b, struct cv_error *err)
{
	for (size_t i = 0; i < b->ncalls; i++) {
		const struct ptb_call *c = &b->calls[i];
		const char *what = b->text + b->what[i];
		if (c->nr == SYS_mkdirat && c->ret < 0 && c->ret != -EEXIST)
			return cv_errf(err, (int)-c->ret, "%s", what);
		if (c->nr == SYS_write && c->ret != (int64_t)c->args[2])
			return cv_errf(err, EIO, "%s: wrote %lld of %llu bytes", what,
				       (long long)c->ret, (unsigned long long)c->args[2]);
	}
	return 0;
}

static int run_batch(struct restorer *k, struct cv_error *err)
{
	if (ptb_run(k->t, k->memfd, k->b, err) < 0 || check_results(k->b, err) < 0)
		return -1;
	if (k->open_call >= 0)
		k->fd = ptb_result(k->b, k->open_call);
	k->open_call = -1;
	ptb_reset(k->b);
	return 0;
}

/* Makes room for one more call (and its data), running what waits. */
static int room(struct restorer *k, size_t data, const char *what, struct cv_error *err)
{
	if (ptb_room(k->b, 1, data, strlen(what) + 1))
		return 0;
	return run_batch(k, err);
}

/* A call on the current file's fd (argument 1). */
static int on_fd(struct restorer *k, const char *what, long nr, uint64_t a2, uint64_t a3,
		 unsigned flags, struct cv_error *err)
{
	if (room(k, 0, what, err) < 0)
		return -1;
	int i = ptb_add(k->b, what, nr, (uint64_t)k->fd, a2, a3, 0, 0, 0, err);
	if (i < 0 || ptb_set_flags(k->b, i, flags, err) < 0 ||
	    (k->open_call >= 0 && ptb_link(k->b, i, 1, k->open_call, err) < 0))
		return -1;
	return 0;
}

static int queue_dir(struct restorer *k, const struct ckpt_file *e, struct cv_error *err)
{
	char what[CKPT_PATH_MAX + 48];
	size_t pl = strlen(e->path) + 1;
	/* The three calls share the path: one batch. */
	snprintf(what, sizeof(what), "tmpfs directory %s: chown", e->path);
	if (!ptb_room(k->b, 3, pl, 3 * (strlen(what) + 1)) && run_batch(k, err) < 0)
		return -1;
	uint64_t path;
	if (ptb_data(k->b, e->path, pl, &path, err) < 0)
		return -1;
	snprintf(what, sizeof(what), "tmpfs directory %s", e->path);
	int mk = ptb_add(k->b, what, SYS_mkdirat, (uint64_t)AT_FDCWD, path, e->mode, 0, 0, 0, err);
	snprintf(what, sizeof(what), "tmpfs directory %s: chmod", e->path);
	int md = ptb_add(k->b, what, SYS_fchmodat, (uint64_t)AT_FDCWD, path, e->mode, 0, 0, 0, err);
	snprintf(what, sizeof(what), "tmpfs directory %s: chown", e->path);
	int ow = ptb_add(k->b, what, SYS_fchownat, (uint64_t)AT_FDCWD, path, e->uid, e->gid,
			 AT_SYMLINK_NOFOLLOW, 0, err);
	/* mkdirat's errors are sorted after the run (EEXIST is fine); mode
	 * and owner are best effort, as the checkpoint side's. */
	if (mk < 0 || md < 0 || ow < 0 || ptb_set_flags(k->b, mk, PTB_MAY_FAIL, err) < 0 ||
	    ptb_set_flags(k->b, md, PTB_MAY_FAIL, err) < 0 ||
	    ptb_set_flags(k->b, ow, PTB_MAY_FAIL, err) < 0)
		return -1;
	return 0;
}

static int queue_file(struct restorer *k, const struct ckpt_file *e, struct cv_error *err)
{
	char what[CKPT_PATH_MAX + 32];
	size_t pl = strlen(e->path) + 1;
	snprintf(what, sizeof(what), "tmpfs %s: create", e->path);
	uint64_t path;
	if (room(k, pl, what, err) < 0 || ptb_data(k->b, e->path, pl, &path, err) < 0)
		return -1;
	k->open_call = ptb_add(k->b, what, SYS_openat, (uint64_t)AT_FDCWD, path,
			       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, e->mode, 0, 0,
			       err);
	k->fd = -1;
	if (k->open_call < 0)
		return -1;
	snprintf(what, sizeof(what), "tmpfs %s: write", e->path);
	for (size_t off = 0; off < e->len;) {
		/* As much as the batch still holds; a run first when that is
		 * too little (the file's fd is then given as a number). Room
		 * for the call is made here too: on_fd must not run the batch
		 * between the data and the write that points at it. */
		size_t n = e->len - off, free = (PTB_DATA_MAX - k->b->data_len) & ~(size_t)7;
		if (free < (n < 512 ? n : 512) || !ptb_room(k->b, 1, 0, strlen(what) + 1)) {
			if (run_batch(k, err) < 0)
				return -1;
			free = PTB_DATA_MAX;
		}
		if (n > free)
			n = free;
		uint64_t at;
		if (ptb_data(k->b, e->data + off, n, &at, err) < 0 ||
		    on_fd(k, what, SYS_write, at, n, 0, err) < 0)
			return -1;
		off += n;
	}
	snprintf(what, sizeof(what), "tmpfs %s: chmod", e->path);
	if (on_fd(k, what, SYS_fchmod, e->mode, 0, PTB_MAY_FAIL, err) < 0)
		return -1;
	snprintf(what, sizeof(what), "tmpfs %s: chown", e->path);
	if (on_fd(k, what, SYS_fchown, e->uid, e->gid, PTB_MAY_FAIL, err) < 0)
		return -1;
	snprintf(what, sizeof(what), "tmpfs %s: close", e->path);
	return on_fd(k, what, SYS_close, 0, 0, PTB_MAY_FAIL, err);
}

int ckpt_tmpfs_restore(const struct ckpt_tmpfs *fs, struct pti *t, int memfd, uint64_t code,
		       uint64_t area, struct cv_error *err)
{
	if (fs->n == 0)
		return 0;
	struct ptb *b = malloc(sizeof(*b));
	if (!b)
		return cv_errf(err, ENOMEM, "restoring the tmpfs files");
	ptb_init(b, code, area);
	struct restorer k = {.b = b, .t = t, .memfd = memfd, .open_call = -1, .fd = -1};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < fs->n; i++) {
		const struct ckpt_file *e = &fs->files[i];
		if (strlen(e->path) + 1 > PTB_DATA_MAX / 2)
			rc = cv_errf(err, 0, "tmpfs path too long: %s", e->path);
		else
			rc = e->dir ? queue_dir(&k, e, err) : queue_file(&k, e, err);
	}
	if (rc == 0)
		rc = run_batch(&k, err);
	free(b);
	return rc < 0 ? cv_error_wrap(err, "process %d", t->tid) : 0;
}

#pragma once
/* The files of a container's tmpfs mounts (other than /dev's) as `file`
 * records of the state file, read and rewritten by the container's own
 * stopped process through injected syscalls (kernel/ckpt_tmpfs.c). */
#include <stdbool.h>
#include <stdint.h>

#include "kernel/ckpt_proc.h"
#include "kernel/ptrace_inject.h"
#include "state/state.h"

/* Writes a `file` record (path, type "dir"|"file", mode, uid, gid; the
 * contents as its data run) for everything under the tmpfs mounts of p,
 * a captured process still held (its mem_fd open, its threads stopped). */
int ckpt_tmpfs_save(struct ckpt_proc *p, struct sf_writer *w, struct cv_error *err);

struct ckpt_file {
	char *path;
	bool dir;
	unsigned mode;
	uint32_t uid, gid;
	unsigned char *data;
	size_t len;
};

/* What a restore keeps of the file records (bounded: 64 MiB in all). */
struct ckpt_tmpfs {
	struct ckpt_file *files;
	size_t n, cap;
	uint64_t bytes;
};

/* A `file` record; its data run goes to the returned entry's data. */
int ckpt_tmpfs_add(struct ckpt_tmpfs *fs, const msgpack_object *rec, uint64_t data_len,
		   struct cv_error *err);
void ckpt_tmpfs_free(struct ckpt_tmpfs *fs);

/* Recreates the files in the process t drives (its root, its mounts), in
 * batches of calls (kernel/ptrace_batch.h): the batch loop is at `code`
 * in it and its PTB_AREA_LEN bytes of batch area at `area`. */
int ckpt_tmpfs_restore(const struct ckpt_tmpfs *fs, struct pti *t, int memfd, uint64_t code,
		       uint64_t area, struct cv_error *err);

#pragma once
/* Writing checkpoint records for the engine's unit tests (test_ckpt_*.c).
 * A task and a thread record each have ten fields every file must hold;
 * these helpers pack them (zeroed or neutral) and leave the record open,
 * so a test packs only the fields it is about and then ends the record. */
#include <msgpack.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/user.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"

#define CKREC_TASK_FIELDS 10
#define CKREC_THREAD_FIELDS 10

static inline void ckrec_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	mpk_pack_key(pk, k);
	msgpack_pack_uint64(pk, v);
}

/* A bin field of n bytes: p's, or zeros when p is NULL (n <= 4096). */
static inline void ckrec_bin(msgpack_packer *pk, const char *k, const void *p, size_t n)
{
	static const unsigned char zero[4096];
	mpk_pack_key(pk, k);
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p ? p : zero, n);
}

/* Opens a task record of pid declaring nthreads threads, with `extra`
 * more fields for the caller to pack. */
static inline msgpack_packer *ckrec_task_begin(struct sf_writer *w, uint64_t pid, uint64_t nthreads,
					       size_t extra, struct cv_error *err)
{
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_TASK, CKREC_TASK_FIELDS + extra, 0, err);
	if (!pk)
		return NULL;
	ckrec_u64(pk, "pid", pid);
	mpk_pack_key(pk, "cwd");
	mpk_pack_str(pk, "/");
	ckrec_u64(pk, "umask", 022);
	ckrec_bin(pk, "mm", NULL, sizeof(struct ckpt_mm));
	ckrec_bin(pk, "auxv", NULL, 16);
	ckrec_bin(pk, "sigactions", NULL, 64 * sizeof(struct ckpt_sigaction));
	ckrec_u64(pk, "sigaltstack_sp", 0);
	ckrec_u64(pk, "sigaltstack_size", 0);
	ckrec_u64(pk, "sigaltstack_flags", 2);
	ckrec_u64(pk, "threads", nthreads);
	return pk;
}

/* Opens a thread record of tid whose registers are regs_len bytes (the
 * real size unless a test wants it wrong), with `extra` more fields. */
static inline msgpack_packer *ckrec_thread_begin(struct sf_writer *w, uint64_t tid, size_t regs_len,
						 size_t extra, struct cv_error *err)
{
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_THREAD, CKREC_THREAD_FIELDS + extra, 0, err);
	if (!pk)
		return NULL;
	ckrec_u64(pk, "tid", tid);
	ckrec_bin(pk, "regs", NULL, regs_len);
	ckrec_bin(pk, "xstate", NULL, 512);
	ckrec_u64(pk, "sigmask", 0);
	ckrec_u64(pk, "rseq", 0);
	ckrec_u64(pk, "rseq_len", 0);
	ckrec_u64(pk, "rseq_sig", 0);
	ckrec_u64(pk, "robust_list", 0);
	ckrec_u64(pk, "robust_len", 0);
	ckrec_u64(pk, "clear_tid", 0);
	return pk;
}

/* Runs the engine's loader over the file in fd, from its start. */
static inline int ckrec_load(int fd, struct ckpt_loader *l, struct cv_error *err)
{
	lseek(fd, 0, SEEK_SET);
	return sf_read_fd(fd, ckpt_image_event, l, err) != 0 ? -1 : ckpt_image_done(l, err);
}

/* Whether a refusal's message names what case `i` wants; prints what it
 * said when it does not. */
static inline bool ckrec_says(const char *msg, const char *want, size_t i)
{
	if (strstr(msg, want))
		return true;
	fprintf(stderr, "  case %zu: \"%s\", wanted \"%s\"\n", i, msg, want);
	return false;
}

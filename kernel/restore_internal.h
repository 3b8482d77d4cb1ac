#pragma once
/* Shared by kernel/restore_proc.c (one process rebuilt in a traced stub
 * or exec'd init) and kernel/restore_tree.c (a process tree forked from
 * the restored init): the state of one process being rebuilt and the
 * steps both use. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ckpt_proc.h"
#include "kernel/ptrace_batch.h"
#include "kernel/ptrace_inject.h"

/* The trampoline: a code page (read and execute) holding `syscall; int3`
 * at 0, the batch loop (kernel/ptrace_batch.c) at BATCH_CODE_OFF and read-only
 * scratch bytes from SCRATCH_OFF (written through /proc/PID/mem), then the
 * batch area (read and write: the table the loop writes its results into,
 * and the bytes the calls point at). */
#define RST_PAGE 4096UL
#define BATCH_CODE_OFF 16
#define SCRATCH_OFF 128
#define RST_TRAMP_LEN (RST_PAGE + PTB_AREA_LEN)
_Static_assert(BATCH_CODE_OFF >= 3 && SCRATCH_OFF >= BATCH_CODE_OFF + PTB_CODE_LEN,
	       "the batch loop sits between the syscall and the scratch bytes");

struct rst_area {
	uint64_t start, end;
};

struct rst {
	const struct ckpt_proc *p;
	struct pti t; /* its main thread, stopped */
	int memfd;
	uint64_t tramp;
	struct rst_area stub[64]; /* the stub's own mappings when we took it */
	const char *stub_name[64];
	char stub_names[64][32];
	size_t nstub;
	/* Tree mode: the trampoline must be free in all these layouts (the
	 * children inherit it), and the fds to place wait at fd_base + k: the
	 * external stdio k (0-2), then each pipe's read and write end
	 * (fd_base + 3 + 2 * index, + 1). fd_base 0: the fds are in place. */
	const struct ckpt_proc *all;
	size_t nall;
	int fd_base;
	const struct ckpt_pipe *pipes;
	size_t npipes;
	bool files; /* recreate the tmpfs files (the init only) */
	pid_t tids[CKPT_MAX_THREADS]; /* host ids of the rebuilt threads */
};

/* Runs a syscall in r's main thread; a negative result is an error
 * naming what we asked. */
int rst_sys(struct rst *r, int64_t *out, const char *what, long nr, uint64_t a1, uint64_t a2,
	    uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err);
int rst_put_scratch(struct rst *r, const void *buf, size_t len, struct cv_error *err);
/* Batches of calls in r's main thread (or whichever thread r->t holds
 * when the batch runs), one ptrace resume each (kernel/restore_batch.c).
 * A step queues its calls and the batch runs when rst_batch_run is called,
 * or when a group of calls does not fit any more (rst_batch_fit runs what
 * waits first). A failing call stops the batch and is the error, as
 * "restoring process N: <its label>: <strerror>". One batch at a time, for
 * one process. */
int rst_batch_fit(struct rst *r, size_t calls, size_t data, size_t text, struct cv_error *err);
/* fit + add, for a call that needs nothing of another. */
int rst_batch_call(struct rst *r, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		   uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err);
/* Within a group made room for: */
int rst_batch_data(struct rst *r, const void *buf, size_t len, uint64_t *addr,
		   struct cv_error *err);
int rst_batch_add(struct rst *r, const char *what, long nr, uint64_t a1, uint64_t a2,
		  uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err);
int rst_batch_link(struct rst *r, int call, int arg, int from, struct cv_error *err);
int rst_batch_flags(struct rst *r, int call, unsigned flags, struct cv_error *err);
/* Runs what waits (nothing: 0); results stay readable until the next add. */
int rst_batch_run(struct rst *r, struct cv_error *err);
int64_t rst_batch_result(int call);
/* Drops what waits unrun (after a failure elsewhere). */
void rst_batch_drop(void);

/* Maps the trampoline in a process stopped after its exec (r->t, r->memfd set). */
int rst_bootstrap(struct rst *r, struct cv_error *err);
/* Rebuilds r->p in r's process (bootstrapped, or forked from one that
 * was): areas, pages, mm, handlers, fds, threads, registers. Leaves every
 * thread stopped (r->tids) with its final registers; the caller detaches. */
int rst_rebuild(struct rst *r, struct cv_error *err);
/* Makes the next id handed out in pid's pid namespace `want`. */
int rst_set_ns_last_pid(pid_t pid, pid_t want, struct cv_error *err);

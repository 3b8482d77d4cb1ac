#pragma once
/* Shared by kernel/restore_proc.c (one process rebuilt in a traced stub
 * or exec'd init) and kernel/restore_tree.c (a process tree forked from
 * the restored init): the state of one process being rebuilt and the
 * steps both use. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ckpt_proc.h"
#include "kernel/ptrace_inject.h"

#define SCRATCH_OFF 64 /* trampoline page: `syscall` at 0, scratch after */
#define RST_PAGE 4096UL

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
/* Maps the trampoline in a process stopped after its exec (r->t, r->memfd set). */
int rst_bootstrap(struct rst *r, struct cv_error *err);
/* Rebuilds r->p in r's process (bootstrapped, or forked from one that
 * was): areas, pages, mm, handlers, fds, threads, registers. Leaves every
 * thread stopped (r->tids) with its final registers; the caller detaches. */
int rst_rebuild(struct rst *r, struct cv_error *err);
/* Makes the next id handed out in pid's pid namespace `want`. */
int rst_set_ns_last_pid(pid_t pid, pid_t want, struct cv_error *err);

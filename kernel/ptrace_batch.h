#pragma once
/* Batches of injected syscalls: many calls in one ptrace resume.
 *
 * A small loop of machine code (ptb_code, kernel/ptrace_batch.c) sits in an
 * executable page of the tracee; the calls wait in a table in a writable
 * area of the tracee (ptb_call, 64 bytes each), followed by the bytes they
 * point at (paths, structs). The loop runs the calls in order, writes each
 * result back into its entry, stops at the first call that fails
 * (-4095..-1), and ends on an int3: one ptrace stop for the whole batch
 * instead of one per call. The tracer then reads how far it got and every
 * result, and a failure is reported with that call's own label.
 *
 * The builder is bounded (PTB_MAX_CALLS calls, PTB_DATA_MAX bytes of data,
 * PTB_TEXT_MAX bytes of labels): an add past a bound is refused, and
 * ptb_room says beforehand whether a group of calls still fits, so a
 * caller runs what it has and starts over. x86_64 only. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "kernel/ptrace_inject.h"

#define PTB_MAX_CALLS 64
#define PTB_CALL_SIZE 64
#define PTB_DATA_MAX 8192
#define PTB_TEXT_MAX 16384
/* The writable area in the tracee: the table, then the data. */
#define PTB_AREA_LEN (PTB_MAX_CALLS * PTB_CALL_SIZE + PTB_DATA_MAX)

/* Per-call flags (read by the loop). */
enum {
	PTB_MAY_FAIL = 1,  /* an error result does not stop the batch */
	PTB_SKIP_SAME = 2, /* skipped (result 0) when its first two arguments are
			    * equal: dup3(fd, fd) is EINVAL, and a file opened
			    * straight onto its number needs no dup3 or close */
};

/* One entry of the table, exactly as the loop reads it. */
struct ptb_call {
	uint32_t nr;        /* syscall number */
	uint8_t link_arg;   /* 1..6: that argument takes the result of */
	uint8_t flags;      /* PTB_* */
	uint16_t link_from; /* ...this earlier call (index); link_arg 0: none */
	uint64_t args[6];
	int64_t ret; /* written by the loop */
};

struct ptb {
	uint64_t code; /* where ptb_code was written in the tracee (executable) */
	uint64_t area; /* the tracee's writable area, PTB_AREA_LEN bytes */
	size_t ncalls, data_len, text_len;
	struct ptb_call calls[PTB_MAX_CALLS];
	uint32_t what[PTB_MAX_CALLS]; /* offset of each call's label in text */
	unsigned char data[PTB_DATA_MAX];
	char text[PTB_TEXT_MAX];
	/* After ptb_run: how many calls completed (a skipped one counts) and,
	 * when it stopped on one, which. */
	size_t ran;
};

/* The loop's machine code (PTB_CODE_LEN bytes); it must be written into
 * an executable page of the tracee (ptb_write_code) before a batch runs. */
#define PTB_CODE_LEN 104
extern const unsigned char ptb_code[];
extern const size_t ptb_code_len;
int ptb_write_code(int memfd, uint64_t at, struct cv_error *err);

/* An empty batch for the loop at `code` and the area at `area`. */
void ptb_init(struct ptb *b, uint64_t code, uint64_t area);
/* Empties b (same addresses). */
void ptb_reset(struct ptb *b);
/* Whether `calls` more calls, `data` more bytes of data and labels of
 * `text` bytes in all (with their NULs) still fit. */
bool ptb_room(const struct ptb *b, size_t calls, size_t data, size_t text);

/* Copies len bytes into the batch's data and gives the address they will
 * have in the tracee (8-byte aligned). */
int ptb_data(struct ptb *b, const void *buf, size_t len, uint64_t *addr, struct cv_error *err);
/* Adds a call labelled `what` (its error says "<what>: <strerror>");
 * returns its index, or -1 with err set when a bound is reached. */
int ptb_add(struct ptb *b, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
	    uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err);
/* Argument `arg` (1..6) of call `call` becomes the result of the earlier
 * call `from` when the batch runs (`from` must not be PTB_MAY_FAIL); one
 * linked argument per call. */
int ptb_link(struct ptb *b, int call, int arg, int from, struct cv_error *err);
int ptb_set_flags(struct ptb *b, int call, unsigned flags, struct cv_error *err);
/* A call's result after ptb_run. */
int64_t ptb_result(const struct ptb *b, int call);

/* Runs the batch in t's thread in one resume, from t->regs (rip, the six
 * registers the loop uses and orig_rax replaced; pti_restore_regs puts
 * them back). Returns 0 when every call ran (results in calls[].ret), -1
 * with err set otherwise: a failing call as "<its label>: <strerror>" (err
 * code its errno, b->ran the calls before it); any other stop (a signal, a
 * ptrace event, another trap) as an error naming it, with the thread left
 * in that stop for the caller to decide (it is not resumed). Empty: 0,
 * nothing run. The batch stays as it was; ptb_reset to reuse it. */
int ptb_run(struct pti *t, int memfd, struct ptb *b, struct cv_error *err);

/* Batches of injected syscalls (kernel/ptrace_batch.h).
 *
 * The tracer sets rbx to the first entry of the table, r12 to the end of
 * the entries in use and r13 to the table's start, points rip at the loop
 * and resumes once. rbx, r12 and r13 survive `syscall` (it clobbers only
 * rax, rcx and r11), so the loop needs no stack: the thread's stack may be
 * unmapped at this point of a restore. At the int3, rbx says how far it
 * got: the end (all ran) or the entry that failed. */
#include "kernel/ptrace_batch.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

_Static_assert(sizeof(struct ptb_call) == PTB_CALL_SIZE, "the loop reads 64-byte entries");
_Static_assert(offsetof(struct ptb_call, link_arg) == 4 && offsetof(struct ptb_call, flags) == 5 &&
		       offsetof(struct ptb_call, link_from) == 6 &&
		       offsetof(struct ptb_call, args) == 8 && offsetof(struct ptb_call, ret) == 56,
	       "the loop's offsets");

/* Assembled by hand (checked against GNU as). Offsets in hex on the left;
 * [e+N] is byte N of the entry rbx points at. */
const unsigned char ptb_code[] = {
	/* 00 loop: all done? */
	0x4c, 0x39, 0xe3,             /* cmp rbx, r12 */
	0x73, 0x62,                   /* jae 67 (done) */
	0x8b, 0x03,                   /* mov eax, [e+0]       nr */
	/* 07 an argument linked to an earlier result */
	0x0f, 0xb6, 0x4b, 0x04,       /* movzx ecx, byte [e+4]  link_arg */
	0x85, 0xc9,                   /* test ecx, ecx */
	0x74, 0x10,                   /* jz 1f (no link) */
	0x0f, 0xb7, 0x53, 0x06,       /* movzx edx, word [e+6]  link_from */
	0xc1, 0xe2, 0x06,             /* shl edx, 6             * 64 bytes */
	0x49, 0x8b, 0x54, 0x15, 0x38, /* mov rdx, [r13+rdx+56]  its ret */
	0x48, 0x89, 0x14, 0xcb,       /* mov [rbx+rcx*8], rdx   args[link_arg-1] */
	/* 1f PTB_SKIP_SAME: first two arguments equal, nothing to do */
	0x48, 0x8b, 0x7b, 0x08,                   /* mov rdi, [e+8]      arg 1 */
	0xf6, 0x43, 0x05, 0x02,                   /* test byte [e+5], 2  flags */
	0x74, 0x10,                               /* jz 39 (call) */
	0x48, 0x3b, 0x7b, 0x10,                   /* cmp rdi, [e+16]     arg 2 */
	0x75, 0x0a,                               /* jne 39 (call) */
	0x48, 0xc7, 0x43, 0x38, 0, 0, 0, 0,       /* mov qword [e+56], 0 ret */
	0xeb, 0x28,                               /* jmp 61 (next) */
	/* 39 call: the other five arguments, then the syscall */
	0x48, 0x8b, 0x73, 0x10,       /* mov rsi, [e+16] */
	0x48, 0x8b, 0x53, 0x18,       /* mov rdx, [e+24] */
	0x4c, 0x8b, 0x53, 0x20,       /* mov r10, [e+32] */
	0x4c, 0x8b, 0x43, 0x28,       /* mov r8, [e+40] */
	0x4c, 0x8b, 0x4b, 0x30,       /* mov r9, [e+48] */
	0x0f, 0x05,                   /* syscall */
	0x48, 0x89, 0x43, 0x38,       /* mov [e+56], rax        ret */
	0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, /* cmp rax, -4095 */
	0x72, 0x06,                   /* jb 61 (next): not an error */
	0xf6, 0x43, 0x05, 0x01,       /* test byte [e+5], 1     PTB_MAY_FAIL */
	0x74, 0x06,                   /* jz 67 (done): stop on it */
	/* 61 next */
	0x48, 0x83, 0xc3, 0x40,       /* add rbx, 64 */
	0xeb, 0x99,                   /* jmp 00 (loop) */
	/* 67 done */
	0xcc,                         /* int3 */
};
const size_t ptb_code_len = sizeof(ptb_code);
#define TRAP_OFF 0x67 /* the int3: rip is one past it at the stop */
_Static_assert(sizeof(ptb_code) == TRAP_OFF + 1 && sizeof(ptb_code) == PTB_CODE_LEN,
	       "the int3 ends the code");

int ptb_write_code(int memfd, uint64_t at, struct cv_error *err)
{
	return pti_mem_write(memfd, at, ptb_code, sizeof(ptb_code), err);
}

void ptb_init(struct ptb *b, uint64_t code, uint64_t area)
{
	b->code = code;
	b->area = area;
	ptb_reset(b);
}

void ptb_reset(struct ptb *b)
{
	b->ncalls = 0;
	b->data_len = 0;
	b->text_len = 0;
	b->ran = 0;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

bool ptb_room(const struct ptb *b, size_t calls, size_t data, size_t text)
{
	return calls <= PTB_MAX_CALLS - b->ncalls && align8(data) <= PTB_DATA_MAX - b->data_len &&
	       text <= PTB_TEXT_MAX - b->text_len;
}

int ptb_data(struct ptb *b, const void *buf, size_t len, uint64_t *addr, struct cv_error *err)
{
	if (align8(len) > PTB_DATA_MAX - b->data_len)
		return cv_errf(err, 0, "a batch of syscalls: %zu more bytes of data do not fit (%zu "
				       "of %d used)", len, b->data_len, PTB_DATA_MAX);
	memcpy(b->data + b->data_len, buf, len);
	memset(b->data + b->data_len + len, 0, align8(len) - len);
	*addr = b->area + PTB_MAX_CALLS * PTB_CALL_SIZE + b->data_len;
	b->data_len += align8(len);
	return 0;
}

int ptb_add(struct ptb *b, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
	    uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err)
{
	size_t wl = strlen(what) + 1;
	if (b->ncalls >= PTB_MAX_CALLS)
		return cv_errf(err, 0, "a batch of syscalls: %s: more than %d calls", what,
			       PTB_MAX_CALLS);
	if (wl > PTB_TEXT_MAX - b->text_len)
		return cv_errf(err, 0, "a batch of syscalls: %.64s: labels exceed %d bytes", what,
			       PTB_TEXT_MAX);
	if (nr < 0 || nr > UINT32_MAX)
		return cv_errf(err, 0, "a batch of syscalls: %s: bad syscall number %ld", what, nr);
	size_t i = b->ncalls++;
	b->calls[i] = (struct ptb_call){.nr = (uint32_t)nr, .args = {a1, a2, a3, a4, a5, a6}};
	memcpy(b->text + b->text_len, what, wl);
	b->what[i] = (uint32_t)b->text_len;
	b->text_len += wl;
	return (int)i;
}

static int check_index(const struct ptb *b, int call, struct cv_error *err)
{
	if (call < 0 || (size_t)call >= b->ncalls)
		return cv_errf(err, 0, "a batch of syscalls: no call %d (%zu in it)", call, b->ncalls);
	return 0;
}

int ptb_link(struct ptb *b, int call, int arg, int from, struct cv_error *err)
{
	if (check_index(b, call, err) < 0 || check_index(b, from, err) < 0)
		return -1;
	/* One linked argument per call: the loop reads one (link_arg, link_from). */
	if (from >= call || arg < 1 || arg > 6 || (b->calls[from].flags & PTB_MAY_FAIL) ||
	    b->calls[call].link_arg)
		return cv_errf(err, 0, "a batch of syscalls: %s: argument %d cannot take the result "
				       "of call %d", b->text + b->what[call], arg, from);
	b->calls[call].link_arg = (uint8_t)arg;
	b->calls[call].link_from = (uint16_t)from;
	return 0;
}

int ptb_set_flags(struct ptb *b, int call, unsigned flags, struct cv_error *err)
{
	if (check_index(b, call, err) < 0)
		return -1;
	if (flags & ~(unsigned)(PTB_MAY_FAIL | PTB_SKIP_SAME))
		return cv_errf(err, 0, "a batch of syscalls: flags 0x%x", flags);
	b->calls[call].flags = (uint8_t)flags;
	return 0;
}

int64_t ptb_result(const struct ptb *b, int call)
{
	return b->calls[call].ret;
}

static const char *label(const struct ptb *b, size_t i)
{
	return b->text + b->what[i];
}

/* Waits for the stop the batch ends in; anything but our int3 is the
 * caller's to handle, so it is named and left as it is. */
static int wait_trap(struct pti *t, const struct ptb *b, struct user_regs_struct *r,
		     struct cv_error *err)
{
	int st;
	if (pti_wait(t->tid, &st, err) < 0)
		return cv_error_wrap(err, "a batch of %zu syscalls", b->ncalls);
	if (!WIFSTOPPED(st))
		return cv_errf(err, 0, "thread %d: a batch of %zu syscalls ended with status 0x%x",
			       t->tid, b->ncalls, st);
	if (ptrace(PTRACE_GETREGS, t->tid, 0, r) < 0)
		return cv_errf(err, errno, "reading the registers of thread %d", t->tid);
	/* Where it stopped: the entry rbx points at (if it is one). */
	size_t at = r->rbx >= b->area ? (size_t)((r->rbx - b->area) / PTB_CALL_SIZE) : b->ncalls;
	const char *in = at < b->ncalls ? label(b, at) : "none";
	int sig = WSTOPSIG(st), event = st >> 16;
	if (event)
		return cv_errf(err, 0, "thread %d: ptrace event %d during a batch of %zu syscalls "
				       "(at call %zu: %s)", t->tid, event, b->ncalls, at + 1, in);
	if (sig != SIGTRAP || r->rip != b->code + TRAP_OFF + 1)
		return cv_errf(err, 0, "thread %d: stopped by signal %d (%s) during a batch of %zu "
				       "syscalls (at call %zu: %s)", t->tid, sig, strsignal(sig),
			       b->ncalls, at + 1, in);
	return 0;
}

int ptb_run(struct pti *t, int memfd, struct ptb *b, struct cv_error *err)
{
	b->ran = 0;
	if (b->ncalls == 0)
		return 0;
	size_t table = b->ncalls * PTB_CALL_SIZE;
	if (pti_mem_write(memfd, b->area, b->calls, table, err) < 0 ||
	    (b->data_len && pti_mem_write(memfd, b->area + PTB_MAX_CALLS * PTB_CALL_SIZE, b->data,
					  b->data_len, err) < 0))
		return cv_error_wrap(err, "a batch of syscalls in thread %d", t->tid);
	struct user_regs_struct r = t->regs;
	r.rip = b->code;
	r.rbx = b->area;
	r.r12 = b->area + table;
	r.r13 = b->area;
	/* As for a single injected call: no restart logic on our registers. */
	r.orig_rax = (unsigned long long)-1;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
		return cv_errf(err, errno, "setting the registers of thread %d", t->tid);
	if (pti_resume(PTRACE_CONT, t->tid, 0) < 0)
		return cv_errf(err, errno, "ptrace cont of thread %d", t->tid);
	if (wait_trap(t, b, &r, err) < 0)
		return -1;
	if (r.rbx < b->area || r.rbx > b->area + table || (r.rbx - b->area) % PTB_CALL_SIZE)
		return cv_errf(err, 0, "thread %d: a batch of syscalls ended at 0x%llx, not an entry",
			       t->tid, r.rbx);
	size_t at = (size_t)((r.rbx - b->area) / PTB_CALL_SIZE);
	/* The results, the failing one's included. */
	size_t got = at < b->ncalls ? at + 1 : at;
	if (pti_mem_read(memfd, b->area, b->calls, got * PTB_CALL_SIZE, err) < 0)
		return cv_error_wrap(err, "a batch of syscalls in thread %d: its results", t->tid);
	b->ran = at;
	if (at == b->ncalls)
		return 0;
	int64_t ret = b->calls[at].ret;
	if (ret >= 0 || ret < -4095)
		return cv_errf(err, 0, "thread %d: a batch of syscalls stopped at call %zu (%s) with "
				       "result %lld, not an error", t->tid, at + 1, label(b, at),
			       (long long)ret);
	return cv_errf(err, (int)-ret, "%s", label(b, at));
}

#pragma once
/* Driving a ptrace-stopped thread: running syscalls inside it (no parasite
 * blob, only a `syscall` instruction found in or written into its memory),
 * and reading and writing its memory through /proc/PID/mem. The
 * checkpoint and restore helpers are the only users; both run in a
 * short-lived process of their own, never in the reactor, because every
 * call here waits synchronously for the tracee (docs/DESIGN.md,
 * "Checkpoint and restore"). x86_64 only. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "core/err.h"

/* A thread we hold in a ptrace stop. `regs` are the registers it had when
 * we took it; pti_syscall preserves them (it saves and sets them back). */
struct pti {
	pid_t tid;
	uint64_t sys_ip; /* address of a `0f 05` (syscall) in its memory */
	struct user_regs_struct regs;
	/* sys_ip is followed by an int3 (cc): a call is then one stop (the
	 * trap after the syscall) instead of two syscall stops. */
	int int3_after;
};

/* PTRACE_SEIZE (with TRACESYSGOOD and `opts`) + PTRACE_INTERRUPT, then
 * waits for the stop and fills t->regs. sys_ip is left 0. */
int pti_seize(struct pti *t, pid_t tid, unsigned opts, struct cv_error *err);

/* Takes a child that called PTRACE_TRACEME and is now in its post-exec
 * SIGTRAP stop (already waited for by the caller or not: we wait here). */
int pti_attach_traceme(struct pti *t, pid_t pid, struct cv_error *err);

/* Finds a `syscall` instruction in an executable mapping of the process
 * (its text or the vDSO) and stores its address in t->sys_ip. */
int pti_find_syscall(struct pti *t, struct cv_error *err);

/* Runs syscall `nr` with up to six arguments in the stopped thread and
 * stores its raw return value (a negative errno on failure) in *ret.
 * Returns -1 (err set) only if the tracee could not be driven (it died,
 * it left the syscall path). The thread's registers are left as our
 * injected syscall left them; pti_restore_regs puts t->regs back. */
int pti_syscall(struct pti *t, long nr, const uint64_t args[6], int64_t *ret, struct cv_error *err);

/* Shorthand for calls with fewer arguments. */
int pti_sys(struct pti *t, int64_t *ret, struct cv_error *err, long nr, uint64_t a1, uint64_t a2,
	    uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);

int pti_restore_regs(struct pti *t, struct cv_error *err);

/* Reads/writes len bytes at addr through memfd (an open /proc/PID/mem).
 * /proc/PID/mem writes ignore page protections (FOLL_FORCE). */
int pti_mem_read(int memfd, uint64_t addr, void *buf, size_t len, struct cv_error *err);
int pti_mem_write(int memfd, uint64_t addr, const void *buf, size_t len, struct cv_error *err);

/* Waits for the next stop of tid (__WALL); returns the wait status, or -1
 * with err set if the wait failed or tid exited. */
int pti_wait(pid_t tid, int *status, struct cv_error *err);

/* PTRACE_CONT or PTRACE_SYSCALL (request) with signal sig, counted: every
 * resume of a tracee is a round trip through the scheduler (~50 us here),
 * so restore's cost is told in resumes (docs/DESIGN.md, "Checkpoint and
 * restore"). Returns -1 with errno set, as ptrace does. */
long pti_resume(int request, pid_t tid, int sig);
/* How many resumes this process has made since it started. */
unsigned long pti_resume_count(void);

/* A page in the stopped process for injected calls to write their answers
 * into (sigaction, getitimer, ...), and its /proc/PID/mem open to read
 * them back. */
struct pti_scratch {
	uint64_t addr;
	int memfd;
};

/* Maps the page by a call injected in t (sys_ip found) of process pid.
 * On failure t's registers are already put back. */
int pti_scratch_open(struct pti *t, pid_t pid, struct pti_scratch *s, struct cv_error *err);

/* Closes the fd, unmaps the page and puts t's registers back. Returns rc
 * (the caller's result so far), or -1 if rc was 0 and the clean-up failed. */
int pti_scratch_close(struct pti *t, struct pti_scratch *s, int rc, struct cv_error *err);

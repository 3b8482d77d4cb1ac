#pragma once
/* Per-process and per-thread state beyond memory, registers and fds that a
 * checkpoint saves and a restore applies: credentials, capabilities,
 * securebits, no_new_privs and the parent-death signal of each thread;
 * rlimits, personality, itimers and dumpable of the process; the pending
 * signals of each thread and of the process. kernel/ckpt_procstate.c
 * captures them (from /proc and syscalls injected into the
 * stopped threads), kernel/restore_procstate.c applies them last, never
 * beyond what the container's own init was given by its bundle
 * (docs/DESIGN.md, "Checkpoint and restore"). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

#define CKPT_MAX_GROUPS 128  /* supplementary groups per thread */
#define CKPT_MAX_SIGQ 256    /* queued signals per queue (a thread's, the process's) */
#define CKPT_SIGINFO_SIZE 128 /* sizeof(siginfo_t) on x86_64 */
#define CKPT_NRLIMITS 16     /* RLIM_NLIMITS */
#define CKPT_NITIMERS 3      /* ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF */
#define CKPT_SECUREBITS_MAX 0xfff /* every securebit and its lock this kernel knows */

/* Signals waiting in one queue, as PTRACE_PEEKSIGINFO gives them: n
 * siginfo_t of CKPT_SIGINFO_SIZE bytes each (owned, malloc'd). */
struct ckpt_sigq {
	unsigned char *info;
	size_t n;
};

/* One thread's credentials. known is false for a state file from before
 * they were saved: the thread then keeps what the bundle gave. */
struct ckpt_creds {
	bool known;
	uint32_t uid[4], gid[4]; /* real, effective, saved, filesystem: as the container sees them */
	uint32_t groups[CKPT_MAX_GROUPS];
	size_t ngroups;
	uint64_t cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb;
	uint32_t securebits;
	int no_new_privs;
	int pdeathsig;
};

struct ckpt_rlimit {
	uint64_t cur, max; /* RLIM_INFINITY is ~0 */
};

/* struct itimerval, field for field. */
struct ckpt_itimer {
	int64_t interval_sec, interval_usec, value_sec, value_usec;
};

/* The process-wide part. known: as in struct ckpt_creds. */
struct ckpt_pstate {
	bool known;
	struct ckpt_rlimit rlim[CKPT_NRLIMITS];
	uint32_t personality;
	struct ckpt_itimer itimer[CKPT_NITIMERS];
	int dumpable; /* 0, 1 or 2 (SUID_DUMP_ROOT) */
	struct ckpt_sigq shared; /* the process-wide pending queue */
};

struct ckpt_proc;
struct oci_spec;
struct rst;

/* The number of seccomp filters the container's init will have when it
 * runs its first instruction of the container's code: what it has now,
 * stopped before its release (kernel/child_init.c), plus the spec's
 * filter it loads after the release under no_new_privs. -1 if unknown.
 * Every process of the container starts with these; one with more
 * installed a filter of its own, which a checkpoint refuses. */
int ckpt_seccomp_base(pid_t init, const struct oci_spec *spec);

/* The rlimits of pid, from /proc/PID/limits. */
int ckpt_read_limits(pid_t pid, struct ckpt_rlimit out[CKPT_NRLIMITS], struct cv_error *err);

/* Captures p's process state into p->ps and each thread's creds and queue
 * (all threads ptrace-stopped; p->seccomp_base set). Refuses, naming the
 * process and the kind, what restore cannot bring back: a POSIX timer, a
 * seccomp filter the process installed itself, strict seccomp, a pending
 * SIGKILL or SIGSTOP. Leaves no mapping behind: run it before the
 * memory is captured. */
int ckpt_procstate_capture(struct ckpt_proc *p, struct cv_error *err);

/* What the container's init had from its bundle, against which a state
 * file's claims are checked (read from the process being rebuilt before
 * anything of it is changed). */
struct pst_bounds {
	uint64_t cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb;
	int no_new_privs;
	struct ckpt_rlimit rlim[CKPT_NRLIMITS];
};

/* Refuses a capability, a hard rlimit or a cleared no_new_privs in p
 * beyond b, naming it ("process 7: capability CAP_SYS_ADMIN is not in the
 * container's bounding set"). */
int pst_check_bounds(const struct ckpt_proc *p, const struct pst_bounds *b, struct cv_error *err);

/* Applies p's process state to the process being rebuilt (r, with every
 * thread made and its own state set, the trampoline still mapped):
 * pending signals, rlimits, personality, itimers, then each thread's
 * credentials, capabilities, securebits, no_new_privs and pdeathsig, then
 * dumpable, after checking them with pst_check_bounds. */
int rst_procstate_apply(struct rst *r, struct cv_error *err);

/* Frees what the process state of p owns (its queues). */
void ckpt_procstate_free(struct ckpt_proc *p);

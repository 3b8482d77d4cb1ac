/* Capturing a stopped process's state beyond memory, registers and fds
 * (kernel/ckpt_procstate.h).
 *
 * Capabilities, no_new_privs, seccomp and the pending sets come from
 * /proc/PID/task/TID/status; rlimits from /proc/PID/limits; the queued signals
 * from PTRACE_PEEKSIGINFO (each thread's queue, and the shared one).
 * What only the thread can say, or says in its own user namespace (the
 * ids, groups, securebits, pdeathsig; itimers, personality, dumpable of
 * the process), is asked by syscalls injected into the stopped threads,
 * with a scratch page mapped for the answers and unmapped afterwards. */
#include "kernel/ckpt_procstate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/spec.h"
#include "kernel/ckpt_proc.h"
#include "kernel/procfs.h"
#include "kernel/ptrace_inject.h"


int ckpt_seccomp_base(pid_t init, const struct oci_spec *spec)
{
	char path[64], status[4096];
	struct cv_error err = {0};
	snprintf(path, sizeof(path), "/proc/%d/status", init);
	uint64_t n;
	if (procfs_read_text(path, status, sizeof(status), NULL, &err) < 0 ||
	    procfs_status_field(status, "Seccomp_filters:", 10, &n) < 0 || n > 1024)
		return -1;
	bool late = spec && spec->has_process && spec->process.no_new_privileges &&
		    spec->has_linux && spec->linux_.has_seccomp;
	return (int)n + late;
}

/* A POSIX timer lives in the kernel with its signal target and clock:
 * nothing restore makes again yet. /proc/PID/timers lists them. */
static int refuse_timers(const struct ckpt_proc *p, struct cv_error *err)
{
	char path[64], text[512];
	snprintf(path, sizeof(path), "/proc/%d/timers", p->pid);
	if (procfs_read_text(path, text, sizeof(text), NULL, err) < 0)
		return cv_error_wrap(err, "process %d: cannot tell whether it has POSIX timers",
				     p->pid);
	if (!text[0])
		return 0;
	uint64_t id = 0;
	procfs_status_field(text, "ID:", 10, &id);
	return cv_errf(err, 0,
		       "process %d: POSIX timer %llu is not supported by checkpoint (kind: posix "
		       "timer)",
		       p->pid, (unsigned long long)id);
}

/* Strict mode, or more filters than the container gives every process:
 * a filter of its own, which restore would not install again. */
static int refuse_seccomp(const struct ckpt_proc *p, pid_t tid, const char *status,
			  struct cv_error *err)
{
	uint64_t mode = 0, n = 0;
	procfs_status_field(status, "Seccomp:", 10, &mode);
	procfs_status_field(status, "Seccomp_filters:", 10, &n);
	if (mode == 1)
		return cv_errf(err, 0,
			       "process %d thread %d: strict seccomp mode is not supported by checkpoint "
			       "(kind: seccomp strict)",
			       p->pid, tid);
	if (p->seccomp_base < 0)
		return cv_errf(err, 0,
			       "process %d thread %d: cannot tell its own seccomp filters from the "
			       "container's (the init's count is unknown)",
			       p->pid, tid);
	if (n > (uint64_t)p->seccomp_base)
		return cv_errf(err, 0,
			       "process %d thread %d: a seccomp filter it installed itself (%llu filters, "
			       "the container gives %d) is not supported by checkpoint (kind: seccomp "
			       "filter)",
			       p->pid, tid, (unsigned long long)n, p->seccomp_base);
	return 0;
}

/* One pending queue: the queued siginfos, plus one made up for a pending
 * signal the kernel could not queue a siginfo for (the queue was over
 * RLIMIT_SIGPENDING): SI_KERNEL, as the kernel itself reports those. */
static int capture_queue(const struct ckpt_proc *p, pid_t tid, bool shared, uint64_t pending,
			 struct ckpt_sigq *q, struct cv_error *err)
{
	const char *which = shared ? "process-wide" : "thread";
	if (pending & ((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))))
		return cv_errf(err, 0,
			       "process %d thread %d: a pending %s is not supported by checkpoint (kind: "
			       "pending %s signal)",
			       p->pid, tid, pending & (1ULL << (SIGKILL - 1)) ? "SIGKILL" : "SIGSTOP",
			       which);
	size_t cap = CKPT_MAX_SIGQ + 1;
	unsigned char *buf = calloc(cap + 64, CKPT_SIGINFO_SIZE);
	if (!buf)
		return cv_errf(err, ENOMEM, "process %d: pending signals", p->pid);
	struct __ptrace_peeksiginfo_args a = {.off = 0,
					      .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
					      .nr = (int32_t)cap};
	long got = ptrace(PTRACE_PEEKSIGINFO, tid, &a, buf);
	if (got < 0) {
		free(buf);
		return cv_errf(err, errno, "process %d thread %d: reading its %s pending signals",
			       p->pid, tid, which);
	}
	size_t n = (size_t)got;
	uint64_t seen = 0;
	for (size_t i = 0; i < n; i++) {
		siginfo_t *si = (siginfo_t *)(buf + i * CKPT_SIGINFO_SIZE);
		if (si->si_signo >= 1 && si->si_signo <= 64)
			seen |= 1ULL << (si->si_signo - 1);
	}
	for (int sig = 1; sig <= 64; sig++) {
		if (!(pending & ~seen & (1ULL << (sig - 1))))
			continue;
		siginfo_t *si = (siginfo_t *)(buf + n++ * CKPT_SIGINFO_SIZE);
		memset(si, 0, CKPT_SIGINFO_SIZE);
		si->si_signo = sig;
		si->si_code = SI_KERNEL;
	}
	if (n > CKPT_MAX_SIGQ) {
		free(buf);
		return cv_errf(err, 0,
			       "process %d thread %d: more than %d %s pending signals are not supported "
			       "by checkpoint (kind: pending signals)",
			       p->pid, tid, CKPT_MAX_SIGQ, which);
	}
	q->info = buf;
	q->n = n;
	return 0;
}

/* What /proc says of one thread. */
static int capture_thread_proc(struct ckpt_proc *p, struct ckpt_thread *ct, struct cv_error *err)
{
	char path[96], status[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", p->pid, ct->tid);
	if (procfs_read_text(path, status, sizeof(status), NULL, err) < 0 ||
	    refuse_seccomp(p, ct->tid, status, err) < 0)
		return -1;
	struct ckpt_creds *c = &ct->creds;
	uint64_t nnp = 0, pnd = 0, shd = 0;
	if (procfs_status_field(status, "CapInh:", 16, &c->cap_inh) < 0 ||
	    procfs_status_field(status, "CapPrm:", 16, &c->cap_prm) < 0 ||
	    procfs_status_field(status, "CapEff:", 16, &c->cap_eff) < 0 ||
	    procfs_status_field(status, "CapBnd:", 16, &c->cap_bnd) < 0 ||
	    procfs_status_field(status, "CapAmb:", 16, &c->cap_amb) < 0 ||
	    procfs_status_field(status, "NoNewPrivs:", 10, &nnp) < 0 ||
	    procfs_status_field(status, "SigPnd:", 16, &pnd) < 0 ||
	    procfs_status_field(status, "ShdPnd:", 16, &shd) < 0)
		return cv_errf(err, 0, "process %d thread %d: unreadable status", p->pid, ct->tid);
	c->no_new_privs = nnp != 0;
	if (capture_queue(p, ct->tid, false, pnd, &ct->sigq, err) < 0)
		return -1;
	if (ct == &p->threads[0] && capture_queue(p, ct->tid, true, shd, &p->ps.shared, err) < 0)
		return -1;
	return 0;
}

/* The ids and the rest only the thread can tell, by injected calls. */
static int capture_thread_injected(struct ckpt_proc *p, struct pti *t, struct ckpt_creds *c,
				   int memfd, uint64_t scratch, struct cv_error *err)
{
	int64_t r[8];
	uint32_t ids[6];
	int32_t pdeath = 0;
	if (pti_sys(t, &r[0], err, SYS_getresuid, scratch, scratch + 4, scratch + 8, 0, 0, 0) < 0 ||
	    pti_sys(t, &r[1], err, SYS_getresgid, scratch + 12, scratch + 16, scratch + 20, 0, 0,
		    0) < 0 ||
	    pti_sys(t, &r[2], err, SYS_setfsuid, (uint64_t)-1, 0, 0, 0, 0, 0) < 0 ||
	    pti_sys(t, &r[3], err, SYS_setfsgid, (uint64_t)-1, 0, 0, 0, 0, 0) < 0 ||
	    pti_sys(t, &r[4], err, SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0) < 0 ||
	    pti_sys(t, &r[5], err, SYS_prctl, PR_GET_PDEATHSIG, scratch + 24, 0, 0, 0, 0) < 0 ||
	    pti_sys(t, &r[6], err, SYS_getgroups, 0, 0, 0, 0, 0, 0) < 0)
		return cv_error_wrap(err, "process %d thread %d: credentials", p->pid, t->tid);
	/* r[2] and r[3] are ids, which may look negative. */
	for (int i = 0; i < 7; i++)
		if (i != 2 && i != 3 && r[i] < 0 && r[i] > -4096)
			return cv_errf(err, (int)-r[i], "process %d thread %d: credentials (call %d)",
				       p->pid, t->tid, i);
	if (r[6] > CKPT_MAX_GROUPS)
		return cv_errf(err, 0,
			       "process %d thread %d: %lld supplementary groups, more than the %d "
			       "checkpoint supports (kind: groups)",
			       p->pid, t->tid, (long long)r[6], CKPT_MAX_GROUPS);
	if (pti_mem_read(memfd, scratch, ids, sizeof(ids), err) < 0 ||
	    pti_mem_read(memfd, scratch + 24, &pdeath, sizeof(pdeath), err) < 0)
		return -1;
	if (r[6] > 0 &&
	    (pti_sys(t, &r[7], err, SYS_getgroups, (uint64_t)r[6], scratch + 32, 0, 0, 0, 0) < 0 ||
	     r[7] != r[6] ||
	     pti_mem_read(memfd, scratch + 32, c->groups, (size_t)r[6] * 4, err) < 0))
		return cv_errf(err, 0, "process %d thread %d: its groups changed while stopped",
			       p->pid, t->tid);
	c->uid[0] = ids[0], c->uid[1] = ids[1], c->uid[2] = ids[2], c->uid[3] = (uint32_t)r[2];
	c->gid[0] = ids[3], c->gid[1] = ids[4], c->gid[2] = ids[5], c->gid[3] = (uint32_t)r[3];
	c->ngroups = (size_t)r[6];
	c->securebits = (uint32_t)r[4];
	c->pdeathsig = pdeath;
	c->known = true;
	return 0;
}

static int capture_process_injected(struct ckpt_proc *p, struct pti *t, int memfd,
				    uint64_t scratch, struct cv_error *err)
{
	int64_t r;
	if (pti_sys(t, &r, err, SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0) < 0)
		return -1;
	p->ps.dumpable = (int)r;
	if (pti_sys(t, &r, err, SYS_personality, 0xffffffffUL, 0, 0, 0, 0, 0) < 0)
		return -1;
	p->ps.personality = (uint32_t)r;
	for (int k = 0; k < CKPT_NITIMERS; k++) {
		if (pti_sys(t, &r, err, SYS_getitimer, (uint64_t)k, scratch, 0, 0, 0, 0) < 0)
			return -1;
		if (r < 0)
			return cv_errf(err, (int)-r, "process %d: getitimer %d", p->pid, k);
		if (pti_mem_read(memfd, scratch, &p->ps.itimer[k], sizeof(p->ps.itimer[k]), err) < 0)
			return -1;
	}
	return 0;
}

static int capture_injected(struct ckpt_proc *p, struct cv_error *err)
{
	struct pti t = {.tid = p->threads[0].tid, .regs = p->threads[0].regs};
	if (pti_find_syscall(&t, err) < 0)
		return -1;
	struct pti_scratch sc;
	if (pti_scratch_open(&t, p->pid, &sc, err) < 0)
		return -1;
	int rc = capture_process_injected(p, &t, sc.memfd, sc.addr, err);
	for (size_t i = 0; rc == 0 && i < p->nthreads; i++) {
		struct pti ti = {.tid = p->threads[i].tid, .regs = p->threads[i].regs,
				 .sys_ip = t.sys_ip};
		struct pti *use = i ? &ti : &t;
		rc = capture_thread_injected(p, use, &p->threads[i].creds, sc.memfd, sc.addr, err);
		if (i && pti_restore_regs(&ti, err) < 0)
			rc = -1;
	}
	return pti_scratch_close(&t, &sc, rc, err);
}

/* /proc/PID/limits, one line per resource in their numeric order, each
 * name padded to 25 columns, then soft and hard ("unlimited" or a
 * number). Read there rather than with prlimit, which a process of
 * other ids may refuse even to root without CAP_SYS_RESOURCE. */
int ckpt_read_limits(pid_t pid, struct ckpt_rlimit out[CKPT_NRLIMITS], struct cv_error *err)
{
	char path[64], text[4096];
	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	if (procfs_read_text(path, text, sizeof(text), NULL, err) < 0)
		return -1;
	char *line = strchr(text, '\n'); /* past the heading */
	for (int k = 0; k < CKPT_NRLIMITS; k++) {
		if (!line || strlen(line + 1) < 26)
			return cv_errf(err, 0, "%s: no line for rlimit %d", path, k);
		line++;
		char *next = strchr(line, '\n');
		uint64_t v[2];
		char *s = line + 26;
		for (int j = 0; j < 2; j++) {
			while (*s == ' ')
				s++;
			char *end;
			if (!strncmp(s, "unlimited", 9)) {
				v[j] = (uint64_t)RLIM_INFINITY;
				end = s + 9;
			} else {
				errno = 0;
				v[j] = strtoull(s, &end, 10);
				if (end == s || errno)
					return cv_errf(err, 0, "%s: unreadable rlimit %d", path, k);
			}
			s = end;
		}
		out[k] = (struct ckpt_rlimit){v[0], v[1]};
		line = next;
	}
	return 0;
}

int ckpt_procstate_capture(struct ckpt_proc *p, struct cv_error *err)
{
	if (refuse_timers(p, err) < 0)
		return -1;
	for (size_t i = 0; i < p->nthreads; i++)
		if (capture_thread_proc(p, &p->threads[i], err) < 0)
			return -1;
	if (ckpt_read_limits(p->pid, p->ps.rlim, err) < 0 || capture_injected(p, err) < 0)
		return -1;
	p->ps.known = true;
	return 0;
}

void ckpt_procstate_free(struct ckpt_proc *p)
{
	for (size_t i = 0; p->threads && i < p->nthreads; i++) {
		free(p->threads[i].sigq.info);
		p->threads[i].sigq = (struct ckpt_sigq){0};
	}
	free(p->ps.shared.info);
	p->ps.shared = (struct ckpt_sigq){0};
}

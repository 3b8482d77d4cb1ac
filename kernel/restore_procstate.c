/* Applying a process's saved state beyond memory, registers and fds
 * (kernel/ckpt_procstate.h) to the process being rebuilt.
 *
 * It runs last, just before the trampoline goes and the final registers
 * are set: the pending signals are queued again first (by the process
 * itself, so any si_code is accepted), then rlimits, personality and
 * itimers, then each thread's credentials, capabilities, securebits and
 * no_new_privs, then dumpable (a credential change resets it). The
 * process is the container's init or forked from it before anything was
 * rebuilt, so what it holds now is what the bundle gave: nothing in the
 * state file may go beyond it (pst_check_bounds), and every change is a
 * syscall the process makes with its own privileges, so the kernel checks
 * it once more. Every signal stays blocked while we inject: a pending one
 * would otherwise be delivered between our calls. */
#include "kernel/ckpt_procstate.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel/caps.h"
#include "kernel/ckpt_proc.h"
#include "kernel/procfs.h"
#include "kernel/restore_internal.h"

/* Every lock bit up to CKPT_SECUREBITS_MAX (the odd ones; the installed
 * headers predate the newest). */
#define SECUREBITS_LOCKS 0xaaaU

/* In their numeric order, as /proc/PID/limits lists them. */
static const char *const rlimit_names[CKPT_NRLIMITS] = {
	"RLIMIT_CPU",	  "RLIMIT_FSIZE",      "RLIMIT_DATA",	  "RLIMIT_STACK",
	"RLIMIT_CORE",	  "RLIMIT_RSS",	       "RLIMIT_NPROC",	  "RLIMIT_NOFILE",
	"RLIMIT_MEMLOCK", "RLIMIT_AS",	       "RLIMIT_LOCKS",	  "RLIMIT_SIGPENDING",
	"RLIMIT_MSGQUEUE", "RLIMIT_NICE",      "RLIMIT_RTPRIO",	  "RLIMIT_RTTIME",
};

/* The lowest capability in `have` that `allowed` lacks, or -1. */
static int first_extra(uint64_t have, uint64_t allowed)
{
	uint64_t extra = have & ~allowed;
	return extra ? __builtin_ctzll(extra) : -1;
}

static const char *cap_label(int cap, char *buf, size_t n)
{
	const char *s = caps_name(cap);
	if (s)
		return s;
	snprintf(buf, n, "capability %d", cap);
	return buf;
}

static const char *limit_text(uint64_t v, char *buf, size_t n)
{
	if (v == (uint64_t)RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, n, "%llu", (unsigned long long)v);
	return buf;
}

int pst_check_bounds(const struct ckpt_proc *p, const struct pst_bounds *b, struct cv_error *err)
{
	char lb[32];
	/* With CAP_SETPCAP the kernel lets inheritable take any of the
	 * bounding set, without it only what is inheritable or permitted. */
	uint64_t inh_ok = b->cap_inh | ((b->cap_eff & (1ULL << CAP_SETPCAP)) ? b->cap_bnd : b->cap_prm);
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct ckpt_creds *c = &p->threads[i].creds;
		if (!c->known)
			continue;
		pid_t tid = p->threads[i].tid;
		int cap = first_extra(c->cap_eff | c->cap_prm | c->cap_inh | c->cap_bnd | c->cap_amb,
				      b->cap_bnd);
		if (cap >= 0)
			return cv_errf(err, 0,
				       "process %d: capability %s is not in the container's bounding set "
				       "(thread %d)",
				       p->pid, cap_label(cap, lb, sizeof(lb)), tid);
		if ((cap = first_extra(c->cap_eff | c->cap_prm | c->cap_amb, b->cap_prm)) >= 0)
			return cv_errf(err, 0,
				       "process %d: capability %s is not in the container's permitted set "
				       "(thread %d)",
				       p->pid, cap_label(cap, lb, sizeof(lb)), tid);
		if ((cap = first_extra(c->cap_inh, inh_ok)) >= 0)
			return cv_errf(err, 0,
				       "process %d: inheritable capability %s is beyond what the "
				       "container's init may give (thread %d)",
				       p->pid, cap_label(cap, lb, sizeof(lb)), tid);
		if (b->no_new_privs && !c->no_new_privs)
			return cv_errf(err, 0,
				       "process %d: no_new_privs is off in the state file but the "
				       "container's init has it on (thread %d)",
				       p->pid, tid);
	}
	if (!p->ps.known)
		return 0;
	for (int k = 0; k < CKPT_NRLIMITS; k++) {
		char had[32], want[32];
		if (p->ps.rlim[k].max > b->rlim[k].max)
			return cv_errf(err, 0, "process %d: rlimit %s hard %s exceeds the container's %s",
				       p->pid, rlimit_names[k],
				       limit_text(p->ps.rlim[k].max, want, sizeof(want)),
				       limit_text(b->rlim[k].max, had, sizeof(had)));
	}
	return 0;
}

/* The capabilities and no_new_privs one thread holds now, from its
 * status (b's limits are left alone). */
static int read_caps(pid_t host_tid, struct pst_bounds *b, struct cv_error *err)
{
	char path[64], status[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", host_tid);
	if (procfs_read_text(path, status, sizeof(status), NULL, err) < 0)
		return -1;
	static const char *const keys[6] = {"CapEff:", "CapPrm:", "CapInh:",
					    "CapBnd:", "CapAmb:", "NoNewPrivs:"};
	uint64_t nnp;
	uint64_t *out[6] = {&b->cap_eff, &b->cap_prm, &b->cap_inh, &b->cap_bnd, &b->cap_amb, &nnp};
	for (int k = 0; k < 6; k++)
		if (procfs_status_field(status, keys[k], k == 5 ? 10 : 16, out[k]) < 0)
			return cv_errf(err, 0, "%s: no %s", path, keys[k]);
	b->no_new_privs = nnp != 0;
	return 0;
}

/* What the bundle gave the container's init: what the process holds
 * now, before any of the saved state is applied. */
static int read_bounds(const struct rst *r, struct pst_bounds *b, struct cv_error *err)
{
	if (read_caps(r->t.tid, b, err) < 0)
		return -1;
	return ckpt_read_limits(r->t.tid, b->rlim, err);
}

/* Runs fn in thread i of the process (0: the main one, r->t), with
 * rst_sys and the scratch area aimed at it. */
typedef int (*thread_fn)(struct rst *r, size_t i, struct cv_error *err);

static int in_thread(struct rst *r, size_t i, thread_fn fn, struct cv_error *err)
{
	if (i == 0)
		return fn(r, 0, err);
	struct pti t = {.tid = r->tids[i], .sys_ip = r->tramp, .int3_after = 1};
	if (ptrace(PTRACE_GETREGS, t.tid, 0, &t.regs) < 0)
		return cv_errf(err, errno, "restoring thread %d: registers", r->p->threads[i].tid);
	struct pti save = r->t;
	r->t = t;
	int rc = fn(r, i, err);
	r->t = save;
	return rc;
}

static uint64_t scratch(const struct rst *r, size_t off)
{
	return r->tramp + SCRATCH_OFF + off;
}

static int read_scratch(struct rst *r, size_t off, void *buf, size_t len, struct cv_error *err)
{
	return pti_mem_read(r->memfd, scratch(r, off), buf, len, err);
}

/* Queues one saved siginfo again, from the thread itself. */
static int queue_one(struct rst *r, const unsigned char *info, bool shared, struct cv_error *err)
{
	int32_t sig;
	memcpy(&sig, info, sizeof(sig));
	char what[64];
	snprintf(what, sizeof(what), "queueing signal %d again%s", (int)sig,
		 shared ? " (process-wide)" : "");
	int64_t tgid, tid;
	if (rst_put_scratch(r, info, CKPT_SIGINFO_SIZE, err) < 0 ||
	    rst_sys(r, &tgid, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, err) < 0 ||
	    rst_sys(r, &tid, "gettid", SYS_gettid, 0, 0, 0, 0, 0, 0, err) < 0)
		return -1;
	if (shared)
		return rst_sys(r, NULL, what, SYS_rt_sigqueueinfo, (uint64_t)tgid, (uint64_t)sig,
			       scratch(r, 0), 0, 0, 0, err);
	return rst_sys(r, NULL, what, SYS_rt_tgsigqueueinfo, (uint64_t)tgid, (uint64_t)tid,
		       (uint64_t)sig, scratch(r, 0), 0, 0, err);
}

static int queue_thread(struct rst *r, size_t i, struct cv_error *err)
{
	const struct ckpt_thread *ct = &r->p->threads[i];
	for (size_t k = 0; k < ct->sigq.n; k++)
		if (queue_one(r, ct->sigq.info + k * CKPT_SIGINFO_SIZE, false, err) < 0)
			return -1;
	if (i == 0)
		for (size_t k = 0; k < r->p->ps.shared.n; k++)
			if (queue_one(r, r->p->ps.shared.info + k * CKPT_SIGINFO_SIZE, true, err) <
			    0)
				return -1;
	return 0;
}

static int apply_process(struct rst *r, struct cv_error *err)
{
	const struct ckpt_pstate *ps = &r->p->ps;
	struct ckpt_rlimit now[CKPT_NRLIMITS];
	if (ckpt_read_limits(r->t.tid, now, err) < 0)
		return -1;
	for (int k = 0; k < CKPT_NRLIMITS; k++) {
		if (now[k].cur == ps->rlim[k].cur && now[k].max == ps->rlim[k].max)
			continue;
		uint64_t lim[2] = {ps->rlim[k].cur, ps->rlim[k].max};
		if (rst_put_scratch(r, lim, sizeof(lim), err) < 0 ||
		    rst_sys(r, NULL, rlimit_names[k], SYS_prlimit64, 0, (uint64_t)k, scratch(r, 0), 0, 0,
			    0, err) < 0)
			return -1;
	}
	int64_t pers;
	if (rst_sys(r, &pers, "personality", SYS_personality, 0xffffffffUL, 0, 0, 0, 0, 0, err) < 0 ||
	    ((uint32_t)pers != ps->personality &&
	     rst_sys(r, NULL, "personality", SYS_personality, ps->personality, 0, 0, 0, 0, 0, err) < 0))
		return -1;
	for (int k = 0; k < CKPT_NITIMERS; k++) {
		const struct ckpt_itimer *it = &ps->itimer[k];
		if (!it->value_sec && !it->value_usec && !it->interval_sec && !it->interval_usec)
			continue;
		char what[32];
		snprintf(what, sizeof(what), "setitimer %d", k);
		if (rst_put_scratch(r, it, sizeof(*it), err) < 0 ||
		    rst_sys(r, NULL, what, SYS_setitimer, (uint64_t)k, scratch(r, 0), 0, 0, 0, 0, err) <
			    0)
			return -1;
	}
	return 0;
}

static int set_caps(struct rst *r, uint64_t eff, uint64_t prm, uint64_t inh, struct cv_error *err)
{
	struct {
		struct __user_cap_header_struct h;
		struct __user_cap_data_struct d[2];
	} b = {.h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0}};
	for (int k = 0; k < 2; k++)
		b.d[k] = (struct __user_cap_data_struct){(uint32_t)(eff >> (32 * k)),
							 (uint32_t)(prm >> (32 * k)),
							 (uint32_t)(inh >> (32 * k))};
	if (rst_put_scratch(r, &b, sizeof(b), err) < 0)
		return -1;
	return rst_sys(r, NULL, "capset", SYS_capset, scratch(r, 0), scratch(r, sizeof(b.h)), 0, 0,
		       0, 0, err);
}

/* The ids as the thread sees them (its user namespace's). */
static int read_ids(struct rst *r, uint32_t uid[4], uint32_t gid[4], uint32_t *sb,
		    struct cv_error *err)
{
	int64_t fsu, fsg, bits;
	uint32_t ids[6];
	/* setfsuid(-1) changes nothing and answers the id, which may look
	 * negative: not through rst_sys, which would take it for an errno. */
	if (rst_sys(r, NULL, "getresuid", SYS_getresuid, scratch(r, 0), scratch(r, 4), scratch(r, 8),
		    0, 0, 0, err) < 0 ||
	    rst_sys(r, NULL, "getresgid", SYS_getresgid, scratch(r, 12), scratch(r, 16),
		    scratch(r, 20), 0, 0, 0, err) < 0 ||
	    read_scratch(r, 0, ids, sizeof(ids), err) < 0 ||
	    pti_sys(&r->t, &fsu, err, SYS_setfsuid, (uint64_t)-1, 0, 0, 0, 0, 0) < 0 ||
	    pti_sys(&r->t, &fsg, err, SYS_setfsgid, (uint64_t)-1, 0, 0, 0, 0, 0) < 0 ||
	    rst_sys(r, &bits, "PR_GET_SECUREBITS", SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0, err) <
		    0)
		return -1;
	uid[0] = ids[0], uid[1] = ids[1], uid[2] = ids[2], uid[3] = (uint32_t)fsu;
	gid[0] = ids[3], gid[1] = ids[4], gid[2] = ids[5], gid[3] = (uint32_t)fsg;
	*sb = (uint32_t)bits;
	return 0;
}

static int groups_differ(struct rst *r, const struct ckpt_creds *c, bool *differ,
			 struct cv_error *err)
{
	int64_t n;
	if (rst_sys(r, &n, "getgroups", SYS_getgroups, 0, 0, 0, 0, 0, 0, err) < 0)
		return -1;
	*differ = (size_t)n != c->ngroups;
	if (*differ || n == 0)
		return 0;
	if (n > CKPT_MAX_GROUPS) {
		*differ = true;
		return 0;
	}
	uint32_t now[CKPT_MAX_GROUPS];
	if (rst_sys(r, NULL, "getgroups", SYS_getgroups, (uint64_t)n, scratch(r, 0), 0, 0, 0, 0,
		    err) < 0 ||
	    read_scratch(r, 0, now, (size_t)n * 4, err) < 0)
		return -1;
	*differ = memcmp(now, c->groups, (size_t)n * 4) != 0;
	return 0;
}

/* A filesystem id is set by a call that answers the old one: ask again. */
static int set_fsid(struct rst *r, long nr, uint32_t want, const char *what, struct cv_error *err)
{
	int64_t got;
	if (pti_sys(&r->t, &got, err, nr, want, 0, 0, 0, 0, 0) < 0 ||
	    pti_sys(&r->t, &got, err, nr, (uint64_t)-1, 0, 0, 0, 0, 0) < 0)
		return cv_error_wrap(err, "restoring process %d: %s", r->p->pid, what);
	if ((uint32_t)got != want)
		return cv_errf(err, EPERM, "restoring process %d: %s %u", r->p->pid, what, want);
	return 0;
}

/* One thread's credentials, in the order the kernel allows: groups and
 * gids while CAP_SETGID is held, inheritable and bounding while
 * CAP_SETPCAP is, ambient while its bits are permitted, the uids with
 * SECBIT_NO_SETUID_FIXUP so the capabilities survive them, then the
 * saved securebits, the final capability sets and no_new_privs; the
 * parent-death signal after, as a credential change clears it. */
static int apply_creds(struct rst *r, size_t i, struct cv_error *err)
{
	const struct ckpt_creds *c = &r->p->threads[i].creds;
	if (!c->known)
		return 0;
	struct pst_bounds now;
	uint32_t uid[4], gid[4], bits;
	bool gdiff;
	if (read_caps(r->t.tid, &now, err) < 0 || read_ids(r, uid, gid, &bits, err) < 0 ||
	    groups_differ(r, c, &gdiff, err) < 0)
		return -1;
	if (gdiff && (rst_put_scratch(r, c->groups, c->ngroups * 4, err) < 0 ||
		      rst_sys(r, NULL, "setgroups", SYS_setgroups, c->ngroups, scratch(r, 0), 0, 0, 0,
			      0, err) < 0))
		return -1;
	if (memcmp(gid, c->gid, sizeof(gid)) &&
	    (rst_sys(r, NULL, "setresgid", SYS_setresgid, c->gid[0], c->gid[1], c->gid[2], 0, 0, 0,
		     err) < 0 ||
	     set_fsid(r, SYS_setfsgid, c->gid[3], "setfsgid", err) < 0))
		return -1;
	if (c->cap_inh != now.cap_inh && set_caps(r, now.cap_eff, now.cap_prm, c->cap_inh, err) < 0)
		return -1;
	for (int cap = 0; cap < 64; cap++) {
		if (!(now.cap_bnd & ~c->cap_bnd & (1ULL << cap)))
			continue;
		char what[64], lb[32];
		snprintf(what, sizeof(what), "dropping %s from the bounding set",
			 cap_label(cap, lb, sizeof(lb)));
		if (rst_sys(r, NULL, what, SYS_prctl, PR_CAPBSET_DROP, (uint64_t)cap, 0, 0, 0, 0, err) <
		    0)
			return -1;
	}
	if (c->cap_amb != (now.cap_amb & c->cap_inh)) {
		if (rst_sys(r, NULL, "clearing the ambient set", SYS_prctl, PR_CAP_AMBIENT,
			    PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0, err) < 0)
			return -1;
		for (int cap = 0; cap < 64; cap++) {
			if (!(c->cap_amb & (1ULL << cap)))
				continue;
			char what[64], lb[32];
			snprintf(what, sizeof(what), "raising ambient %s",
				 cap_label(cap, lb, sizeof(lb)));
			if (rst_sys(r, NULL, what, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
				    (uint64_t)cap, 0, 0, 0, err) < 0)
				return -1;
		}
	}
	bool uids = memcmp(uid, c->uid, sizeof(uid)) != 0;
	uint32_t during = uids ? (c->securebits & ~SECUREBITS_LOCKS) | SECBIT_NO_SETUID_FIXUP
			       : c->securebits;
	if (during != bits && rst_sys(r, NULL, "PR_SET_SECUREBITS", SYS_prctl, PR_SET_SECUREBITS,
				      during, 0, 0, 0, 0, err) < 0)
		return -1;
	if (uids && (rst_sys(r, NULL, "setresuid", SYS_setresuid, c->uid[0], c->uid[1], c->uid[2], 0,
			     0, 0, err) < 0 ||
		     set_fsid(r, SYS_setfsuid, c->uid[3], "setfsuid", err) < 0))
		return -1;
	if (during != c->securebits && rst_sys(r, NULL, "PR_SET_SECUREBITS", SYS_prctl,
					       PR_SET_SECUREBITS, c->securebits, 0, 0, 0, 0, err) < 0)
		return -1;
	if (set_caps(r, c->cap_eff, c->cap_prm, c->cap_inh, err) < 0)
		return -1;
	if (c->no_new_privs && !now.no_new_privs &&
	    rst_sys(r, NULL, "PR_SET_NO_NEW_PRIVS", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0,
		    err) < 0)
		return -1;
	return rst_sys(r, NULL, "PR_SET_PDEATHSIG", SYS_prctl, PR_SET_PDEATHSIG,
		       (uint64_t)c->pdeathsig, 0, 0, 0, 0, err);
}

/* Every thread's mask: all blocked (mask_all) or as saved. */
static int set_masks(struct rst *r, bool mask_all, struct cv_error *err)
{
	for (size_t i = 0; i < r->p->nthreads; i++) {
		uint64_t m = mask_all ? ~0ULL : r->p->threads[i].sigmask;
		if (ptrace(PTRACE_SETSIGMASK, r->tids[i], (void *)sizeof(m), &m) < 0)
			return cv_errf(err, errno, "restoring thread %d: signal mask",
				       r->p->threads[i].tid);
	}
	return 0;
}

static int apply_all(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	for (size_t i = 0; i < p->nthreads; i++)
		if (in_thread(r, i, queue_thread, err) < 0)
			return -1;
	if (p->ps.known && apply_process(r, err) < 0)
		return -1;
	/* Credentials are each thread's own: each sets its own. */
	for (size_t i = 0; i < p->nthreads; i++)
		if (in_thread(r, i, apply_creds, err) < 0)
			return -1;
	if (!p->ps.known)
		return 0;
	int64_t d;
	if (p->ps.dumpable == 2) {
		/* SUID_DUMP_ROOT comes only from fs.suid_dumpable on a
		 * credential change; prctl cannot set it. */
		if (rst_sys(r, &d, "PR_GET_DUMPABLE", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0, err) < 0)
			return -1;
		if (d != 2)
			return cv_errf(err, 0,
				       "restoring process %d: dumpable 2 (suid_dumpable) cannot be set "
				       "(it is %lld here)",
				       p->pid, (long long)d);
		return 0;
	}
	return rst_sys(r, NULL, "PR_SET_DUMPABLE", SYS_prctl, PR_SET_DUMPABLE,
		       (uint64_t)p->ps.dumpable, 0, 0, 0, 0, err);
}

int rst_procstate_apply(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	bool creds = false;
	for (size_t i = 0; i < p->nthreads; i++)
		creds |= p->threads[i].creds.known;
	if (!p->ps.known && !creds)
		return 0; /* a state file from before this state was saved */
	struct pst_bounds b;
	if (read_bounds(r, &b, err) < 0 || pst_check_bounds(p, &b, err) < 0)
		return -1;
	/* The answers of getresuid & co land in the scratch area. */
	if (rst_sys(r, NULL, "making the scratch page writable", SYS_mprotect, r->tramp, RST_PAGE,
		    PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0, err) < 0 ||
	    set_masks(r, true, err) < 0)
		return -1;
	if (apply_all(r, err) < 0)
		return -1;
	if (set_masks(r, false, err) < 0)
		return -1;
	return rst_sys(r, NULL, "sealing the scratch page", SYS_mprotect, r->tramp, RST_PAGE,
		       PROT_READ | PROT_EXEC, 0, 0, 0, err);
}

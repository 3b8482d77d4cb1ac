/* Captured processes as state-file records and back (kernel/ckpt_image.h).
 * The reader side treats the file as hostile: every field is checked for
 * type, size and range before it is used, a page run must lie inside a
 * mapping of its task, and counts are bounded before anything is
 * allocated. Field names: docs/API.md, "The checkpoint records". */
#include "kernel/ckpt_image.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ptrace_inject.h"

/* --- Writing ------------------------------------------------------------ */

static void pack_bin(msgpack_packer *pk, const char *key, const void *p, size_t n)
{
	mpk_pack_key(pk, key);
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, n ? p : "", n); /* an empty queue's p is NULL */
}

static void pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
	mpk_pack_key(pk, key);
	msgpack_pack_uint64(pk, v);
}

static void pack_s(msgpack_packer *pk, const char *key, const char *s)
{
	mpk_pack_key(pk, key);
	mpk_pack_str(pk, s);
}

static const char *const special_name[] = {
	[CKPT_VMA_STACK] = "[stack]",	   [CKPT_VMA_VDSO] = "[vdso]",
	[CKPT_VMA_VVAR] = "[vvar]",	   [CKPT_VMA_VCLOCK] = "[vvar_vclock]",
	[CKPT_VMA_VSYSCALL] = "[vsyscall]",
};

/* One run's contents: held, or read from the stopped process through a
 * reused buffer (first-touch faults in a fresh buffer per run would cost
 * more than the copy). */
static int put_run(struct sf_writer *w, const struct ckpt_proc *p, const struct ckpt_pages *r,
		   struct cv_error *err)
{
	if (r->data)
		return sf_write_data(w, r->data, r->len, err);
	static unsigned char *buf;
	enum { BUF = 4 << 20 };
	if (!buf && !(buf = malloc(BUF)))
		return cv_errf(err, ENOMEM, "page buffer");
	if (p->mem_fd <= 0)
		return cv_errf(err, EBADF, "process %d: its memory is not open", p->pid);
	for (size_t off = 0; off < r->len;) {
		size_t n = r->len - off < BUF ? r->len - off : BUF;
		if (pti_mem_read(p->mem_fd, r->addr + off, buf, n, err) < 0)
			return cv_error_wrap(err, "process %d", p->pid);
		if (sf_write_data(w, buf, n, err) < 0)
			return -1;
		off += n;
	}
	return 0;
}

/* The process-wide state of kernel/ckpt_procstate.h (5 fields). */
static void put_pstate(msgpack_packer *pk, const struct ckpt_pstate *ps)
{
	pack_bin(pk, "rlimits", ps->rlim, sizeof(ps->rlim));
	pack_u64(pk, "personality", ps->personality);
	pack_bin(pk, "itimers", ps->itimer, sizeof(ps->itimer));
	pack_u64(pk, "dumpable", (uint64_t)ps->dumpable);
	pack_bin(pk, "sigqueue", ps->shared.info, ps->shared.n * CKPT_SIGINFO_SIZE);
}

/* A thread's credentials and pending queue (12 fields). */
static void put_creds(msgpack_packer *pk, const struct ckpt_thread *t)
{
	const struct ckpt_creds *c = &t->creds;
	pack_bin(pk, "uids", c->uid, sizeof(c->uid));
	pack_bin(pk, "gids", c->gid, sizeof(c->gid));
	pack_bin(pk, "groups", c->groups, c->ngroups * sizeof(c->groups[0]));
	pack_u64(pk, "cap_eff", c->cap_eff);
	pack_u64(pk, "cap_prm", c->cap_prm);
	pack_u64(pk, "cap_inh", c->cap_inh);
	pack_u64(pk, "cap_bnd", c->cap_bnd);
	pack_u64(pk, "cap_amb", c->cap_amb);
	pack_u64(pk, "securebits", c->securebits);
	pack_u64(pk, "no_new_privs", (uint64_t)c->no_new_privs);
	pack_u64(pk, "pdeathsig", (uint64_t)c->pdeathsig);
	pack_bin(pk, "sigqueue", t->sigq.info, t->sigq.n * CKPT_SIGINFO_SIZE);
}

int ckpt_image_put(struct sf_writer *w, const struct ckpt_proc *p, struct cv_error *err)
{
	msgpack_packer *pk =
		sf_record_begin(w, SF_KIND_TASK, 13 + (p->ps.known ? 5 : 0), 0, err);
	if (!pk)
		return -1;
	/* Ids as the sandbox sees them (its pid namespace), not the host's. */
	pack_u64(pk, "pid", (uint64_t)(p->nthreads ? p->threads[0].ns_tid : p->pid));
	pack_u64(pk, "ppid", (uint64_t)p->ns_ppid);
	pack_u64(pk, "sid", (uint64_t)p->ns_sid);
	pack_u64(pk, "pgid", (uint64_t)p->ns_pgid);
	pack_s(pk, "cwd", p->cwd);
	pack_u64(pk, "umask", p->umask);
	pack_bin(pk, "mm", &p->mm, sizeof(p->mm));
	pack_bin(pk, "auxv", p->auxv, p->auxv_words * 8);
	pack_bin(pk, "sigactions", p->sigact, sizeof(p->sigact));
	pack_u64(pk, "sigaltstack_sp", p->sigaltstack_sp);
	pack_u64(pk, "sigaltstack_size", p->sigaltstack_size);
	pack_u64(pk, "sigaltstack_flags", (uint64_t)(uint32_t)p->sigaltstack_flags);
	pack_u64(pk, "threads", p->nthreads);
	if (p->ps.known)
		put_pstate(pk, &p->ps);
	if (sf_record_end(w, err) < 0)
		return -1;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct ckpt_thread *t = &p->threads[i];
		if (!(pk = sf_record_begin(w, SF_KIND_THREAD, 11 + (t->creds.known ? 12 : 0), 0, err)))
			return -1;
		pack_u64(pk, "tid", (uint64_t)t->ns_tid);
		pack_bin(pk, "regs", &t->regs, sizeof(t->regs));
		pack_bin(pk, "xstate", t->xstate, t->xstate_len);
		pack_u64(pk, "sigmask", t->sigmask);
		pack_u64(pk, "rseq", t->rseq_ptr);
		pack_u64(pk, "rseq_len", t->rseq_len);
		pack_u64(pk, "rseq_sig", t->rseq_sig);
		pack_u64(pk, "robust_list", t->robust_head);
		pack_u64(pk, "robust_len", t->robust_len);
		pack_u64(pk, "clear_tid", t->clear_tid);
		pack_s(pk, "comm", t->comm);
		if (t->creds.known)
			put_creds(pk, t);
		if (sf_record_end(w, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < p->nvmas; i++) {
		const struct ckpt_vma *v = &p->vmas[i];
		struct sf_mapping m = {.start = v->start, .end = v->end, .prot = (uint32_t)v->prot,
				       .offset = v->pgoff, .flags = MAP_PRIVATE};
		if (v->kind == CKPT_VMA_FILE)
			m.path = v->path;
		else if (v->kind == CKPT_VMA_ANON)
			m.flags |= MAP_ANONYMOUS;
		else
			m.path = special_name[v->kind];
		if (sf_put_mapping(w, &m, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < p->npages; i++)
		if (sf_put_pages(w, p->pages[i].addr, p->pages[i].len, err) < 0 ||
		    put_run(w, p, &p->pages[i], err) < 0)
			return -1;
	for (size_t i = 0; i < p->nfds; i++) {
		const struct ckpt_fd *f = &p->fds[i];
		if (!(pk = sf_record_begin(w, SF_KIND_FD, 8, 0, err)))
			return -1;
		pack_u64(pk, "fd", (uint64_t)f->fd);
		pack_s(pk, "type", f->kind == CKPT_FD_FILE	 ? "file"
				   : f->kind == CKPT_FD_PIPE ? "pipe"
							     : "external");
		pack_u64(pk, "src", (uint64_t)(f->kind == CKPT_FD_EXTERNAL ? f->src : 0));
		pack_u64(pk, "pipe", f->kind == CKPT_FD_PIPE ? f->pipe : 0);
		pack_u64(pk, "flags", (uint64_t)(uint32_t)f->flags);
		pack_u64(pk, "cloexec", (uint64_t)f->cloexec);
		pack_u64(pk, "pos", f->pos);
		pack_s(pk, "path", f->path);
		if (sf_record_end(w, err) < 0)
			return -1;
	}
	return 0;
}

int ckpt_image_put_pipe(struct sf_writer *w, const struct ckpt_pipe *cp, struct cv_error *err)
{
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_PIPE, 4, cp->len, err);
	if (!pk)
		return -1;
	pack_u64(pk, "id", cp->ino);
	pack_u64(pk, "size", cp->size);
	pack_u64(pk, "rflags", (uint64_t)(uint32_t)cp->rflags);
	pack_u64(pk, "wflags", (uint64_t)(uint32_t)cp->wflags);
	if (sf_record_end(w, err) < 0)
		return -1;
	return cp->len ? sf_write_data(w, cp->data, cp->len, err) : 0;
}

/* --- Reading ------------------------------------------------------------ */

/* A bin field of exactly `want` bytes (or at most `max` when want is 0). */
static int get_bin(const msgpack_object *rec, const char *key, void *out, size_t want, size_t max,
		   size_t *got, struct cv_error *err)
{
	const msgpack_object *v = mpk_map_get(rec, key);
	if (!v || v->type != MSGPACK_OBJECT_BIN)
		return cv_errf(err, 0, "state file: field \"%s\": expected bin, got %s", key,
			       v ? mpk_type_name(v->type) : "nothing");
	size_t n = v->via.bin.size;
	if (want ? n != want : n > max)
		return cv_errf(err, 0,
			       "state file: field \"%s\" holds %zu bytes, expected %s%zu (a state "
			       "file restores only on the same kernel and architecture)",
			       key, n, want ? "" : "at most ", want ? want : max);
	memcpy(out, v->via.bin.ptr, n);
	if (got)
		*got = n;
	return 0;
}

/* A str field copied NUL-terminated into out (cap bytes); nil → "". */
static int get_str(const msgpack_object *rec, const char *key, char *out, size_t cap, bool nil_ok,
		   struct cv_error *err)
{
	const msgpack_object *v = mpk_map_get(rec, key);
	if (v && v->type == MSGPACK_OBJECT_NIL && nil_ok) {
		out[0] = '\0';
		return 0;
	}
	if (!v || v->type != MSGPACK_OBJECT_STR)
		return cv_errf(err, 0, "state file: field \"%s\": expected string, got %s", key,
			       v ? mpk_type_name(v->type) : "nothing");
	if (v->via.str.size >= cap || memchr(v->via.str.ptr, '\0', v->via.str.size))
		return cv_errf(err, 0, "state file: field \"%s\" is too long or holds a NUL", key);
	memcpy(out, v->via.str.ptr, v->via.str.size);
	out[v->via.str.size] = '\0';
	return 0;
}

static int get_u(const msgpack_object *rec, const char *key, uint64_t max, uint64_t *out,
		 struct cv_error *err)
{
	if (sf_get_u64(rec, key, out, err) < 0)
		return -1;
	if (*out > max)
		return cv_errf(err, 0, "state file: field \"%s\" is %llu, at most %llu allowed", key,
			       (unsigned long long)*out, (unsigned long long)max);
	return 0;
}

/* A uint field a file from before it was added lacks: dflt then. */
static int get_u_opt(const msgpack_object *rec, const char *key, uint64_t max, uint64_t dflt,
		     uint64_t *out, struct cv_error *err)
{
	if (!mpk_map_get(rec, key)) {
		*out = dflt;
		return 0;
	}
	return get_u(rec, key, max, out, err);
}

/* A pending queue: whole siginfos, each of a signal restore may queue
 * (1-64, not SIGKILL or SIGSTOP, which cannot be blocked or queued back). */
static int get_sigq(const msgpack_object *rec, struct ckpt_sigq *q, struct cv_error *err)
{
	const msgpack_object *v = mpk_map_get(rec, "sigqueue");
	if (!v || v->type != MSGPACK_OBJECT_BIN)
		return cv_errf(err, 0, "state file: field \"sigqueue\": expected bin, got %s",
			       v ? mpk_type_name(v->type) : "nothing");
	size_t n = v->via.bin.size;
	if (n % CKPT_SIGINFO_SIZE || n / CKPT_SIGINFO_SIZE > CKPT_MAX_SIGQ)
		return cv_errf(err, 0,
			       "state file: field \"sigqueue\" holds %zu bytes, not at most %d whole "
			       "siginfos of %d bytes",
			       n, CKPT_MAX_SIGQ, CKPT_SIGINFO_SIZE);
	for (size_t off = 0; off < n; off += CKPT_SIGINFO_SIZE) {
		int32_t sig;
		memcpy(&sig, v->via.bin.ptr + off, sizeof(sig));
		if (sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP)
			return cv_errf(err, 0,
				       "state file: field \"sigqueue\": signal %d cannot be queued again",
				       (int)sig);
	}
	if (n && !(q->info = malloc(n)))
		return cv_errf(err, ENOMEM, "state file: pending signals");
	if (n)
		memcpy(q->info, v->via.bin.ptr, n);
	q->n = n / CKPT_SIGINFO_SIZE;
	return 0;
}

/* The process-wide state (optional as a whole: a file from before it
 * was saved has no "rlimits", and the process keeps the bundle's). */
static int get_pstate(const msgpack_object *rec, struct ckpt_pstate *ps, struct cv_error *err)
{
	if (!mpk_map_get(rec, "rlimits"))
		return 0;
	uint64_t pers, dump;
	if (get_bin(rec, "rlimits", ps->rlim, sizeof(ps->rlim), 0, NULL, err) < 0 ||
	    get_u(rec, "personality", UINT32_MAX, &pers, err) < 0 ||
	    get_bin(rec, "itimers", ps->itimer, sizeof(ps->itimer), 0, NULL, err) < 0 ||
	    get_u(rec, "dumpable", 2, &dump, err) < 0)
		return -1;
	for (int k = 0; k < CKPT_NRLIMITS; k++)
		if (ps->rlim[k].cur > ps->rlim[k].max)
			return cv_errf(err, 0, "state file: rlimit %d: soft %llu above hard %llu", k,
				       (unsigned long long)ps->rlim[k].cur,
				       (unsigned long long)ps->rlim[k].max);
	for (int k = 0; k < CKPT_NITIMERS; k++) {
		const struct ckpt_itimer *it = &ps->itimer[k];
		if (it->interval_sec < 0 || it->value_sec < 0 || it->interval_usec < 0 ||
		    it->value_usec < 0 || it->interval_usec > 999999 || it->value_usec > 999999)
			return cv_errf(err, 0, "state file: itimer %d is not a valid time", k);
	}
	ps->personality = (uint32_t)pers;
	ps->dumpable = (int)dump;
	if (get_sigq(rec, &ps->shared, err) < 0)
		return -1;
	ps->known = true;
	return 0;
}

/* A thread's credentials (optional as a whole, like get_pstate's). The
 * pending queue is read last: nothing to free if anything before fails. */
static int get_creds(const msgpack_object *rec, struct ckpt_thread *t, struct cv_error *err)
{
	struct ckpt_creds *c = &t->creds;
	if (!mpk_map_get(rec, "uids"))
		return 0;
	size_t gbytes;
	uint64_t sb, nnp, pds;
	if (get_bin(rec, "uids", c->uid, sizeof(c->uid), 0, NULL, err) < 0 ||
	    get_bin(rec, "gids", c->gid, sizeof(c->gid), 0, NULL, err) < 0 ||
	    get_bin(rec, "groups", c->groups, 0, sizeof(c->groups), &gbytes, err) < 0 ||
	    sf_get_u64(rec, "cap_eff", &c->cap_eff, err) < 0 ||
	    sf_get_u64(rec, "cap_prm", &c->cap_prm, err) < 0 ||
	    sf_get_u64(rec, "cap_inh", &c->cap_inh, err) < 0 ||
	    sf_get_u64(rec, "cap_bnd", &c->cap_bnd, err) < 0 ||
	    sf_get_u64(rec, "cap_amb", &c->cap_amb, err) < 0 ||
	    get_u(rec, "securebits", CKPT_SECUREBITS_MAX, &sb, err) < 0 ||
	    get_u(rec, "no_new_privs", 1, &nnp, err) < 0 ||
	    get_u(rec, "pdeathsig", 64, &pds, err) < 0)
		return -1;
	if (gbytes % sizeof(c->groups[0]))
		return cv_errf(err, 0, "state file: field \"groups\" holds %zu bytes, not whole ids",
			       gbytes);
	c->ngroups = gbytes / sizeof(c->groups[0]);
	for (int k = 0; k < 4; k++)
		if (c->uid[k] == UINT32_MAX || c->gid[k] == UINT32_MAX)
			return cv_errf(err, 0, "state file: uid or gid %u is not a valid id", UINT32_MAX);
	for (size_t k = 0; k < c->ngroups; k++)
		if (c->groups[k] == UINT32_MAX)
			return cv_errf(err, 0, "state file: group %u is not a valid id", UINT32_MAX);
	/* What the kernel keeps true of any thread (capset, PR_CAP_AMBIENT). */
	if (c->cap_eff & ~c->cap_prm)
		return cv_errf(err, 0, "state file: effective capabilities outside the permitted ones");
	if (c->cap_amb & ~(c->cap_prm & c->cap_inh))
		return cv_errf(err, 0,
			       "state file: ambient capabilities outside the permitted and inheritable "
			       "ones");
	c->securebits = (uint32_t)sb;
	c->no_new_privs = (int)nnp;
	c->pdeathsig = (int)pds;
	if (get_sigq(rec, &t->sigq, err) < 0)
		return -1;
	c->known = true;
	return 0;
}

static struct ckpt_proc *cur(struct ckpt_loader *l, const char *kind, struct cv_error *err)
{
	if (!l->nprocs) {
		cv_errf(err, 0, "state file: a %s record before any task", kind);
		return NULL;
	}
	return &l->procs[l->nprocs - 1];
}

static int on_task(struct ckpt_loader *l, const msgpack_object *rec, struct cv_error *err)
{
	if (l->nprocs == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		if (cap > 4096)
			return cv_errf(err, 0, "state file: more than 4096 tasks");
		struct ckpt_proc *n = realloc(l->procs, cap * sizeof(*n));
		if (!n)
			return cv_errf(err, ENOMEM, "state file: tasks");
		l->procs = n;
		l->cap = cap;
	}
	struct ckpt_proc *p = &l->procs[l->nprocs++];
	memset(p, 0, sizeof(*p));
	p->threads = calloc(CKPT_MAX_THREADS, sizeof(*p->threads));
	p->vmas = calloc(CKPT_MAX_VMAS, sizeof(*p->vmas));
	p->fds = calloc(CKPT_MAX_FDS, sizeof(*p->fds));
	if (!p->threads || !p->vmas || !p->fds)
		return cv_errf(err, ENOMEM, "state file: task");
	uint64_t pid = 0, um, ss_flags, auxb = 0, ppid, sid, pgid;
	size_t aux_bytes;
	if (get_u(rec, "pid", 4194304, &pid, err) < 0 ||
	    get_u_opt(rec, "ppid", 4194304, 0, &ppid, err) < 0 ||
	    get_u_opt(rec, "sid", 4194304, 0, &sid, err) < 0 ||
	    get_u_opt(rec, "pgid", 4194304, 0, &pgid, err) < 0 || get_u(rec, "umask", 0777, &um, err) < 0 ||
	    get_str(rec, "cwd", p->cwd, sizeof(p->cwd), false, err) < 0 ||
	    get_bin(rec, "mm", &p->mm, sizeof(p->mm), 0, NULL, err) < 0 ||
	    get_bin(rec, "auxv", p->auxv, 0, sizeof(p->auxv), &aux_bytes, err) < 0 ||
	    get_bin(rec, "sigactions", p->sigact, sizeof(p->sigact), 0, NULL, err) < 0 ||
	    sf_get_u64(rec, "sigaltstack_sp", &p->sigaltstack_sp, err) < 0 ||
	    sf_get_u64(rec, "sigaltstack_size", &p->sigaltstack_size, err) < 0 ||
	    get_u(rec, "sigaltstack_flags", UINT32_MAX, &ss_flags, err) < 0 ||
	    get_u(rec, "threads", CKPT_MAX_THREADS, &auxb, err) < 0 ||
	    get_pstate(rec, &p->ps, err) < 0)
		return cv_error_wrap(err, "task %llu", (unsigned long long)pid);
	if (pid == 0 || aux_bytes % 8 || auxb == 0)
		return cv_errf(err, 0, "state file: task %llu: bad pid, auxv or thread count",
			       (unsigned long long)pid);
	p->pid = (pid_t)pid;
	p->ns_ppid = (pid_t)ppid;
	p->ns_sid = (pid_t)sid;
	p->ns_pgid = (pid_t)pgid;
	p->umask = (unsigned)um;
	p->auxv_words = aux_bytes / 8;
	p->sigaltstack_flags = (int)(uint32_t)ss_flags;
	p->decl_threads = (size_t)auxb;
	return 0;
}

static int on_thread(struct ckpt_loader *l, const msgpack_object *rec, struct cv_error *err)
{
	struct ckpt_proc *p = cur(l, "thread", err);
	if (!p)
		return -1;
	if (p->nthreads == CKPT_MAX_THREADS)
		return cv_errf(err, 0, "state file: task %d: more than %d threads", p->pid,
			       CKPT_MAX_THREADS);
	struct ckpt_thread *t = &p->threads[p->nthreads];
	uint64_t tid, rl, rs, rlen;
	if (get_u(rec, "tid", 4194304, &tid, err) < 0 ||
	    get_bin(rec, "regs", &t->regs, sizeof(t->regs), 0, NULL, err) < 0 ||
	    get_bin(rec, "xstate", t->xstate, 0, sizeof(t->xstate), &t->xstate_len, err) < 0 ||
	    sf_get_u64(rec, "sigmask", &t->sigmask, err) < 0 ||
	    sf_get_u64(rec, "rseq", &t->rseq_ptr, err) < 0 ||
	    get_u(rec, "rseq_len", 4096, &rl, err) < 0 ||
	    get_u(rec, "rseq_sig", UINT32_MAX, &rs, err) < 0 ||
	    sf_get_u64(rec, "robust_list", &t->robust_head, err) < 0 ||
	    get_u(rec, "robust_len", 4096, &rlen, err) < 0 ||
	    sf_get_u64(rec, "clear_tid", &t->clear_tid, err) < 0 ||
	    (mpk_map_get(rec, "comm") &&
	     get_str(rec, "comm", t->comm, sizeof(t->comm), false, err) < 0))
		return cv_error_wrap(err, "task %d", p->pid);
	if (tid == 0)
		return cv_errf(err, 0, "state file: task %d: thread id 0", p->pid);
	if (get_creds(rec, t, err) < 0)
		return cv_error_wrap(err, "task %d thread %llu", p->pid, (unsigned long long)tid);
	t->tid = t->ns_tid = (pid_t)tid;
	t->rseq_len = (uint32_t)rl;
	t->rseq_sig = (uint32_t)rs;
	t->robust_len = (size_t)rlen;
	p->nthreads++;
	return 0;
}

static int on_mapping(struct ckpt_loader *l, const msgpack_object *rec, struct cv_error *err)
{
	struct ckpt_proc *p = cur(l, "mapping", err);
	if (!p)
		return -1;
	if (p->nvmas == CKPT_MAX_VMAS)
		return cv_errf(err, 0, "state file: task %d: more than %d mappings", p->pid,
			       CKPT_MAX_VMAS);
	struct sf_mapping m;
	if (sf_get_mapping(rec, &m, err) < 0)
		return -1;
	struct ckpt_vma *v = &p->vmas[p->nvmas];
	*v = (struct ckpt_vma){.start = m.start, .end = m.end, .pgoff = m.offset,
			       .prot = (int)(m.prot & (PROT_READ | PROT_WRITE | PROT_EXEC))};
	if (p->nvmas && v->start < p->vmas[p->nvmas - 1].end)
		return cv_errf(err, 0, "state file: task %d: mappings overlap or are out of order",
			       p->pid);
	if (!m.path) {
		v->kind = CKPT_VMA_ANON;
	} else if (m.path_len >= CKPT_PATH_MAX || memchr(m.path, '\0', m.path_len)) {
		return cv_errf(err, 0, "state file: task %d: mapping path too long", p->pid);
	} else if (m.path[0] == '/') {
		v->kind = CKPT_VMA_FILE;
		if (!(v->path = strndup(m.path, m.path_len)))
			return cv_errf(err, ENOMEM, "state file: mapping path");
	} else {
		int k = -1;
		for (int i = CKPT_VMA_STACK; i <= CKPT_VMA_VSYSCALL; i++)
			if (strlen(special_name[i]) == m.path_len &&
			    !memcmp(special_name[i], m.path, m.path_len))
				k = i;
		if (k < 0)
			return cv_errf(err, 0, "state file: task %d: unknown mapping \"%.*s\"", p->pid,
				       (int)m.path_len, m.path);
		v->kind = (enum ckpt_vma_kind)k;
	}
	p->nvmas++;
	return 0;
}

static int on_pages(struct ckpt_loader *l, const msgpack_object *rec, uint64_t len,
		    struct cv_error *err)
{
	struct ckpt_proc *p = cur(l, "pages", err);
	if (!p)
		return -1;
	uint64_t addr;
	if (sf_get_u64(rec, "addr", &addr, err) < 0)
		return -1;
	/* Only into an area we will map, and only one that holds saved pages. */
	int inside = 0;
	for (size_t i = 0; i < p->nvmas && !inside; i++) {
		const struct ckpt_vma *v = &p->vmas[i];
		inside = addr >= v->start && addr < v->end && len <= v->end - addr &&
			 (v->kind == CKPT_VMA_ANON || v->kind == CKPT_VMA_STACK ||
			  v->kind == CKPT_VMA_FILE);
	}
	if (!inside)
		return cv_errf(err, 0,
			       "state file: task %d: pages at 0x%llx (%llu bytes) lie outside its "
			       "mappings",
			       p->pid, (unsigned long long)addr, (unsigned long long)len);
	/* Runs come in address order, as capture writes them: a page saved
	 * twice would be written twice, and a file repeating one run could
	 * grow the table without end. */
	const struct ckpt_pages *prev = p->npages ? &p->pages[p->npages - 1] : NULL;
	if (prev && addr < prev->addr + prev->len)
		return cv_errf(err, 0, "state file: task %d: page runs overlap or are out of order "
				       "at 0x%llx",
			       p->pid, (unsigned long long)addr);
	if (p->npages == CKPT_MAX_PAGE_RUNS)
		return cv_errf(err, 0, "state file: task %d: more than %d page runs", p->pid,
			       CKPT_MAX_PAGE_RUNS);
	if (p->npages == p->cap_pages) {
		size_t cap = p->cap_pages ? p->cap_pages * 2 : 64;
		struct ckpt_pages *n = realloc(p->pages, cap * sizeof(*n));
		if (!n)
			return cv_errf(err, ENOMEM, "state file: page runs");
		p->pages = n;
		p->cap_pages = cap;
	}
	unsigned char *data = NULL;
	bool keep = !l->skip_data || (len <= l->keep_max && l->kept <= l->keep_max - len);
	if (keep && !(data = malloc(len)))
		return cv_errf(err, ENOMEM, "state file: %llu bytes of pages", (unsigned long long)len);
	if (keep)
		l->kept += len;
	p->pages[p->npages] = (struct ckpt_pages){addr, (size_t)len, data};
	l->cur_pages = &p->pages[p->npages++];
	p->page_bytes += len;
	return 0;
}

static int on_fd(struct ckpt_loader *l, const msgpack_object *rec, struct cv_error *err)
{
	struct ckpt_proc *p = cur(l, "fd", err);
	if (!p)
		return -1;
	if (p->nfds == CKPT_MAX_FDS)
		return cv_errf(err, 0, "state file: task %d: more than %d fds", p->pid, CKPT_MAX_FDS);
	struct ckpt_fd *f = &p->fds[p->nfds];
	char type[16], path[CKPT_PATH_MAX];
	uint64_t fd, flags, cloexec, src, pipe;
	if (get_u(rec, "fd", 1 << 20, &fd, err) < 0 ||
	    get_u_opt(rec, "src", 2, fd <= 2 ? fd : 0, &src, err) < 0 ||
	    get_u_opt(rec, "pipe", UINT64_MAX, 0, &pipe, err) < 0 ||
	    get_str(rec, "type", type, sizeof(type), false, err) < 0 ||
	    get_u(rec, "flags", UINT32_MAX, &flags, err) < 0 ||
	    get_u(rec, "cloexec", 1, &cloexec, err) < 0 || sf_get_u64(rec, "pos", &f->pos, err) < 0 ||
	    get_str(rec, "path", path, sizeof(path), true, err) < 0)
		return cv_error_wrap(err, "task %d", p->pid);
	f->fd = (int)fd;
	f->flags = (int)(uint32_t)flags;
	f->cloexec = (int)cloexec;
	if (!strcmp(type, "file") && path[0] == '/') {
		f->kind = CKPT_FD_FILE;
		if (!(f->path = strdup(path)))
			return cv_errf(err, ENOMEM, "state file: fd path");
	} else if (!strcmp(type, "external")) {
		f->kind = CKPT_FD_EXTERNAL;
		f->src = (int)src;
	} else if (!strcmp(type, "pipe")) {
		int i = 0;
		while (i < (int)l->npipes && l->pipes[i].ino != pipe)
			i++;
		int acc = f->flags & O_ACCMODE;
		if (i == (int)l->npipes || (acc != O_RDONLY && acc != O_WRONLY))
			return cv_errf(err, 0,
				       "state file: task %d fd %d: pipe %llu has no pipe record or the fd "
				       "is neither its read nor its write end",
				       p->pid, f->fd, (unsigned long long)pipe);
		f->kind = CKPT_FD_PIPE;
		f->pipe = pipe;
	} else {
		return cv_errf(err, 0, "state file: task %d fd %d: unknown type \"%s\"", p->pid, f->fd,
			       type);
	}
	p->nfds++;
	return 0;
}

static int on_pipe(struct ckpt_loader *l, const msgpack_object *rec, uint64_t len,
		   struct cv_error *err)
{
	if (l->nprocs)
		return cv_errf(err, 0, "state file: a pipe record after a task");
	if (l->npipes == CKPT_MAX_PIPES)
		return cv_errf(err, 0, "state file: more than %d pipes", CKPT_MAX_PIPES);
	if (!l->pipes && !(l->pipes = calloc(CKPT_MAX_PIPES, sizeof(*l->pipes))))
		return cv_errf(err, ENOMEM, "state file: pipes");
	struct ckpt_pipe *cp = &l->pipes[l->npipes];
	uint64_t rf, wf;
	if (sf_get_u64(rec, "id", &cp->ino, err) < 0 ||
	    get_u(rec, "size", CKPT_PIPE_MAX_BYTES, &cp->size, err) < 0 ||
	    get_u(rec, "rflags", UINT32_MAX, &rf, err) < 0 ||
	    get_u(rec, "wflags", UINT32_MAX, &wf, err) < 0)
		return -1;
	for (size_t i = 0; i < l->npipes; i++)
		if (l->pipes[i].ino == cp->ino)
			return cv_errf(err, 0, "state file: pipe %llu twice",
				       (unsigned long long)cp->ino);
	if (len > cp->size || cp->size < 4096)
		return cv_errf(err, 0, "state file: pipe %llu: %llu bytes in a pipe of %llu",
			       (unsigned long long)cp->ino, (unsigned long long)len,
			       (unsigned long long)cp->size);
	size_t total = (size_t)len;
	for (size_t i = 0; i < l->npipes; i++)
		total += l->pipes[i].len;
	if (total > CKPT_PIPES_MAX_TOTAL)
		return cv_errf(err, 0, "state file: pipe %llu: the pipes hold more than %d bytes together",
			       (unsigned long long)cp->ino, CKPT_PIPES_MAX_TOTAL);
	cp->rflags = (int)(uint32_t)rf;
	cp->wflags = (int)(uint32_t)wf;
	if (len && !(cp->data = malloc(len)))
		return cv_errf(err, ENOMEM, "state file: pipe bytes");
	cp->len = (size_t)len;
	l->cur_pipe = cp;
	l->npipes++;
	return 0;
}

int ckpt_image_event(void *loader, const struct sf_event *ev, struct cv_error *err)
{
	struct ckpt_loader *l = loader;
	switch (ev->type) {
	case SF_EV_RECORD:
		l->cur_pages = NULL;
		l->cur_file = NULL;
		l->cur_pipe = NULL;
		switch (ev->kind) {
		case SF_KIND_FILE:
			if (ckpt_tmpfs_add(&l->tmpfs, ev->obj, ev->data_len, err) < 0)
				return -1;
			l->cur_file = &l->tmpfs.files[l->tmpfs.n - 1];
			return 0;
		case SF_KIND_TASK:
			return on_task(l, ev->obj, err);
		case SF_KIND_THREAD:
			return on_thread(l, ev->obj, err);
		case SF_KIND_MAPPING:
			return on_mapping(l, ev->obj, err);
		case SF_KIND_PAGES:
			return on_pages(l, ev->obj, ev->data_len, err);
		case SF_KIND_FD:
			return on_fd(l, ev->obj, err);
		case SF_KIND_CONTAINER:
			return get_str(ev->obj, "id", l->container_id, sizeof(l->container_id), false,
				       err);
		case SF_KIND_PIPE:
			return on_pipe(l, ev->obj, ev->data_len, err);
		case SF_KIND_BLOB:
		case SF_KIND_END:
		case SF_KIND_COUNT:
			break;
		}
		return cv_errf(err, 0, "state file: a %s record, which this engine does not restore",
			       sf_kind_name(ev->kind));
	case SF_EV_DATA:
		if (l->cur_pipe) {
			if (ev->data_off + ev->len > l->cur_pipe->len)
				return cv_errf(err, 0, "state file: data outside a pipe");
			memcpy(l->cur_pipe->data + ev->data_off, ev->data, ev->len);
			return 0;
		}
		if (l->cur_file) {
			if (ev->data_off + ev->len > l->cur_file->len)
				return cv_errf(err, 0, "state file: data outside a file");
			memcpy(l->cur_file->data + ev->data_off, ev->data, ev->len);
			return 0;
		}
		if (!l->cur_pages || ev->data_off + ev->len > l->cur_pages->len)
			return cv_errf(err, 0, "state file: data outside a page run");
		if (l->cur_pages->data)
			memcpy(l->cur_pages->data + ev->data_off, ev->data, ev->len);
		return 0;
	case SF_EV_NONE:
	case SF_EV_META:
	case SF_EV_END:
		return 0;
	}
	return 0;
}

int ckpt_image_done(struct ckpt_loader *l, struct cv_error *err)
{
	if (!l->nprocs)
		return cv_errf(err, 0, "state file: no task in it");
	for (size_t i = 0; i < l->nprocs; i++) {
		const struct ckpt_proc *p = &l->procs[i];
		if (p->nthreads != p->decl_threads || p->threads[0].tid != p->pid)
			return cv_errf(err, 0,
				       "state file: task %d: %zu thread records, its task record says "
				       "%zu (the first must be the task itself)",
				       p->pid, p->nthreads, p->decl_threads);
		/* The tree: the first task is the init, each other one's
		 * parent comes before it (restore forks it from there). */
		bool parent = i == 0;
		for (size_t k = 0; k < i; k++) {
			if (l->procs[k].pid == p->pid)
				return cv_errf(err, 0, "state file: task %d twice", p->pid);
			parent |= l->procs[k].pid == p->ns_ppid;
		}
		if (!parent)
			return cv_errf(err, 0, "state file: task %d: its parent %d is not a task before it",
				       p->pid, p->ns_ppid);
	}
	return 0;
}

void ckpt_loader_free(struct ckpt_loader *l)
{
	for (size_t i = 0; i < l->nprocs; i++)
		ckpt_proc_free(&l->procs[i]);
	free(l->procs);
	ckpt_tmpfs_free(&l->tmpfs);
	for (size_t i = 0; i < l->npipes; i++)
		free(l->pipes[i].data);
	free(l->pipes);
	memset(l, 0, sizeof(*l));
}

struct stream {
	const struct ckpt_proc *p;
	size_t task, tasks_seen; /* p is the task-th task record */
	ckpt_page_fn put;
	void *opaque;
	size_t next; /* index of the next run expected */
	const struct ckpt_pages *cur; /* the run being streamed (NULL: none, or kept) */
};

/* 1 once past p's records: the rest of the file is not read. */
static int stream_event(void *opaque, const struct sf_event *ev, struct cv_error *err)
{
	struct stream *s = opaque;
	if (ev->type == SF_EV_RECORD) {
		s->cur = NULL;
		if (ev->kind == SF_KIND_TASK && s->tasks_seen++ > s->task)
			return 1;
		if (ev->kind != SF_KIND_PAGES || s->tasks_seen != s->task + 1)
			return 0;
		uint64_t addr;
		if (sf_get_u64(ev->obj, "addr", &addr, err) < 0)
			return -1;
		if (s->next >= s->p->npages || s->p->pages[s->next].addr != addr ||
		    s->p->pages[s->next].len != ev->data_len)
			return cv_errf(err, 0, "state file: changed between its check and its use");
		const struct ckpt_pages *run = &s->p->pages[s->next++];
		s->cur = run->data ? NULL : run; /* a kept run is written from memory */
		return 0;
	}
	if (ev->type == SF_EV_DATA && s->cur)
		return s->put(s->opaque, s->cur->addr + ev->data_off, ev->data, ev->len, err);
	return 0;
}

int ckpt_image_stream_pages(struct sf_fd_reader *fr, const struct ckpt_proc *p, size_t task,
			    ckpt_page_fn put, void *opaque, struct cv_error *err)
{
	struct stream s = {.p = p, .task = task, .put = put, .opaque = opaque};
	int rc = sf_fd_reader_run(fr, stream_event, &s, err);
	if (rc < 0)
		return -1;
	if (s.next != p->npages)
		return cv_errf(err, 0, "state file: changed between its check and its use");
	return 0;
}

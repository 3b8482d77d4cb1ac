/* Rebuilding a checkpointed process tree from the container's init
 * (kernel/ckpt_proc.h, restore_tree_take).
 *
 * Order: the init is bootstrapped (its trampoline mapped); the objects
 * every process will need wait in it at high fds (the external stdio, and
 * each pipe, made once, sized, flagged and refilled with its buffered
 * bytes); then each other process is forked, parents first, by a clone
 * injected in its restored parent (keeping its pid: set_tid, or the
 * namespace's ns_last_pid), so it inherits the trampoline and the waiting
 * fds, and makes itself a session leader right away when it was one (its
 * children must inherit the session); process groups are then joined,
 * group leaders first. Only then is each process rebuilt (memory,
 * registers, its own fds taken from the waiting ones, which it closes),
 * and only when all are whole is anything let run. Notes:
 * docs/DESIGN.md, "Checkpoint and restore". */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/ckpt_proc.h"
#include "kernel/restore_internal.h"

/* The exec event stop is inside execve: run it to its syscall-exit stop
 * first, or our first injection would start from there. */
static int leave_exec(const struct ckpt_proc *p, pid_t pid, struct pti *t, struct cv_error *err)
{
	int st;
	*t = (struct pti){.tid = pid};
	if (pti_resume(PTRACE_SYSCALL, pid, 0) < 0)
		return cv_errf(err, errno, "restoring process %d: leaving the exec", p->pid);
	if (pti_wait(pid, &st, err) < 0)
		return -1;
	if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80))
		return cv_errf(err, 0, "restoring process %d: unexpected stop 0x%x after the exec",
			       p->pid, st);
	if (ptrace(PTRACE_GETREGS, pid, 0, &t->regs) < 0)
		return cv_errf(err, errno, "restoring process %d: registers of the new process",
			       p->pid);
	/* Its forks are traced too: the children are ours to rebuild. */
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
				       PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL)) < 0)
		return cv_errf(err, errno, "restoring process %d: ptrace options", p->pid);
	return 0;
}

/* One pipe made in the init, moved to at and at + 1, sized and flagged:
 * two batches, as the moves depend on the numbers pipe2 gave. pipe2
 * writes its two fds into the batch data, which the process can write. */
static int stage_pipe(struct rst *r, const struct ckpt_pipe *cp, int at, struct cv_error *err)
{
	char what[64];
	snprintf(what, sizeof(what), "pipe:[%llu]", (unsigned long long)cp->ino);
	int fds[2] = {-1, -1};
	uint64_t fds_at;
	if (rst_batch_fit(r, 1, sizeof(fds), strlen(what) + 1, err) < 0 ||
	    rst_batch_data(r, fds, sizeof(fds), &fds_at, err) < 0 ||
	    rst_batch_add(r, what, SYS_pipe2, fds_at, 0, 0, 0, 0, 0, err) < 0 ||
	    rst_batch_run(r, err) < 0 || pti_mem_read(r->memfd, fds_at, fds, sizeof(fds), err) < 0)
		return -1;
	/* Moved to at, at + 1; the write end first when it sits where the
	 * read end goes (a dup3 onto it would close it). */
	int first = fds[1] == at;
	for (int k = 0; k < 2; k++) {
		int e = k ^ first;
		if (fds[e] == at + e)
			continue;
		if (rst_batch_call(r, what, SYS_dup3, (uint64_t)fds[e], (uint64_t)(at + e), 0, 0, 0,
				   0, err) < 0 ||
		    rst_batch_call(r, what, SYS_close, (uint64_t)fds[e], 0, 0, 0, 0, 0, err) < 0)
			return -1;
	}
	if (cp->size && rst_batch_call(r, what, SYS_fcntl, (uint64_t)at, F_SETPIPE_SZ, cp->size, 0,
				       0, 0, err) < 0)
		return -1;
	if (rst_batch_call(r, what, SYS_fcntl, (uint64_t)at, F_SETFL, (uint64_t)cp->rflags, 0, 0, 0,
			   err) < 0 ||
	    rst_batch_call(r, what, SYS_fcntl, (uint64_t)(at + 1), F_SETFL, (uint64_t)cp->wflags, 0,
			   0, 0, err) < 0 ||
	    rst_batch_run(r, err) < 0)
		return -1;
	if (!cp->len)
		return 0;
	/* The buffered bytes, written by us through a copy of its write end:
	 * the pipe is as large as the one they came from. */
	int pidfd = (int)syscall(SYS_pidfd_open, r->t.tid, 0);
	int wfd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, at + 1, 0);
	int e = errno;
	if (pidfd >= 0)
		close(pidfd);
	if (wfd < 0)
		return cv_errf(err, e, "restoring pipe:[%llu]: taking its write end",
			       (unsigned long long)cp->ino);
	int rc = 0;
	for (size_t off = 0; off < cp->len;) {
		ssize_t w = write(wfd, cp->data + off, cp->len - off);
		if (w <= 0) {
			rc = cv_errf(err, w < 0 ? errno : EIO,
				     "restoring pipe:[%llu]: refilling its %zu bytes",
				     (unsigned long long)cp->ino, cp->len);
			break;
		}
		off += (size_t)w;
	}
	close(wfd);
	return rc;
}

/* Puts the init's stdio k and every pipe at r->fd_base + ... */
static int stage_fds(struct rst *r, const struct ckpt_proc *procs, size_t n, struct cv_error *err)
{
	for (int k = 0; k < 3; k++) {
		int used = 0;
		for (size_t i = 0; i < n && !used; i++)
			for (size_t j = 0; j < procs[i].nfds && !used; j++)
				used = procs[i].fds[j].kind == CKPT_FD_EXTERNAL &&
				       procs[i].fds[j].src == k;
		char what[48];
		snprintf(what, sizeof(what), "keeping its stdio fd %d", k);
		if (used && rst_batch_call(r, what, SYS_dup3, (uint64_t)k, (uint64_t)(r->fd_base + k),
					   0, 0, 0, 0, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < r->npipes; i++)
		if (stage_pipe(r, &r->pipes[i], r->fd_base + 3 + 2 * (int)i, err) < 0)
			return -1;
	return rst_batch_run(r, err);
}

/* Forks procs[i] from its restored parent pr, with its saved pid. */
static int fork_child(struct rst *pr, const struct ckpt_proc *c, struct rst *out,
		      struct cv_error *err)
{
	struct {
		struct clone_args a;
		uint64_t pid;
	} b;
	memset(&b, 0, sizeof(b));
	b.a.exit_signal = SIGCHLD;
	b.pid = (uint64_t)c->pid;
	b.a.set_tid = pr->tramp + SCRATCH_OFF + offsetof(__typeof__(b), pid);
	b.a.set_tid_size = 1;
	int64_t pid;
	if (rst_put_scratch(pr, &b, sizeof(b), err) < 0 ||
	    pti_sys(&pr->t, &pid, err, SYS_clone3, pr->tramp + SCRATCH_OFF, sizeof(b.a), 0, 0, 0,
		    0) < 0)
		return cv_error_wrap(err, "forking process %d", c->pid);
	if (pid == -EPERM) {
		/* Not allowed to name the pid (the container dropped
		 * CAP_CHECKPOINT_RESTORE): have it handed out next. */
		b.a.set_tid = 0;
		b.a.set_tid_size = 0;
		if (rst_set_ns_last_pid(pr->t.tid, c->pid, err) < 0 ||
		    rst_put_scratch(pr, &b, sizeof(b), err) < 0 ||
		    pti_sys(&pr->t, &pid, err, SYS_clone3, pr->tramp + SCRATCH_OFF, sizeof(b.a), 0, 0,
			    0, 0) < 0)
			return cv_error_wrap(err, "forking process %d", c->pid);
	}
	if (pid < 0)
		return cv_errf(err, (int)-pid, "restoring process %d: forking it from %d", c->pid,
			       pr->p->pid);
	/* The child is traced (TRACEFORK) and stops before it runs; it
	 * reports under its host id: the only new stop there is. */
	int st;
	pid_t host = waitpid(-1, &st, __WALL);
	if (host < 0)
		return cv_errf(err, errno, "waiting for the new process %d", c->pid);
	*out = (struct rst){.p = c, .memfd = -1, .tramp = pr->tramp, .all = pr->all,
			    .nall = pr->nall, .fd_base = pr->fd_base, .pipes = pr->pipes,
			    .npipes = pr->npipes};
	out->t = (struct pti){.tid = host, .sys_ip = pr->tramp, .int3_after = 1};
	if (!WIFSTOPPED(st))
		return cv_errf(err, 0, "restoring process %d: it ended at once (0x%x)", c->pid, st);
	if (pid != c->pid)
		return cv_errf(err, 0, "restoring process %d: it came back as %d", c->pid, (int)pid);
	if (ptrace(PTRACE_GETREGS, host, 0, &out->t.regs) < 0)
		return cv_errf(err, errno, "restoring process %d: registers", c->pid);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", host);
	out->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (out->memfd < 0)
		return cv_errf(err, errno, "open %s", path);
	return 0;
}

/* A session leader makes its session before it has children. */
static int make_session(struct rst *r, struct cv_error *err)
{
	if (r->p->ns_sid != r->p->pid)
		return 0;
	int64_t sid;
	if (rst_sys(r, &sid, "getsid", SYS_getsid, 0, 0, 0, 0, 0, 0, err) < 0)
		return -1;
	if (sid == r->p->pid)
		return 0;
	return rst_sys(r, NULL, "setsid", SYS_setsid, 0, 0, 0, 0, 0, 0, err);
}

/* Joins its process group (its leader, if another process, exists by
 * now: leaders go first), then checks both ids came out as saved: asked
 * in one batch, the join (when needed) in a second. */
static int join_group(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	int pg = rst_batch_call(r, "getpgid", SYS_getpgid, 0, 0, 0, 0, 0, 0, err);
	int sd = pg < 0 ? -1 : rst_batch_call(r, "getsid", SYS_getsid, 0, 0, 0, 0, 0, 0, err);
	if (sd < 0 || rst_batch_run(r, err) < 0)
		return -1;
	int64_t pgid = rst_batch_result(pg), sid = rst_batch_result(sd);
	if (pgid != p->ns_pgid && p->ns_sid != p->pid) {
		char what[64];
		snprintf(what, sizeof(what), "joining its process group %d", p->ns_pgid);
		if (rst_batch_call(r, what, SYS_setpgid, 0, (uint64_t)p->ns_pgid, 0, 0, 0, 0, err) < 0 ||
		    rst_batch_run(r, err) < 0)
			return -1;
		pgid = p->ns_pgid; /* setpgid changes no session */
	}
	if (pgid != p->ns_pgid || sid != p->ns_sid)
		return cv_errf(err, 0,
			       "restoring process %d: session %d and process group %d cannot be made "
			       "again (got %lld and %lld)",
			       p->pid, p->ns_sid, p->ns_pgid, (long long)sid, (long long)pgid);
	return 0;
}

static restore_gate_fn release_gate;
static void *release_gate_data;

void restore_set_release_gate(restore_gate_fn fn, void *data)
{
	release_gate = fn;
	release_gate_data = data;
}

int restore_tree_take(const struct ckpt_proc *procs, size_t n, const struct ckpt_pipe *pipes,
		      size_t npipes, pid_t pid, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (procs[i].nthreads == 0 || procs[i].nthreads > CKPT_MAX_THREADS)
			return cv_errf(err, 0, "restoring process %d: %zu threads", procs[i].pid,
				       procs[i].nthreads);
	struct rst *r = calloc(n, sizeof(*r));
	if (!r)
		return cv_errf(err, ENOMEM, "restore: processes");
	rst_batch_drop();
	for (size_t i = 0; i < n; i++)
		r[i].memfd = -1;
	/* Above every fd any process had: nothing is overwritten. */
	int base = 3;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < procs[i].nfds; j++)
			if (procs[i].fds[j].fd >= base)
				base = procs[i].fds[j].fd + 1;
	r[0] = (struct rst){.p = &procs[0], .memfd = -1, .all = procs, .nall = n, .fd_base = base,
			    .pipes = pipes, .npipes = npipes, .files = true};
	size_t made = 0;
	int rc = leave_exec(&procs[0], pid, &r[0].t, err);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	if (rc == 0 && (r[0].memfd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		rc = cv_errf(err, errno, "open %s", path);
	if (rc == 0)
		rc = rst_bootstrap(&r[0], err);
	if (rc == 0)
		made = 1;
	if (rc == 0)
		rc = stage_fds(&r[0], procs, n, err);
	if (rc == 0)
		rc = make_session(&r[0], err);
	for (size_t i = 1; rc == 0 && i < n; i++) {
		size_t par = 0;
		while (par < i && procs[par].pid != procs[i].ns_ppid)
			par++;
		if (par == i) {
			rc = cv_errf(err, 0, "restoring process %d: its parent %d is not restored first",
				     procs[i].pid, procs[i].ns_ppid);
			break;
		}
		rc = fork_child(&r[par], &procs[i], &r[i], err);
		if (r[i].t.tid)
			made = i + 1;
		if (rc == 0)
			rc = make_session(&r[i], err);
	}
	/* Group leaders first, so the group exists when the others join. */
	for (int pass = 0; pass < 2 && rc == 0; pass++)
		for (size_t i = 0; rc == 0 && i < n; i++)
			if ((procs[i].ns_pgid == procs[i].pid) == (pass == 0))
				rc = join_group(&r[i], err);
	/* Children first: a parent closes the waiting fds it staged. */
	for (size_t i = n; rc == 0 && i-- > 0;)
		rc = rst_rebuild(&r[i], err);
	for (size_t i = 0; i < made; i++)
		if (r[i].memfd >= 0)
			close(r[i].memfd);
	if (rc == 0 && release_gate)
		rc = release_gate(release_gate_data, err);
	if (rc == 0)
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < procs[i].nthreads; k++)
				ptrace(PTRACE_DETACH, r[i].tids[k], 0, 0);
	free(r);
	return rc;
}

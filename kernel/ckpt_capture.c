/* Capturing one ptrace-stopped process into a struct ckpt_proc
 * (kernel/ckpt_proc.h); its credentials, rlimits, pending signals and the
 * like are kernel/ckpt_procstate.c's.
 *
 * What the kernel shows through /proc (maps, pagemap, stat, status, auxv,
 * fd links and fdinfo) is read from there; what it only tells the process
 * itself (signal handlers, sigaltstack, brk, the clear_child_tid address)
 * is asked by syscalls injected into the stopped thread, with a scratch
 * page we map in it for the answers and unmap afterwards. We never open a
 * path the container names: fd links and mapping paths are kept as text
 * and reopened inside the restored process, by it. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/ckpt_proc.h"
#include "kernel/procfs.h"
#include "kernel/ptrace_inject.h"

#define PAGE 4096UL
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)

static int thread_known(const struct ckpt_proc *p, pid_t tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return 1;
	return 0;
}

int ckpt_seize_all(pid_t pid, struct ckpt_proc *p, struct cv_error *err)
{
	p->pid = pid;
	if (!p->threads) {
		p->threads = calloc(CKPT_MAX_THREADS, sizeof(*p->threads));
		if (!p->threads)
			return cv_errf(err, ENOMEM, "process %d: threads", pid);
	}
	/* The leader first: restore rebuilds the others from it. */
	if (p->nthreads == 0) {
		struct pti t;
		if (pti_seize(&t, pid, 0, err) < 0)
			return cv_error_wrap(err, "process %d", pid);
		p->threads[0].tid = pid;
		p->threads[0].regs = t.regs;
		p->nthreads = 1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	/* A thread may clone while we seize the others: list again until a
	 * pass finds nothing new (under the freezer nothing runs anyway). */
	for (int added = 1; added;) {
		added = 0;
		DIR *d = opendir(path);
		if (!d)
			return cv_errf(err, errno, "process %d: listing its threads", pid);
		struct dirent *de;
		while ((de = readdir(d))) {
			pid_t tid = (pid_t)atoi(de->d_name);
			if (tid <= 0 || thread_known(p, tid))
				continue;
			if (p->nthreads == CKPT_MAX_THREADS) {
				closedir(d);
				return cv_errf(err, 0, "process %d: more than %d threads", pid,
					       CKPT_MAX_THREADS);
			}
			struct pti t;
			if (pti_seize(&t, tid, 0, err) < 0) {
				closedir(d);
				return cv_error_wrap(err, "process %d", pid);
			}
			struct ckpt_thread *ct = &p->threads[p->nthreads++];
			ct->tid = tid;
			ct->regs = t.regs;
			added = 1;
		}
		closedir(d);
	}
	return 0;
}

void ckpt_detach_all(struct ckpt_proc *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		ptrace(PTRACE_DETACH, p->threads[i].tid, 0, 0);
}

void ckpt_kill_all(struct ckpt_proc *p)
{
	kill(p->pid, SIGKILL);
	/* The leader last: it is reapable only once the others are gone. */
	for (size_t k = 0; k <= p->nthreads; k++) {
		pid_t tid = k < p->nthreads ? p->threads[k].tid : p->pid;
		if (k < p->nthreads && tid == p->pid)
			continue;
		int st;
		pid_t r;
		do
			r = waitpid(tid, &st, __WALL);
		while ((r < 0 && errno == EINTR) || (r > 0 && !WIFEXITED(st) && !WIFSIGNALED(st)));
	}
}

void ckpt_proc_free(struct ckpt_proc *p)
{
	ckpt_procstate_free(p);
	free(p->threads);
	for (size_t i = 0; i < p->nvmas; i++)
		free(p->vmas[i].path);
	free(p->vmas);
	for (size_t i = 0; i < p->npages; i++)
		free(p->pages[i].data);
	free(p->pages);
	for (size_t i = 0; i < p->nfds; i++)
		free(p->fds[i].path);
	free(p->fds);
	if (p->mem_fd > 0)
		close(p->mem_fd);
	memset(p, 0, sizeof(*p));
}

/* NSpid, NSpgid, NSsid list an id in every pid namespace, innermost
 * last: the innermost is what the container sees (0: not in it). */
static pid_t ns_last(const char *status, const char *key, pid_t dflt)
{
	const char *ns = strstr(status, key);
	if (!ns)
		return dflt;
	ns += strlen(key);
	const char *eol = strchr(ns, '\n');
	const char *last = ns;
	for (const char *s = ns; *s && (!eol || s < eol); s++)
		if ((*s == ' ' || *s == '\t') && s[1] >= '0' && s[1] <= '9')
			last = s + 1;
	return (pid_t)atoi(last);
}

/* Per thread: xstate, mask, rseq, robust list, comm. */
static int capture_thread(struct ckpt_proc *p, struct ckpt_thread *ct, struct cv_error *err)
{
	struct iovec iov = {ct->xstate, sizeof(ct->xstate)};
	if (ptrace(PTRACE_GETREGSET, ct->tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return cv_errf(err, errno, "process %d thread %d: reading xstate", p->pid, ct->tid);
	/* A full buffer may be a cut one: SETREGSET would refuse it. */
	if (iov.iov_len >= sizeof(ct->xstate))
		return cv_errf(err, 0,
			       "process %d thread %d: this CPU's xstate is larger than %zu bytes",
			       p->pid, ct->tid, sizeof(ct->xstate));
	ct->xstate_len = iov.iov_len;
	if (ptrace(PTRACE_GETSIGMASK, ct->tid, (void *)sizeof(ct->sigmask), &ct->sigmask) < 0)
		return cv_errf(err, errno, "process %d thread %d: reading its signal mask", p->pid,
			       ct->tid);
	struct __ptrace_rseq_configuration rc = {0};
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, ct->tid, (void *)sizeof(rc), &rc) >= 0) {
		ct->rseq_ptr = rc.rseq_abi_pointer;
		ct->rseq_len = rc.rseq_abi_size;
		ct->rseq_sig = rc.signature;
	}
	void *head = NULL;
	size_t len = 0;
	if (syscall(SYS_get_robust_list, ct->tid, &head, &len) < 0)
		return cv_errf(err, errno, "process %d thread %d: reading its robust list", p->pid,
			       ct->tid);
	ct->robust_head = (uint64_t)(uintptr_t)head;
	ct->robust_len = len;
	char path[64], status[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", p->pid, ct->tid);
	if (procfs_read_text(path, status, sizeof(status), NULL, err) < 0)
		return -1;
	ct->ns_tid = ns_last(status, "NSpid:", ct->tid);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", p->pid, ct->tid);
	char comm[64];
	if (procfs_read_text(path, comm, sizeof(comm), NULL, err) < 0)
		return -1;
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(ct->comm, sizeof(ct->comm), "%s", comm);
	return 0;
}

static int add_pages(struct ckpt_proc *p, uint64_t addr, size_t len, int memfd,
		     struct cv_error *err)
{
	if (p->npages == CKPT_MAX_PAGE_RUNS)
		return cv_errf(err, 0,
			       "process %d: more than %d runs of saved pages is not supported by "
			       "checkpoint (kind: sparse memory)",
			       p->pid, CKPT_MAX_PAGE_RUNS);
	if (p->npages == p->cap_pages) {
		size_t cap = p->cap_pages ? p->cap_pages * 2 : 64;
		struct ckpt_pages *n = realloc(p->pages, cap * sizeof(*n));
		if (!n)
			return cv_errf(err, ENOMEM, "process %d: page runs", p->pid);
		p->pages = n;
		p->cap_pages = cap;
	}
	(void)memfd; /* read when the state file is written (ckpt_image_put) */
	p->pages[p->npages++] = (struct ckpt_pages){addr, len, NULL};
	p->page_bytes += len;
	return 0;
}

/* Saves the pages of one area that the file behind it does not hold:
 * every present or swapped page of an anonymous area, only the written
 * (no longer file-backed) ones of a private file mapping. */
static int capture_area_pages(struct ckpt_proc *p, const struct ckpt_vma *v, int pmfd, int memfd,
			      struct cv_error *err)
{
	static uint64_t pm[512];
	uint64_t run_start = 0;
	size_t run_len = 0;
	for (uint64_t a = v->start; a < v->end;) {
		size_t n = (size_t)((v->end - a) / PAGE);
		if (n > 512)
			n = 512;
		ssize_t r = pread(pmfd, pm, n * 8, (off_t)(a / PAGE * 8));
		if (r != (ssize_t)(n * 8))
			return cv_errf(err, r < 0 ? errno : EIO, "process %d: reading its pagemap",
				       p->pid);
		for (size_t i = 0; i < n; i++, a += PAGE) {
			uint64_t e = pm[i];
			int keep = (e & (PM_PRESENT | PM_SWAPPED)) &&
				   (v->kind != CKPT_VMA_FILE || !(e & PM_FILE));
			if (keep && run_len && run_start + run_len == a) {
				run_len += PAGE;
				continue;
			}
			if (run_len && add_pages(p, run_start, run_len, memfd, err) < 0)
				return -1;
			run_len = 0;
			if (keep) {
				run_start = a;
				run_len = PAGE;
			}
		}
	}
	if (run_len && add_pages(p, run_start, run_len, memfd, err) < 0)
		return -1;
	return 0;
}

static int capture_maps(struct ckpt_proc *p, struct cv_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return cv_errf(err, errno, "open %s", path);
	p->vmas = calloc(CKPT_MAX_VMAS, sizeof(*p->vmas));
	if (!p->vmas) {
		fclose(f);
		return cv_errf(err, ENOMEM, "process %d: mappings", p->pid);
	}
	char line[CKPT_PATH_MAX + 128];
	int rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		unsigned long lo, hi, off;
		char perms[5];
		int name_at = 0;
		if (sscanf(line, "%lx-%lx %4s %lx %*s %*s %n", &lo, &hi, perms, &off, &name_at) < 4) {
			rc = cv_errf(err, 0, "process %d: unreadable maps line \"%s\"", p->pid, line);
			break;
		}
		const char *name = name_at ? line + name_at : "";
		if (p->nvmas == CKPT_MAX_VMAS) {
			rc = cv_errf(err, 0, "process %d: more than %d mappings", p->pid,
				     CKPT_MAX_VMAS);
			break;
		}
		struct ckpt_vma *v = &p->vmas[p->nvmas];
		*v = (struct ckpt_vma){.start = lo, .end = hi, .pgoff = off};
		v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		if (!strcmp(name, "[vdso]"))
			v->kind = CKPT_VMA_VDSO;
		else if (!strcmp(name, "[vvar]"))
			v->kind = CKPT_VMA_VVAR;
		else if (!strcmp(name, "[vvar_vclock]"))
			v->kind = CKPT_VMA_VCLOCK;
		else if (!strcmp(name, "[vsyscall]"))
			v->kind = CKPT_VMA_VSYSCALL;
		else if (!strcmp(name, "[stack]"))
			v->kind = CKPT_VMA_STACK;
		else if (name[0] == '\0' || !strcmp(name, "[heap]"))
			v->kind = CKPT_VMA_ANON;
		else if (name[0] == '/' && !strstr(name, " (deleted)"))
			v->kind = CKPT_VMA_FILE;
		else {
			rc = cv_errf(err, 0,
				     "process %d: mapping %lx-%lx of \"%s\" is not supported by "
				     "checkpoint (kind: special or deleted file)",
				     p->pid, lo, hi, name);
			break;
		}
		if (perms[3] == 's' && v->kind != CKPT_VMA_VSYSCALL) {
			rc = cv_errf(err, 0,
				     "process %d: mapping %lx-%lx%s%s is shared, which checkpoint does "
				     "not support yet (kind: shared memory)",
				     p->pid, lo, hi, name[0] ? " of " : "", name);
			break;
		}
		if (v->kind == CKPT_VMA_FILE && !(v->path = strdup(name)))
			rc = cv_errf(err, ENOMEM, "process %d: mapping path", p->pid);
		p->nvmas++;
	}
	fclose(f);
	return rc;
}

static int capture_memory(struct ckpt_proc *p, struct cv_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	int pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		return cv_errf(err, errno, "open %s", path);
	snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
	/* Read-write: the tmpfs walk (kernel/ckpt_tmpfs.c) passes paths in. */
	int memfd = open(path, O_RDWR | O_CLOEXEC);
	if (memfd < 0) {
		close(pmfd);
		return cv_errf(err, errno, "open %s", path);
	}
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < p->nvmas; i++) {
		const struct ckpt_vma *v = &p->vmas[i];
		if (v->kind == CKPT_VMA_ANON || v->kind == CKPT_VMA_STACK || v->kind == CKPT_VMA_FILE)
			rc = capture_area_pages(p, v, pmfd, memfd, err);
	}
	close(pmfd);
	/* Kept: the contents are streamed from it when the file is written. */
	if (p->mem_fd > 0)
		close(p->mem_fd);
	p->mem_fd = memfd;
	return rc;
}

/* /proc/PID/stat fields 26-28 and 45-51 (1-based): the mm fields. */
static int capture_mm(struct ckpt_proc *p, struct cv_error *err)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", p->pid);
	if (procfs_read_text(path, buf, sizeof(buf), NULL, err) < 0)
		return -1;
	char *s = strrchr(buf, ')'); /* comm may hold spaces */
	if (!s)
		return cv_errf(err, 0, "process %d: unreadable stat", p->pid);
	uint64_t f[53] = {0};
	int field = 2;
	for (char *tok = strtok(s + 1, " "); tok && field < 52; tok = strtok(NULL, " "))
		f[++field] = strtoull(tok, NULL, 10);
	p->mm.start_code = f[26];
	p->mm.end_code = f[27];
	p->mm.start_stack = f[28];
	p->mm.start_data = f[45];
	p->mm.end_data = f[46];
	p->mm.start_brk = f[47];
	p->mm.arg_start = f[48];
	p->mm.arg_end = f[49];
	p->mm.env_start = f[50];
	p->mm.env_end = f[51];
	snprintf(path, sizeof(path), "/proc/%d/auxv", p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "open %s", path);
	ssize_t n = read(fd, p->auxv, sizeof(p->auxv));
	close(fd);
	if (n < 0)
		return cv_errf(err, errno, "read %s", path);
	p->auxv_words = (size_t)n / 8;
	return 0;
}

/* The fd table: regular files and directories by path; the caller's
 * external stdio; pipes (checked by kernel/ckpt_pipes.c: both ends must
 * be in the container); the harmless character devices by path.
 * Everything else is refused by name. */
static int capture_fds(struct ckpt_proc *p, ckpt_external_fn is_external, void *data,
		       struct cv_error *err)
{
	char dpath[64];
	snprintf(dpath, sizeof(dpath), "/proc/%d/fd", p->pid);
	DIR *d = opendir(dpath);
	if (!d)
		return cv_errf(err, errno, "open %s", dpath);
	p->fds = calloc(CKPT_MAX_FDS, sizeof(*p->fds));
	if (!p->fds) {
		closedir(d);
		return cv_errf(err, ENOMEM, "process %d: fds", p->pid);
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int fd = atoi(de->d_name);
		char lpath[96], link[CKPT_PATH_MAX], info[1024];
		snprintf(lpath, sizeof(lpath), "/proc/%d/fd/%d", p->pid, fd);
		ssize_t n = readlink(lpath, link, sizeof(link) - 1);
		if (n < 0) {
			rc = cv_errf(err, errno, "process %d fd %d: readlink", p->pid, fd);
			break;
		}
		link[n] = '\0';
		snprintf(lpath, sizeof(lpath), "/proc/%d/fdinfo/%d", p->pid, fd);
		if (procfs_read_text(lpath, info, sizeof(info), NULL, err) < 0) {
			rc = -1;
			break;
		}
		if (p->nfds == CKPT_MAX_FDS) {
			rc = cv_errf(err, 0, "process %d: more than %d fds", p->pid, CKPT_MAX_FDS);
			break;
		}
		struct ckpt_fd *cf = &p->fds[p->nfds];
		*cf = (struct ckpt_fd){.fd = fd};
		const char *s = strstr(info, "pos:");
		cf->pos = s ? strtoull(s + 4, NULL, 10) : 0;
		s = strstr(info, "flags:");
		int flags = s ? (int)strtol(s + 6, NULL, 8) : 0;
		cf->cloexec = (flags & O_CLOEXEC) != 0;
		cf->flags = flags & ~O_CLOEXEC;
		unsigned long long ino;
		if (is_external && is_external(data, fd, link, &cf->src)) {
			cf->kind = CKPT_FD_EXTERNAL;
		} else if (sscanf(link, "pipe:[%llu]", &ino) == 1) {
			/* Paired with its other end across the tree once every
			 * process is captured (kernel/ckpt_pipes.c). */
			cf->kind = CKPT_FD_PIPE;
			cf->pipe = ino;
		} else if (link[0] == '/' && !strstr(link, " (deleted)")) {
			cf->kind = CKPT_FD_FILE;
			if (!(cf->path = strdup(link))) {
				rc = cv_errf(err, ENOMEM, "process %d fd %d: path", p->pid, fd);
				break;
			}
		} else {
			const char *kind = !strncmp(link, "socket:", 7)	   ? "socket"
					   : !strncmp(link, "pipe:", 5)	   ? "pipe"
					   : !strncmp(link, "anon_inode:", 11) ? link + 11
									       : "deleted or special file";
			rc = cv_errf(err, 0,
				     "process %d fd %d (%s) is not supported by checkpoint (kind: %s)",
				     p->pid, fd, link, kind);
			break;
		}
		p->nfds++;
	}
	closedir(d);
	return rc;
}

/* The state only the process can tell: brk, handlers, sigaltstack and
 * each thread's clear_child_tid, asked by injected syscalls that write
 * their answers into a scratch page mapped for the purpose. */
static int capture_injected(struct ckpt_proc *p, const char *status, struct cv_error *err)
{
	struct pti t = {.tid = p->threads[0].tid, .regs = p->threads[0].regs};
	if (pti_find_syscall(&t, err) < 0)
		return -1;
	int64_t ret;
	if (pti_sys(&t, &ret, err, SYS_brk, 0, 0, 0, 0, 0, 0) < 0)
		return -1;
	p->mm.brk = (uint64_t)ret;
	struct pti_scratch sc;
	if (pti_scratch_open(&t, p->pid, &sc, err) < 0)
		return -1;
	int memfd = sc.memfd, rc = 0;
	uint64_t scratch = sc.addr;
	uint64_t caught = 0, ignored = 0;
	procfs_status_field(status, "SigCgt:", 16, &caught);
	procfs_status_field(status, "SigIgn:", 16, &ignored);
	uint64_t handled = caught | ignored;
	for (int sig = 1; rc == 0 && sig <= 64; sig++) {
		if (!(handled & (1ULL << (sig - 1))))
			continue;
		if (pti_sys(&t, &ret, err, SYS_rt_sigaction, (uint64_t)sig, 0, scratch, 8, 0, 0) < 0 ||
		    pti_mem_read(memfd, scratch, &p->sigact[sig - 1], sizeof(p->sigact[0]), err) < 0)
			rc = cv_error_wrap(err, "process %d: signal %d handler", p->pid, sig);
	}
	if (rc == 0) {
		uint64_t ss[3];
		if (pti_sys(&t, &ret, err, SYS_sigaltstack, 0, scratch, 0, 0, 0, 0) < 0 ||
		    pti_mem_read(memfd, scratch, ss, sizeof(ss), err) < 0)
			rc = cv_error_wrap(err, "process %d: sigaltstack", p->pid);
		p->sigaltstack_sp = ss[0];
		p->sigaltstack_flags = (int)ss[1];
		p->sigaltstack_size = ss[2];
	}
	for (size_t i = 0; rc == 0 && i < p->nthreads; i++) {
		struct pti ti = {.tid = p->threads[i].tid,
				 .regs = p->threads[i].regs,
				 .sys_ip = t.sys_ip};
		if (pti_sys(&ti, &ret, err, SYS_prctl, PR_GET_TID_ADDRESS, scratch, 0, 0, 0, 0) < 0 ||
		    pti_mem_read(memfd, scratch, &p->threads[i].clear_tid, 8, err) < 0)
			rc = cv_error_wrap(err, "process %d thread %d: tid address", p->pid, ti.tid);
		if (i && pti_restore_regs(&ti, err) < 0)
			rc = -1;
	}
	return pti_scratch_close(&t, &sc, rc, err);
}

/* Every thread's mask: all blocked (while we inject: a pending signal,
 * say the SIGCHLD of a child that ended just before the freeze, would
 * otherwise be delivered on the way back from our call, as a
 * signal-delivery stop in the middle of it), or as captured. */
static int set_masks(struct ckpt_proc *p, bool all, struct cv_error *err)
{
	for (size_t i = 0; i < p->nthreads; i++) {
		uint64_t m = all ? ~0ULL : p->threads[i].sigmask;
		if (ptrace(PTRACE_SETSIGMASK, p->threads[i].tid, (void *)sizeof(m), &m) < 0)
			return cv_errf(err, errno, "process %d thread %d: setting its signal mask",
				       p->pid, p->threads[i].tid);
	}
	return 0;
}

int ckpt_capture(struct ckpt_proc *p, ckpt_external_fn is_external, void *data,
		 struct cv_error *err)
{
	char path[64], status[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", p->pid);
	if (procfs_read_text(path, status, sizeof(status), NULL, err) < 0)
		return -1;
	p->ns_sid = ns_last(status, "NSsid:", 0);
	p->ns_pgid = ns_last(status, "NSpgid:", 0);
	const char *um = strstr(status, "Umask:");
	p->umask = um ? (unsigned)strtoul(um + 6, NULL, 8) : 022;
	snprintf(path, sizeof(path), "/proc/%d/cwd", p->pid);
	ssize_t n = readlink(path, p->cwd, sizeof(p->cwd) - 1);
	if (n < 0)
		return cv_errf(err, errno, "process %d: reading its cwd", p->pid);
	p->cwd[n] = '\0';
	for (size_t i = 0; i < p->nthreads; i++)
		if (capture_thread(p, &p->threads[i], err) < 0)
			return -1;
	if (capture_fds(p, is_external, data, err) < 0 || capture_maps(p, err) < 0 ||
	    capture_mm(p, err) < 0 || set_masks(p, true, err) < 0)
		return -1;
	int rc = capture_injected(p, status, err);
	if (rc == 0)
		rc = ckpt_procstate_capture(p, err);
	struct cv_error merr = {0};
	if (set_masks(p, false, &merr) < 0 && rc == 0) {
		*err = merr;
		rc = -1;
	}
	if (rc < 0)
		return -1;
	/* Memory last: the injected calls above mapped and unmapped a
	 * scratch page, which must not be in the saved areas. */
	return capture_memory(p, err);
}

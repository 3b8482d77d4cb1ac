/* Rebuilding one captured process (kernel/ckpt_proc.h) in a fresh stub.
 *
 * The stub is a traced exec of a static program: exec gives a clean
 * process (no rseq, robust list or handlers left over from us). We then
 * drive it by injected syscalls through a trampoline (a code page and a
 * writable batch area, kernel/restore_internal.h) mapped where neither
 * layout has anything: unmap everything of the stub but its
 * vDSO, move [vvar], [vvar_vclock] and [vdso] together onto the old
 * addresses (the vDSO code reads vvar at fixed offsets, so they move as a
 * block), map every saved area at its address with its protections, write
 * the saved pages through /proc/PID/mem (which ignores protections), then
 * the mm fields, handlers, cwd, umask and fds, then each thread (clone3
 * with its old tid), and finally the registers with the kernel's syscall
 * restart applied by hand. Calls that need nothing of each other's
 * results between them go in batches, one ptrace resume each
 * (kernel/restore_batch.c). Notes: docs/DESIGN.md, "Checkpoint and
 * restore". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <elf.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/ckpt_proc.h"
#include "kernel/ckpt_procstate.h"
#include "kernel/ckpt_tmpfs.h"
#include "kernel/ptrace_inject.h"
#include "kernel/restore_internal.h"

#define PAGE RST_PAGE

static int overlaps(uint64_t a, uint64_t b, uint64_t lo, uint64_t hi)
{
	return a < hi && lo < b;
}

/* A free range of len bytes in both the saved layout and the stub's. */
static uint64_t free_range(const struct rst *r, uint64_t len, uint64_t from)
{
	for (uint64_t a = from; a < (1ULL << 46); a += 1ULL << 30) {
		int busy = 0;
		for (size_t i = 0; !busy && i < r->p->nvmas; i++)
			busy = overlaps(a, a + len, r->p->vmas[i].start, r->p->vmas[i].end);
		for (size_t i = 0; !busy && i < r->nstub; i++)
			busy = overlaps(a, a + len, r->stub[i].start, r->stub[i].end);
		/* The trampoline is inherited by the children forked from
		 * it: it must be free in every process of the tree. */
		for (size_t k = 0; !busy && k < r->nall; k++)
			for (size_t i = 0; !busy && i < r->all[k].nvmas; i++)
				busy = overlaps(a, a + len, r->all[k].vmas[i].start,
						r->all[k].vmas[i].end);
		if (!busy)
			return a;
	}
	return 0;
}

static int read_stub_maps(struct rst *r, struct cv_error *err)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", r->t.tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return cv_errf(err, errno, "open %s", path);
	r->nstub = 0;
	while (fgets(line, sizeof(line), f) && r->nstub < 64) {
		unsigned long lo, hi;
		int at = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) < 2)
			continue;
		line[strcspn(line, "\n")] = '\0';
		r->stub[r->nstub] = (struct rst_area){lo, hi};
		snprintf(r->stub_names[r->nstub], sizeof(r->stub_names[0]), "%s", at ? line + at : "");
		r->stub_name[r->nstub] = r->stub_names[r->nstub];
		r->nstub++;
	}
	fclose(f);
	return 0;
}

/* Runs a syscall in the main thread; a negative result is an error
 * naming what we asked. */
int rst_sys(struct rst *r, int64_t *out, const char *what, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, struct cv_error *err)
{
	int64_t ret;
	if (pti_sys(&r->t, &ret, err, nr, a1, a2, a3, a4, a5, a6) < 0)
		return cv_error_wrap(err, "restoring process %d: %s", r->p->pid, what);
	if (ret < 0 && ret > -4096)
		return cv_errf(err, (int)-ret, "restoring process %d: %s", r->p->pid, what);
	if (out)
		*out = ret;
	return 0;
}

int rst_put_scratch(struct rst *r, const void *buf, size_t len, struct cv_error *err)
{
	if (len > PAGE - SCRATCH_OFF)
		return cv_errf(err, 0, "restoring process %d: %zu bytes do not fit the scratch page",
			       r->p->pid, len);
	return pti_mem_write(r->memfd, r->tramp + SCRATCH_OFF, buf, len, err);
}

int rst_bootstrap(struct rst *r, struct cv_error *err)
{
	static const unsigned char sc[2] = {0x0f, 0x05};
	/* The stub stopped right after exec, at its entry point: a syscall
	 * written there (copy-on-write through /proc/PID/mem) is our first
	 * injection point. */
	if (pti_mem_write(r->memfd, r->t.regs.rip, sc, 2, err) < 0)
		return -1;
	r->t.sys_ip = r->t.regs.rip;
	if (read_stub_maps(r, err) < 0)
		return -1;
	uint64_t tramp = free_range(r, RST_TRAMP_LEN, 1ULL << 40);
	if (!tramp)
		return cv_errf(err, 0, "restoring process %d: no room for the trampoline", r->p->pid);
	int64_t got;
	if (rst_sys(r, &got, "mapping the trampoline", SYS_mmap, tramp, PAGE, PROT_READ | PROT_EXEC,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, err) < 0)
		return -1;
	r->tramp = tramp;
	/* syscall; int3: each later call is one ptrace stop, not two. */
	static const unsigned char sc_trap[3] = {0x0f, 0x05, 0xcc};
	if (pti_mem_write(r->memfd, tramp, sc_trap, 3, err) < 0 ||
	    ptb_write_code(r->memfd, tramp + BATCH_CODE_OFF, err) < 0)
		return -1;
	r->t.sys_ip = tramp;
	r->t.int3_after = 1;
	/* The batch area: writable, so the code page never is. */
	return rst_sys(r, &got, "mapping the batch area", SYS_mmap, tramp + PAGE, PTB_AREA_LEN,
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		       (uint64_t)-1, 0, err);
}

static const struct ckpt_vma *saved_special(const struct ckpt_proc *p, enum ckpt_vma_kind k)
{
	for (size_t i = 0; i < p->nvmas; i++)
		if (p->vmas[i].kind == k)
			return &p->vmas[i];
	return NULL;
}

/* Unmaps the stub's own areas, then moves its vvar/vvar_vclock/vdso block
 * onto the saved addresses, through a free area (the two may overlap). */
static int clear_and_move_vdso(struct rst *r, struct cv_error *err)
{
	static const struct {
		const char *name;
		enum ckpt_vma_kind kind;
	} special[3] = {{"[vvar]", CKPT_VMA_VVAR},
			{"[vvar_vclock]", CKPT_VMA_VCLOCK},
			{"[vdso]", CKPT_VMA_VDSO}};
	struct rst_area cur[3] = {{0, 0}, {0, 0}, {0, 0}};
	for (size_t i = 0; i < r->nstub; i++) {
		const struct rst_area *a = &r->stub[i];
		int keep = (a->start >= r->tramp && a->start < r->tramp + RST_TRAMP_LEN) ||
			   !strcmp(r->stub_name[i], "[vsyscall]");
		for (int s = 0; s < 3; s++)
			if (!strcmp(r->stub_name[i], special[s].name)) {
				cur[s] = *a;
				keep = 1;
			}
		char what[96];
		snprintf(what, sizeof(what), "unmapping the stub's %s at 0x%llx",
			 r->stub_name[i][0] ? r->stub_name[i] : "area", (unsigned long long)a->start);
		if (!keep && rst_batch_call(r, what, SYS_munmap, a->start, a->end - a->start, 0, 0,
					    0, 0, err) < 0)
			return -1;
	}
	uint64_t base = 0;
	for (int s = 0; s < 3; s++)
		if (cur[s].start && (!base || cur[s].start < base))
			base = cur[s].start;
	uint64_t span = 0;
	for (int s = 0; s < 3; s++)
		if (cur[s].end - base > span)
			span = cur[s].end - base;
	uint64_t tmp = free_range(r, span, (1ULL << 40) + (1ULL << 31));
	if (!tmp)
		return cv_errf(err, 0, "restoring process %d: no room to move the vdso", r->p->pid);
	for (int pass = 0; pass < 2; pass++) {
		for (int s = 0; s < 3; s++) {
			if (!cur[s].start)
				continue;
			const struct ckpt_vma *v = saved_special(r->p, special[s].kind);
			uint64_t len = cur[s].end - cur[s].start;
			if (!v || v->end - v->start != len)
				return cv_errf(err, 0,
					       "restoring process %d: the %s area differs from the saved "
					       "one (a checkpoint restores only on the same kernel)",
					       r->p->pid, special[s].name);
			uint64_t to = pass == 0 ? tmp + (cur[s].start - base) : v->start;
			char what[96];
			snprintf(what, sizeof(what), "moving %s from 0x%llx to 0x%llx",
				 special[s].name, (unsigned long long)cur[s].start,
				 (unsigned long long)to);
			if (rst_batch_call(r, what, SYS_mremap, cur[s].start, len, len,
					   MREMAP_MAYMOVE | MREMAP_FIXED, to, 0, err) < 0)
				return -1;
			cur[s].start = to;
			cur[s].end = to + len;
		}
	}
	/* Queued: the areas' mmaps follow in the same batch (map_areas). */
	return 0;
}

static const struct ckpt_tmpfs *restore_files;

void restore_set_files(const struct ckpt_tmpfs *fs)
{
	restore_files = fs;
}

static restore_pages_fn page_source;
static void *page_source_data;

void restore_set_page_source(restore_pages_fn fn, void *src)
{
	page_source = fn;
	page_source_data = src;
}

static int put_mem(void *opaque, uint64_t addr, const void *data, size_t len,
		   struct cv_error *err)
{
	return pti_mem_write(*(int *)opaque, addr, data, len, err);
}

/* "rw-p" and the like, for the labels. */
static void prot_text(int prot, char out[5])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = 'p';
	out[4] = '\0';
}

/* A private file mapping: opened by the restored process itself, so the
 * path resolves in its own root and mount namespace; the mmap and the
 * close take the fd from the openat's result in the same batch. */
static int map_file(struct rst *r, const struct ckpt_vma *v, const char *prot,
		    struct cv_error *err)
{
	char open_what[CKPT_PATH_MAX + 64], map_what[CKPT_PATH_MAX + 64], close_what[CKPT_PATH_MAX + 32];
	snprintf(open_what, sizeof(open_what), "opening %s to map it", v->path);
	snprintf(map_what, sizeof(map_what), "mmap of %s at 0x%llx (%s)", v->path,
		 (unsigned long long)v->start, prot);
	snprintf(close_what, sizeof(close_what), "closing %s", v->path);
	size_t pl = strlen(v->path) + 1;
	uint64_t path;
	if (rst_batch_fit(r, 3, pl,
			  strlen(open_what) + strlen(map_what) + strlen(close_what) + 3, err) < 0 ||
	    rst_batch_data(r, v->path, pl, &path, err) < 0)
		return -1;
	int fd = rst_batch_add(r, open_what, SYS_openat, (uint64_t)AT_FDCWD, path,
			       O_RDONLY | O_CLOEXEC, 0, 0, 0, err);
	int map = fd < 0 ? -1 : rst_batch_add(r, map_what, SYS_mmap, v->start, v->end - v->start,
					      (uint64_t)v->prot, MAP_PRIVATE | MAP_FIXED, 0,
					      v->pgoff, err);
	int cl = map < 0 ? -1 : rst_batch_add(r, close_what, SYS_close, 0, 0, 0, 0, 0, 0, err);
	if (cl < 0 || rst_batch_link(r, map, 5, fd, err) < 0 || rst_batch_link(r, cl, 1, fd, err) < 0)
		return -1;
	return 0;
}

/* Every area at its address with its protections, in batches. MAP_FIXED
 * either lands exactly there or fails. */
static int map_areas(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	for (size_t i = 0; i < p->nvmas; i++) {
		const struct ckpt_vma *v = &p->vmas[i];
		char prot[5], what[96];
		prot_text(v->prot, prot);
		if (v->kind == CKPT_VMA_ANON || v->kind == CKPT_VMA_STACK) {
			uint64_t fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
				      (v->kind == CKPT_VMA_STACK ? MAP_GROWSDOWN : 0);
			snprintf(what, sizeof(what), "mmap of 0x%llx-0x%llx (%s)",
				 (unsigned long long)v->start, (unsigned long long)v->end, prot);
			if (rst_batch_call(r, what, SYS_mmap, v->start, v->end - v->start,
					   (uint64_t)v->prot, fl, (uint64_t)-1, 0, err) < 0)
				return -1;
		} else if (v->kind == CKPT_VMA_FILE && map_file(r, v, prot, err) < 0) {
			return -1;
		}
	}
	/* The pages are written into the areas next: they must exist. */
	if (rst_batch_run(r, err) < 0)
		return -1;
	bool streamed = false;
	for (size_t i = 0; i < p->npages; i++) {
		if (!p->pages[i].data) {
			streamed = true;
			continue;
		}
		if (pti_mem_write(r->memfd, p->pages[i].addr, p->pages[i].data, p->pages[i].len,
				  err) < 0)
			return cv_error_wrap(err, "restoring process %d", p->pid);
	}
	if (!streamed)
		return 0;
	if (!page_source)
		return cv_errf(err, 0, "restoring process %d: no source for its pages", p->pid);
	return page_source(page_source_data, p, put_mem, &r->memfd, err);
}

/* PR_SET_MM_MAP, queued: the auxv goes first in the batch data, so the
 * map can point at it. */
static int restore_mm(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	size_t aux_bytes = p->auxv_words * 8;
	struct prctl_mm_map m;
	uint64_t aux_at, m_at;
	if (aux_bytes > sizeof(p->auxv))
		return cv_errf(err, 0, "restoring process %d: auxv too large", p->pid);
	if (rst_batch_fit(r, 1, aux_bytes + sizeof(m), sizeof("PR_SET_MM_MAP"), err) < 0 ||
	    rst_batch_data(r, p->auxv, aux_bytes, &aux_at, err) < 0)
		return -1;
	m = (struct prctl_mm_map){
		.start_code = p->mm.start_code,
		.end_code = p->mm.end_code,
		.start_data = p->mm.start_data,
		.end_data = p->mm.end_data,
		.start_brk = p->mm.start_brk,
		.brk = p->mm.brk,
		.start_stack = p->mm.start_stack,
		.arg_start = p->mm.arg_start,
		.arg_end = p->mm.arg_end,
		.env_start = p->mm.env_start,
		.env_end = p->mm.env_end,
		.auxv = (__u64 *)(uintptr_t)aux_at,
		.auxv_size = (uint32_t)aux_bytes,
		.exe_fd = (uint32_t)-1,
	};
	if (rst_batch_data(r, &m, sizeof(m), &m_at, err) < 0 ||
	    rst_batch_add(r, "PR_SET_MM_MAP", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, m_at, sizeof(m),
			  0, 0, err) < 0)
		return -1;
	return 0;
}

/* Queues a call whose argument `arg` (1..6) points at a copy of len
 * bytes placed in the batch data; a[] holds the others. */
static int call_on(struct rst *r, const char *what, const void *buf, size_t len, int arg, long nr,
		   uint64_t a[6], struct cv_error *err)
{
	if (rst_batch_fit(r, 1, len, strlen(what) + 1, err) < 0 ||
	    rst_batch_data(r, buf, len, &a[arg - 1], err) < 0 ||
	    rst_batch_add(r, what, nr, a[0], a[1], a[2], a[3], a[4], a[5], err) < 0)
		return -1;
	return 0;
}

/* Handlers, sigaltstack, umask and cwd: queued, none needs another. */
static int restore_signals_and_fs(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	for (int sig = 1; sig <= 64; sig++) {
		const struct ckpt_sigaction *a = &p->sigact[sig - 1];
		if (sig == SIGKILL || sig == SIGSTOP || (!a->handler && !a->flags))
			continue;
		char what[32];
		snprintf(what, sizeof(what), "signal %d handler", sig);
		if (call_on(r, what, a, sizeof(*a), 2, SYS_rt_sigaction,
			    (uint64_t[6]){(uint64_t)sig, 0, 0, 8, 0, 0}, err) < 0)
			return -1;
	}
	if (p->sigaltstack_sp && !(p->sigaltstack_flags & SS_DISABLE)) {
		uint64_t ss[3] = {p->sigaltstack_sp, 0, p->sigaltstack_size};
		if (call_on(r, "sigaltstack", ss, sizeof(ss), 1, SYS_sigaltstack,
			    (uint64_t[6]){0}, err) < 0)
			return -1;
	}
	char what[CKPT_PATH_MAX + 16];
	snprintf(what, sizeof(what), "chdir to %s", p->cwd);
	if (rst_batch_call(r, "umask", SYS_umask, p->umask, 0, 0, 0, 0, 0, err) < 0 ||
	    call_on(r, what, p->cwd, strlen(p->cwd) + 1, 1, SYS_chdir, (uint64_t[6]){0}, err) < 0)
		return -1;
	return 0;
}

/* Queues closing the process's fds below `below` (hi 0) or from `below`
 * up (hi 1): the listing is of its fd table, no path of the container.
 * Listed now, closed when the batch runs: the calls queued before these
 * make no fds at or above the base (files are opened below it, see
 * place_file), so the listing is what the batch finds. */
static int close_fds(struct rst *r, int below, int hi, struct cv_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", r->t.tid);
	DIR *d = opendir(path);
	if (!d)
		return cv_errf(err, errno, "restoring process %d: listing its fds", r->p->pid);
	int fds[CKPT_MAX_FDS + 16], n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < (int)(sizeof(fds) / sizeof(fds[0])))
		if (de->d_name[0] != '.')
			fds[n++] = atoi(de->d_name);
	closedir(d);
	for (int i = 0; i < n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "closing inherited fd %d", fds[i]);
		if ((fds[i] < below) != hi &&
		    rst_batch_call(r, what, SYS_close, (uint64_t)fds[i], 0, 0, 0, 0, 0, err) < 0)
			return -1;
	}
	return 0;
}

/* Tree mode: where the fd's object waits (r->fd_base + k). */
static int waiting_fd(const struct rst *r, const struct ckpt_fd *f)
{
	if (f->kind == CKPT_FD_EXTERNAL)
		return r->fd_base + f->src;
	for (size_t i = 0; i < r->npipes; i++)
		if (r->pipes[i].ino == f->pipe)
			return r->fd_base + 3 + 2 * (int)i + ((f->flags & O_ACCMODE) == O_WRONLY);
	return -1;
}

/* A file fd, reopened by path by the process: openat gives the lowest
 * free number X, which dup3 moves to the saved one and close drops; both
 * take X from the openat's result, and both are skipped when X already is
 * the saved number. Then the offset, which not every file has (/dev/null
 * answers 0, a FIFO ESPIPE): that lseek may fail. */
static int place_file(struct rst *r, const struct ckpt_fd *f, struct cv_error *err)
{
	char what[CKPT_PATH_MAX + 32], seek_what[CKPT_PATH_MAX + 48];
	snprintf(what, sizeof(what), "fd %d (%s)", f->fd, f->path);
	snprintf(seek_what, sizeof(seek_what), "fd %d (%s): lseek", f->fd, f->path);
	int flags = f->flags & ~(O_CREAT | O_TRUNC | O_EXCL);
	size_t pl = strlen(f->path) + 1;
	uint64_t path;
	if (rst_batch_fit(r, 4, pl, 3 * (strlen(what) + 1) + strlen(seek_what) + 1, err) < 0 ||
	    rst_batch_data(r, f->path, pl, &path, err) < 0)
		return -1;
	int fd = rst_batch_add(r, what, SYS_openat, (uint64_t)AT_FDCWD, path, (uint64_t)flags, 0, 0,
			       0, err);
	int dup = fd < 0 ? -1 : rst_batch_add(r, what, SYS_dup3, 0, (uint64_t)f->fd, 0, 0, 0, 0, err);
	/* close(X, saved): the second argument is there for PTB_SKIP_SAME. */
	int cl = dup < 0 ? -1 : rst_batch_add(r, what, SYS_close, 0, (uint64_t)f->fd, 0, 0, 0, 0, err);
	int seek = cl < 0 ? -1 : rst_batch_add(r, seek_what, SYS_lseek, (uint64_t)f->fd, f->pos,
					       SEEK_SET, 0, 0, 0, err);
	if (seek < 0 || rst_batch_link(r, dup, 1, fd, err) < 0 ||
	    rst_batch_link(r, cl, 1, fd, err) < 0 || rst_batch_flags(r, dup, PTB_SKIP_SAME, err) < 0 ||
	    rst_batch_flags(r, cl, PTB_SKIP_SAME, err) < 0 ||
	    rst_batch_flags(r, seek, PTB_MAY_FAIL, err) < 0)
		return -1;
	return 0;
}

/* Every fd at its number, queued (the batch runs in rst_rebuild). */
static int restore_fds(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	/* Tree mode: nothing it inherited stays but what waits above. */
	if (r->fd_base && close_fds(r, r->fd_base, 0, err) < 0)
		return -1;
	for (size_t i = 0; i < p->nfds; i++) {
		const struct ckpt_fd *f = &p->fds[i];
		if (r->fd_base && f->kind != CKPT_FD_FILE) {
			char what[64];
			snprintf(what, sizeof(what), "fd %d (%s)", f->fd,
				 f->kind == CKPT_FD_PIPE ? "pipe" : "external stdio");
			int from = waiting_fd(r, f);
			if (from < 0)
				return cv_errf(err, 0, "restoring process %d: %s: no such pipe", p->pid,
					       what);
			if (rst_batch_call(r, what, SYS_dup3, (uint64_t)from, (uint64_t)f->fd, 0, 0, 0,
					   0, err) < 0)
				return -1;
		} else if (f->kind == CKPT_FD_PIPE) {
			return cv_errf(err, 0, "restoring process %d: fd %d is a pipe, restored only "
					       "with its tree", p->pid, f->fd);
		}
		if (f->kind == CKPT_FD_FILE && place_file(r, f, err) < 0)
			return -1;
		char what[48];
		snprintf(what, sizeof(what), "fd %d: fcntl F_SETFD", f->fd);
		if (f->cloexec && rst_batch_call(r, what, SYS_fcntl, (uint64_t)f->fd, F_SETFD,
						 FD_CLOEXEC, 0, 0, 0, err) < 0)
			return -1;
	}
	return r->fd_base ? close_fds(r, r->fd_base, 1, err) : 0;
}

/* The kernel's syscall restart, done by hand: the thread was taken inside
 * an interrupted syscall, and the restart logic would run on registers we
 * set otherwise. A sleep whose restart block is kernel state is simply
 * run again (relative sleeps then sleep at most one interval longer). */
static void restart_fixup(struct user_regs_struct *g)
{
	long rax = (long)g->rax;
	if ((long)g->orig_rax >= 0) {
		if (rax == -512 || rax == -513 || rax == -514) { /* ERESTARTSYS, NOINTR, NOHAND */
			g->rax = g->orig_rax;
			g->rip -= 2;
		} else if (rax == -516) { /* ERESTART_RESTARTBLOCK */
			if (g->orig_rax == SYS_nanosleep || g->orig_rax == SYS_clock_nanosleep) {
				g->rax = g->orig_rax;
				g->rip -= 2;
			} else {
				g->rax = (unsigned long long)-EINTR;
			}
		}
	}
	g->orig_rax = (unsigned long long)-1;
}

/* Per-thread state a thread can only set for itself: one batch run in
 * that thread (the area is shared by the threads, used by one at a time). */
static int thread_state(struct rst *r, struct pti *t, const struct ckpt_thread *ct,
			struct cv_error *err)
{
	/* Anything still queued is the main thread's to run, not this one's. */
	if (rst_batch_run(r, err) < 0)
		return -1;
	struct pti save = r->t;
	r->t = *t;
	int rc = 0;
	char what[48];
	snprintf(what, sizeof(what), "thread %d: rseq", ct->tid);
	if (ct->rseq_ptr)
		rc = rst_batch_call(r, what, SYS_rseq, ct->rseq_ptr, ct->rseq_len, 0, ct->rseq_sig, 0,
				    0, err);
	snprintf(what, sizeof(what), "thread %d: set_robust_list", ct->tid);
	if (rc >= 0 && ct->robust_head)
		rc = rst_batch_call(r, what, SYS_set_robust_list, ct->robust_head, ct->robust_len, 0,
				    0, 0, 0, err);
	snprintf(what, sizeof(what), "thread %d: set_tid_address", ct->tid);
	if (rc >= 0)
		rc = rst_batch_call(r, what, SYS_set_tid_address, ct->clear_tid, 0, 0, 0, 0, 0, err);
	snprintf(what, sizeof(what), "thread %d: PR_SET_NAME", ct->tid);
	if (rc >= 0)
		rc = call_on(r, what, ct->comm, sizeof(ct->comm), 2, SYS_prctl,
			     (uint64_t[6]){PR_SET_NAME, 0, 0, 0, 0, 0}, err);
	if (rc >= 0)
		rc = rst_batch_run(r, err);
	r->t = save;
	if (rc >= 0 &&
	    ptrace(PTRACE_SETSIGMASK, t->tid, (void *)sizeof(ct->sigmask), &ct->sigmask) < 0)
		rc = cv_errf(err, errno, "restoring thread %d: signal mask", ct->tid);
	return rc < 0 ? -1 : 0;
}

static int set_final_regs(pid_t tid, const struct ckpt_thread *ct, struct cv_error *err)
{
	struct iovec iov = {(void *)ct->xstate, ct->xstate_len};
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		int e = errno;
		/* The kernel takes only a buffer of its own size (EFAULT
		 * otherwise): a file from a CPU with other features. */
		static unsigned char here[CKPT_XSTATE_MAX];
		struct iovec q = {here, sizeof(here)};
		if (e == EFAULT && ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &q) == 0 &&
		    q.iov_len != ct->xstate_len)
			return cv_errf(err, 0,
				       "restoring thread %d: its xstate holds %zu bytes, this CPU's "
				       "%zu (a state file restores only on a CPU with the same "
				       "features)",
				       ct->tid, ct->xstate_len, q.iov_len);
		return cv_errf(err, e, "restoring thread %d: xstate", ct->tid);
	}
	struct user_regs_struct g = ct->regs;
	restart_fixup(&g);
	if (ptrace(PTRACE_SETREGS, tid, 0, &g) < 0)
		return cv_errf(err, errno, "restoring thread %d: registers", ct->tid);
	return 0;
}

/* Makes the next id handed out in pid's pid namespace `want`, for a
 * process that may not ask for it with set_tid itself (clone3's set_tid
 * needs CAP_CHECKPOINT_RESTORE in the namespace's owner, which a
 * container's process has dropped before it was exec'd). ns_last_pid
 * acts on the writer's own pid namespace, so a grandchild of ours born in
 * the target's namespace writes it, with our (host) privileges. Nothing
 * else forks there meanwhile: the restored process is stopped by us. */
int rst_set_ns_last_pid(pid_t pid, pid_t want, struct cv_error *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return cv_errf(err, errno, "pidfd of process %d", pid);
	pid_t c = fork();
	if (c == 0) {
		if (setns(pidfd, CLONE_NEWPID) < 0)
			_exit(10);
		pid_t g = fork();
		if (g == 0) {
			char v[16];
			int n = snprintf(v, sizeof(v), "%d", want - 1);
			int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
			_exit(fd < 0 ? 11 : write(fd, v, (size_t)n) == n ? 0 : 12);
		}
		int st = 0;
		if (g < 0 || waitpid(g, &st, 0) < 0)
			_exit(13);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 14);
	}
	close(pidfd);
	int st = 0;
	if (c < 0 || waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return cv_errf(err, 0, "setting ns_last_pid to %d in the namespace of %d (step %d)",
			       want - 1, pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* The other threads, each made by clone3 in the main thread with its old
 * tid; the new thread is traced (TRACECLONE) and stops before running. */
static int make_threads(struct rst *r, pid_t *tids, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	for (size_t i = 1; i < p->nthreads; i++) {
		struct {
			struct clone_args a;
			uint64_t tid;
		} b;
		memset(&b, 0, sizeof(b));
		b.a.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			    CLONE_SYSVSEM;
		b.tid = (uint64_t)p->threads[i].tid;
		b.a.set_tid = r->tramp + SCRATCH_OFF + offsetof(__typeof__(b), tid);
		b.a.set_tid_size = 1;
		int64_t tid;
		if (rst_put_scratch(r, &b, sizeof(b), err) < 0 ||
		    pti_sys(&r->t, &tid, err, SYS_clone3, r->tramp + SCRATCH_OFF, sizeof(b.a), 0, 0,
			    0, 0) < 0)
			return cv_error_wrap(err, "thread %d", p->threads[i].tid);
		if (tid == -EPERM) {
			/* Not allowed to name the id: have it handed out next. */
			b.a.set_tid = 0;
			b.a.set_tid_size = 0;
			if (rst_set_ns_last_pid(r->t.tid, p->threads[i].tid, err) < 0 ||
			    rst_put_scratch(r, &b, sizeof(b), err) < 0 ||
			    pti_sys(&r->t, &tid, err, SYS_clone3, r->tramp + SCRATCH_OFF, sizeof(b.a),
				    0, 0, 0, 0) < 0)
				return cv_error_wrap(err, "thread %d", p->threads[i].tid);
		}
		if (tid < 0)
			return cv_errf(err, (int)-tid, "restoring process %d: clone3 of thread %d",
				       p->pid, p->threads[i].tid);
		if (tid != p->threads[i].tid)
			return cv_errf(err, 0, "restoring process %d: thread %d came back as %d",
				       p->pid, p->threads[i].tid, (int)tid);
		/* tid is the id in the process's namespace; ptrace wants ours.
		 * The new thread reports its stop under its host id: take the
		 * first new thread stop we see. */
		int st;
		pid_t host = waitpid(-1, &st, __WALL);
		if (host < 0)
			return cv_errf(err, errno, "waiting for the new thread %d", p->threads[i].tid);
		tids[i] = host;
		tid = host;
		struct pti t = {.tid = (pid_t)tid, .sys_ip = r->tramp, .int3_after = 1};
		if (ptrace(PTRACE_GETREGS, (pid_t)tid, 0, &t.regs) < 0)
			return cv_errf(err, errno, "restoring thread %d: registers", (int)tid);
		if (thread_state(r, &t, &p->threads[i], err) < 0)
			return -1;
	}
	return 0;
}

/* Forks the stub with clone3, keeping the saved pid when the kernel lets
 * us (the caller is in the process's pid namespace and the pid is free),
 * places the external fds, and execs stub_exe traced. */
static pid_t spawn_stub(const struct ckpt_proc *p, const char *stub_exe, const int *ext_fd,
			const int *ext, size_t n, struct cv_error *err)
{
	uint64_t want = (uint64_t)p->pid;
	struct clone_args a = {.exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&want,
			       .set_tid_size = 1};
	pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	if (pid < 0 && (errno == EEXIST || errno == EPERM || errno == EINVAL)) {
		a.set_tid = 0;
		a.set_tid_size = 0;
		pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	}
	if (pid < 0)
		return cv_errf(err, errno, "restoring process %d: clone3 of the stub", p->pid);
	if (pid == 0) {
		/* Move the external fds out of the way, then into place. */
		int hi[CKPT_MAX_FDS];
		for (size_t i = 0; i < n && i < CKPT_MAX_FDS; i++)
			hi[i] = fcntl(ext[i], F_DUPFD_CLOEXEC, 1024);
		for (size_t i = 0; i < n && i < CKPT_MAX_FDS; i++)
			if (hi[i] < 0 || dup2(hi[i], ext_fd[i]) < 0)
				_exit(126);
		for (int fd = 0; fd < 1024; fd++) {
			int keep = 0;
			for (size_t i = 0; i < n; i++)
				keep |= ext_fd[i] == fd;
			if (!keep)
				close(fd);
		}
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			_exit(126);
		char *argv[] = {(char *)stub_exe, NULL}, *envp[] = {NULL};
		execve(stub_exe, argv, envp);
		_exit(127);
	}
	return pid;
}

int rst_rebuild(struct rst *r, struct cv_error *err)
{
	const struct ckpt_proc *p = r->p;
	r->tids[0] = r->t.tid;
	int rc = read_stub_maps(r, err);
	if (rc == 0)
		rc = clear_and_move_vdso(r, err);
	if (rc == 0)
		rc = map_areas(r, err);
	if (rc == 0)
		rc = restore_mm(r, err);
	if (rc == 0)
		rc = restore_signals_and_fs(r, err);
	if (rc == 0)
		rc = restore_fds(r, err);
	/* mm, handlers, cwd and fds went in one batch (or a few). */
	if (rc == 0)
		rc = rst_batch_run(r, err);
	if (rc == 0 && r->files && restore_files)
		rc = ckpt_tmpfs_restore(restore_files, &r->t, r->memfd, r->tramp + BATCH_CODE_OFF,
					r->tramp + PAGE, err);
	if (rc == 0)
		rc = make_threads(r, r->tids, err);
	if (rc == 0) {
		struct pti main_t = r->t;
		rc = thread_state(r, &main_t, &p->threads[0], err);
	}
	/* Pending signals, limits, then credentials, capabilities and
	 * no_new_privs: last, once nothing else needs their privileges. */
	if (rc == 0)
		rc = rst_procstate_apply(r, err);
	/* The trampoline goes last: we stop at the exit of this munmap (a
	 * syscall stop: its int3 is gone with it) and replace rip, so nothing
	 * runs from the unmapped page. */
	r->t.int3_after = 0;
	if (rc == 0)
		rc = rst_sys(r, NULL, "unmapping the trampoline", SYS_munmap, r->tramp, RST_TRAMP_LEN,
			     0, 0, 0, 0, err);
	for (size_t i = 0; rc == 0 && i < p->nthreads; i++)
		rc = set_final_regs(r->tids[i], &p->threads[i], err);
	return rc;
}

/* Rebuilds p in pid, a traced process stopped right after its exec whose
 * registers are in t0 (options TRACESYSGOOD and TRACECLONE set). */
static int restore_into(const struct ckpt_proc *p, pid_t pid, const struct pti *t0,
			struct cv_error *err)
{
	struct rst r = {.p = p, .memfd = -1, .t = *t0};
	rst_batch_drop();
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	r.memfd = open(path, O_RDWR | O_CLOEXEC);
	int rc = r.memfd < 0 ? cv_errf(err, errno, "open %s", path) : 0;
	if (rc == 0)
		rc = rst_bootstrap(&r, err);
	if (rc == 0)
		rc = rst_rebuild(&r, err);
	if (r.memfd >= 0)
		close(r.memfd);
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < p->nthreads; i++)
		ptrace(PTRACE_DETACH, r.tids[i], 0, 0);
	return 0;
}

/* Kills a restore that failed and reaps every thread of it: the threads
 * we cloned are traced by us, and a traced thread is reapable only by its
 * tracer; until it is, the leader is not reaped either (waiting for the
 * leader alone hung forever). */
static void kill_traced(pid_t pid)
{
	pid_t tids[CKPT_MAX_THREADS + 1]; /* a restore makes at most CKPT_MAX_THREADS */
	size_t n = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d)) && n < CKPT_MAX_THREADS;) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid > 0 && tid != pid)
			tids[n++] = tid;
	}
	if (d)
		closedir(d);
	kill(pid, SIGKILL);
	tids[n++] = pid; /* the leader last */
	for (size_t k = 0; k < n; k++) {
		int st;
		pid_t r;
		do
			r = waitpid(tids[k], &st, __WALL);
		while ((r < 0 && errno == EINTR) || (r > 0 && !WIFEXITED(st) && !WIFSIGNALED(st)));
	}
}

int restore_proc(const struct ckpt_proc *p, const char *stub_exe, const int *ext_fd,
		 const int *ext, size_t n, pid_t *out_pid, struct cv_error *err)
{
	if (p->nthreads == 0 || p->nthreads > CKPT_MAX_THREADS)
		return cv_errf(err, 0, "restoring process %d: %zu threads", p->pid, p->nthreads);
	pid_t pid = spawn_stub(p, stub_exe, ext_fd, ext, n, err);
	if (pid < 0)
		return -1;
	struct pti t;
	int rc = pti_attach_traceme(&t, pid, err);
	if (rc == 0 && ptrace(PTRACE_SETOPTIONS, pid, 0,
			      (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
						  PTRACE_O_TRACECLONE)) < 0)
		rc = cv_errf(err, errno, "restoring process %d: ptrace options", p->pid);
	if (rc == 0)
		rc = restore_into(p, pid, &t, err);
	if (rc < 0) {
		kill_traced(pid);
		return -1;
	}
	*out_pid = pid;
	return 0;
}

/* Injected syscalls and remote memory (kernel/ptrace_inject.h).
 *
 * An injected syscall is two ptrace stops: we point rip at a `syscall`
 * instruction with the number and arguments in place, PTRACE_SYSCALL to the
 * entry stop, PTRACE_SYSCALL to the exit stop, and read rax. orig_rax is set
 * to -1 first so that, when the thread was taken inside an interrupted
 * syscall, the kernel's restart logic (which runs after the ptrace stop we
 * took it in returns) does not rewrite the registers we set
 * (docs/DESIGN.md, "Checkpoint and restore"). */
#include "kernel/ptrace_inject.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long resumes;

long pti_resume(int request, pid_t tid, int sig)
{
	resumes++;
	return ptrace((enum __ptrace_request)request, tid, 0, (void *)(uintptr_t)sig);
}

unsigned long pti_resume_count(void)
{
	return resumes;
}

int pti_wait(pid_t tid, int *status, struct cv_error *err)
{
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cv_errf(err, errno, "waiting for thread %d", tid);
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return cv_errf(err, 0, "thread %d exited while being traced (status 0x%x)", tid,
				       *status);
		return 0;
	}
}

int pti_seize(struct pti *t, pid_t tid, unsigned opts, struct cv_error *err)
{
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | opts)) < 0)
		return cv_errf(err, errno, "ptrace seize of thread %d", tid);
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return cv_errf(err, errno, "ptrace interrupt of thread %d", tid);
	int st;
	/* A signal may arrive before our interrupt stop: it is reported as a
	 * signal-delivery stop. We deliver it (as if we were not there) and
	 * interrupt again, so the state we save never holds a half-taken
	 * signal. */
	for (;;) {
		if (pti_wait(tid, &st, err) < 0)
			return -1;
		if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP)
			break;
		if (WIFSTOPPED(st)) {
			int sig = WSTOPSIG(st);
			if (pti_resume(PTRACE_CONT, tid, sig) < 0)
				return cv_errf(err, errno, "ptrace cont of thread %d", tid);
			if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
				return cv_errf(err, errno, "ptrace interrupt of thread %d", tid);
		}
	}
	if (ptrace(PTRACE_GETREGS, tid, 0, &t->regs) < 0)
		return cv_errf(err, errno, "reading the registers of thread %d", tid);
	return 0;
}

int pti_attach_traceme(struct pti *t, pid_t pid, struct cv_error *err)
{
	memset(t, 0, sizeof(*t));
	t->tid = pid;
	int st;
	if (pti_wait(pid, &st, err) < 0)
		return -1;
	if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP)
		return cv_errf(err, 0, "restore stub %d: expected its exec stop, got status 0x%x", pid, st);
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) < 0)
		return cv_errf(err, errno, "ptrace options of restore stub %d", pid);
	if (ptrace(PTRACE_GETREGS, pid, 0, &t->regs) < 0)
		return cv_errf(err, errno, "reading the registers of restore stub %d", pid);
	return 0;
}

int pti_find_syscall(struct pti *t, struct cv_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", t->tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return cv_errf(err, errno, "open %s", path);
	snprintf(path, sizeof(path), "/proc/%d/mem", t->tid);
	int memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (memfd < 0) {
		fclose(f);
		return cv_errf(err, errno, "open %s", path);
	}
	char line[512];
	static unsigned char page[4096];
	int found = 0;
	/* The vDSO first: it is always there and always holds a syscall. */
	for (int pass = 0; pass < 2 && !found; pass++) {
		rewind(f);
		while (!found && fgets(line, sizeof(line), f)) {
			unsigned long lo, hi;
			char perms[5];
			if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[2] != 'x')
				continue;
			if ((pass == 0) != (strstr(line, "[vdso]") != NULL))
				continue;
			for (unsigned long a = lo; a < hi && !found; a += sizeof(page)) {
				ssize_t n = pread(memfd, page, sizeof(page), (off_t)a);
				for (ssize_t i = 0; i + 1 < n; i++) {
					if (page[i] == 0x0f && page[i + 1] == 0x05) {
						t->sys_ip = a + (unsigned long)i;
						found = 1;
						break;
					}
				}
			}
		}
	}
	close(memfd);
	fclose(f);
	if (!found)
		return cv_errf(err, 0, "thread %d: no syscall instruction in its executable mappings",
			       t->tid);
	return 0;
}

static int step_to(pid_t tid, struct cv_error *err)
{
	if (pti_resume(PTRACE_SYSCALL, tid, 0) < 0)
		return cv_errf(err, errno, "ptrace syscall of thread %d", tid);
	for (;;) {
		int st;
		if (pti_wait(tid, &st, err) < 0)
			return -1;
		if (WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80))
			return 0;
		if (WIFSTOPPED(st) && (st >> 16) != 0) {
			/* An event stop (clone, ...) while in the syscall: the
			 * caller that asked for it handles the new thread; we
			 * carry on to the exit stop. */
			if (pti_resume(PTRACE_SYSCALL, tid, 0) < 0)
				return cv_errf(err, errno, "ptrace syscall of thread %d", tid);
			continue;
		}
		return cv_errf(err, 0, "thread %d left the injected syscall (status 0x%x)", tid, st);
	}
}

/* Runs the syscall and the int3 after it: one SIGTRAP stop (never
 * delivered: the next resume passes no signal). */
static int run_to_trap(pid_t tid, struct cv_error *err)
{
	if (pti_resume(PTRACE_CONT, tid, 0) < 0)
		return cv_errf(err, errno, "ptrace cont of thread %d", tid);
	for (;;) {
		int st;
		if (pti_wait(tid, &st, err) < 0)
			return -1;
		if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP && (st >> 16) == 0)
			return 0;
		if (WIFSTOPPED(st) && (st >> 16) != 0) {
			/* An event stop (clone) inside the syscall: go on. */
			if (pti_resume(PTRACE_CONT, tid, 0) < 0)
				return cv_errf(err, errno, "ptrace cont of thread %d", tid);
			continue;
		}
		return cv_errf(err, 0, "thread %d stopped by signal %d in an injected syscall", tid,
			       WIFSTOPPED(st) ? WSTOPSIG(st) : -1);
	}
}

int pti_syscall(struct pti *t, long nr, const uint64_t args[6], int64_t *ret, struct cv_error *err)
{
	if (!t->sys_ip)
		return cv_errf(err, 0, "thread %d: no syscall instruction to inject at", t->tid);
	struct user_regs_struct r = t->regs;
	r.rip = t->sys_ip;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = args[0];
	r.rsi = args[1];
	r.rdx = args[2];
	r.r10 = args[3];
	r.r8 = args[4];
	r.r9 = args[5];
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
		return cv_errf(err, errno, "setting the registers of thread %d", t->tid);
	if (t->int3_after) {
		if (run_to_trap(t->tid, err) < 0)
			return cv_error_wrap(err, "injected syscall %ld", nr);
	} else if (step_to(t->tid, err) < 0 || step_to(t->tid, err) < 0) {
		return cv_error_wrap(err, "injected syscall %ld", nr);
	}
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
		return cv_errf(err, errno, "reading the registers of thread %d", t->tid);
	*ret = (int64_t)r.rax;
	return 0;
}

int pti_sys(struct pti *t, int64_t *ret, struct cv_error *err, long nr, uint64_t a1, uint64_t a2,
	    uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	const uint64_t args[6] = {a1, a2, a3, a4, a5, a6};
	return pti_syscall(t, nr, args, ret, err);
}

int pti_restore_regs(struct pti *t, struct cv_error *err)
{
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0)
		return cv_errf(err, errno, "setting the registers of thread %d", t->tid);
	return 0;
}

int pti_mem_read(int memfd, uint64_t addr, void *buf, size_t len, struct cv_error *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(memfd, (char *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cv_errf(err, n < 0 ? errno : EIO, "reading tracee memory at 0x%llx",
				       (unsigned long long)(addr + done));
		done += (size_t)n;
	}
	return 0;
}

int pti_mem_write(int memfd, uint64_t addr, const void *buf, size_t len, struct cv_error *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(memfd, (const char *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cv_errf(err, n < 0 ? errno : EIO, "writing tracee memory at 0x%llx",
				       (unsigned long long)(addr + done));
		done += (size_t)n;
	}
	return 0;
}

int pti_scratch_open(struct pti *t, pid_t pid, struct pti_scratch *s, struct cv_error *err)
{
	*s = (struct pti_scratch){.memfd = -1};
	int64_t ret;
	if (pti_sys(t, &ret, err, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0) < 0)
		return -1;
	if (ret < 0 && ret > -4096) {
		pti_restore_regs(t, err);
		return cv_errf(err, (int)-ret, "process %d: mapping a scratch page in it", pid);
	}
	s->addr = (uint64_t)ret;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	s->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->memfd < 0) {
		int e = errno;
		pti_scratch_close(t, s, -1, err);
		return cv_errf(err, e, "open %s", path);
	}
	return 0;
}

int pti_scratch_close(struct pti *t, struct pti_scratch *s, int rc, struct cv_error *err)
{
	if (s->memfd >= 0)
		close(s->memfd);
	s->memfd = -1;
	int64_t ret;
	/* The caller's error stays the one reported. */
	struct cv_error mine = {0};
	struct cv_error *e = rc == 0 ? err : &mine;
	if (s->addr && pti_sys(t, &ret, e, SYS_munmap, s->addr, 4096, 0, 0, 0, 0) < 0)
		rc = -1;
	s->addr = 0;
	if (pti_restore_regs(t, rc == 0 ? err : &mine) < 0)
		rc = -1;
	return rc;
}

/* The restore helper's work (kernel/restore_helper.h), in a process boot
 * forked for it. Order matters: the whole state file is read and checked
 * before the container's init is touched (nothing of the sandbox runs on
 * a damaged file); then the init is seized while it waits for its release,
 * boot is told (it releases it through the normal start path: the
 * container's namespaces, cgroups, mounts, credentials, capabilities and
 * seccomp are the ones `create` set up, applied before the exec), the
 * exec is caught at its event stop, and the saved process tree is rebuilt
 * from it by injected syscalls (kernel/restore_tree.c, restore_proc.c). */
#include "kernel/restore_helper.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "kernel/ckpt_image.h"
#include "kernel/ptrace_inject.h"

static int wait_exec(pid_t pid, struct cv_error *err)
{
	for (;;) {
		int st;
		if (pti_wait(pid, &st, err) < 0)
			return cv_error_wrap(err, "the container's init did not reach its exec");
		if (WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)))
			return 0;
		/* A signal or group stop before the exec: pass it on. */
		int sig = WIFSTOPPED(st) && (st >> 16) == 0 ? WSTOPSIG(st) : 0;
		if (pti_resume(PTRACE_CONT, pid, sig) < 0)
			return cv_errf(err, errno, "ptrace cont of the container's init");
	}
}

struct page_src {
	int fd;
	const struct ckpt_proc *procs; /* p is one of them: its index is its task's */
};

static int stream_from_file(void *src, const struct ckpt_proc *p, restore_put_fn put,
			    void *opaque, struct cv_error *err)
{
	const struct page_src *s = src;
	return ckpt_image_stream_pages(s->fd, p, (size_t)(p - s->procs), put, opaque, err);
}

int restore_helper_run(const struct restore_job_args *a, struct cv_error *err)
{
	/* Pass one checks everything and keeps no page contents; pass two
	 * (from restore_proc, once the areas are mapped) streams them from
	 * the file into the process: memory stays bounded. */
	struct ckpt_loader l = {.skip_data = true};
	unsigned long resumes = pti_resume_count();
	int rc = 0;
	if (lseek(a->image_fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		rc = cv_errf(err, errno, "the state file");
	if (rc == 0 && (sf_read_fd(a->image_fd, ckpt_image_event, &l, err) != 0 ||
			ckpt_image_done(&l, err) < 0))
		rc = -1;
	/* As in runsc, the restored container may carry another id than the
	 * checkpointed one (podman restores under a new name): not refused. */
	if (rc == 0 && ptrace(PTRACE_SEIZE, a->init_pid, 0,
			      (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
						  PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) < 0)
		rc = cv_errf(err, errno, "seizing the container's init (pid %d)", a->init_pid);
	if (rc == 0) {
		/* The file is whole: boot may release the init now. */
		char ready = 'R';
		if (write(a->report_fd, &ready, 1) != 1)
			rc = cv_errf(err, errno, "telling boot the state file is valid");
	}
	if (rc == 0)
		rc = wait_exec(a->init_pid, err);
	if (rc == 0) {
		struct page_src src = {a->image_fd, l.procs};
		restore_set_page_source(stream_from_file, &src);
		restore_set_files(&l.tmpfs);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = restore_tree_take(l.procs, l.nprocs, l.pipes, l.npipes, a->init_pid, err);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		/* What a rebuild costs is mostly ptrace round trips: counted. */
		if (rc == 0)
			LOG(LL_INFO, "restore: %zu processes rebuilt with %lu ptrace resumes in %.2f ms",
			    l.nprocs, pti_resume_count() - resumes,
			    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
				    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
	ckpt_loader_free(&l);
	return rc;
}

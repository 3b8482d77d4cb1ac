/* The restore helper's work (kernel/restore_helper.h), in a process boot
 * forked for it. Order matters: nothing of the sandbox runs on a damaged
 * file. Every record is read and checked before the container's init is
 * touched; a small file is checked whole in that same reading, a large
 * one by a checker thread (kernel/restore_check.c) that the rebuilt
 * processes wait for, stopped, before they are let run. Then the init is
 * seized while it waits for its release, boot is told (it releases it
 * through the normal start path: the container's namespaces, cgroups,
 * mounts, credentials, capabilities and seccomp are the ones `create` set
 * up, applied before the exec), the exec is caught at its event stop, and
 * the saved process tree is rebuilt from it by injected syscalls
 * (kernel/restore_tree.c, restore_proc.c). */
#include "kernel/restore_helper.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "kernel/ptrace_inject.h"
#include "kernel/restore_check.h"

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

/* A state file at most this large whose metadata announces at most
 * SMALL_PAGES_MAX page bytes is read once, checked, with its page contents
 * held: the page pass writes them from memory (a small sandbox restores
 * with one read, one decompression). Why these sizes: a checked reading
 * runs at ~0.9 GB/s here on incompressible pages, so below 8 MiB the
 * checker thread could hide at most ~7 ms (its own reading costs ~2 ms
 * more), while the one pass refuses any damage before the init's release
 * (the sandbox stays created) and holds at most 8 MiB. Above,
 * the rebuild starts while a thread checks the file (restore_check.h), and
 * the pages are streamed from the file, unchecked, into the processes that
 * wait stopped for that check. A metadata that lies about the size only
 * changes the path: past SMALL_PAGES_MAX held, the runs are streamed in a
 * second, checked read. */
#define SMALL_FILE_MAX (8u << 20)
#define SMALL_PAGES_MAX (8u << 20)

struct first_pass {
	struct ckpt_loader *l;
	struct sf_fd_reader *fr;
	int fd;
	bool regular;
	uint64_t size;
	struct restore_check *check; /* large files: the checker, started at the metadata */
};

static bool small_file(const struct first_pass *f, const msgpack_object *meta)
{
	const msgpack_object *v = mpk_map_get(meta, "memory_bytes");
	bool small_pages = !v || (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
				  v->via.u64 <= SMALL_PAGES_MAX);
	/* A pipe cannot be read twice: all of it is read in this pass. */
	return !f->regular || (f->size <= SMALL_FILE_MAX && small_pages);
}

/* Every event goes to the loader; the metadata, which comes first,
 * chooses the path. */
static int first_event(void *opaque, const struct sf_event *ev, struct cv_error *err)
{
	struct first_pass *f = opaque;
	if (ev->type == SF_EV_META && !f->check) {
		if (small_file(f, ev->obj)) {
			f->l->keep_max = SMALL_PAGES_MAX;
		} else {
			if (!(f->check = restore_check_start(f->fd, err)))
				return -1;
			sf_fd_reader_skip_checksums(f->fr);
		}
	}
	return ckpt_image_event(f->l, ev, err);
}

/* The release gate: the processes are rebuilt and stopped. */
static int wait_check(void *data, struct cv_error *err)
{
	struct first_pass *f = data;
	struct restore_check *c = f->check;
	f->check = NULL;
	return c ? restore_check_finish(c, err) : 0;
}

struct page_src {
	struct sf_fd_reader *fr;
	const struct ckpt_proc *procs; /* p is one of them: its index is its task's */
};

static int stream_from_file(void *src, const struct ckpt_proc *p, restore_put_fn put,
			    void *opaque, struct cv_error *err)
{
	const struct page_src *s = src;
	return ckpt_image_stream_pages(s->fr, p, (size_t)(p - s->procs), put, opaque, err);
}

int restore_helper_run(const struct restore_job_args *a, struct cv_error *err)
{
	/* The first pass reads every record and checks it (with the
	 * checksums unless the checker thread does them) and holds the page
	 * contents of a small file; the page pass (from restore_proc, once
	 * the areas are mapped) streams the others from the file into the
	 * process: memory stays bounded. */
	struct ckpt_loader l = {.skip_data = true};
	struct first_pass f = {.l = &l, .fd = a->image_fd};
	struct stat st;
	unsigned long resumes = pti_resume_count();
	int rc = 0;
	if (fstat(a->image_fd, &st) < 0)
		rc = cv_errf(err, errno, "the state file");
	f.regular = rc == 0 && S_ISREG(st.st_mode);
	f.size = f.regular ? (uint64_t)st.st_size : 0;
	if (rc == 0 && !(f.fr = sf_fd_reader_create(a->image_fd, false, err)))
		rc = -1;
	if (rc == 0 && (sf_fd_reader_run(f.fr, first_event, &f, err) != 0 ||
			ckpt_image_done(&l, err) < 0))
		rc = -1;
	/* A refusal the checker has made by now is made before the release:
	 * the sandbox stays created. */
	if (rc == 0 && f.check && restore_check_refused(f.check))
		rc = wait_check(&f, err);
	/* As in runsc, the restored container may carry another id than the
	 * checkpointed one (podman restores under a new name): not refused. */
	if (rc == 0 && ptrace(PTRACE_SEIZE, a->init_pid, 0,
			      (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
						  PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) < 0)
		rc = cv_errf(err, errno, "seizing the container's init (pid %d)", a->init_pid);
	if (rc == 0) {
		/* Small file: it is whole. Large: what was read holds together
		 * and the processes will wait for the checker. Boot may
		 * release the init now. */
		char ready = 'R';
		if (write(a->report_fd, &ready, 1) != 1)
			rc = cv_errf(err, errno, "telling boot the state file is valid");
	}
	if (rc == 0)
		rc = wait_exec(a->init_pid, err);
	if (rc == 0) {
		struct page_src src = {f.fr, l.procs};
		restore_set_page_source(stream_from_file, &src);
		restore_set_release_gate(wait_check, &f);
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
		restore_set_release_gate(NULL, NULL);
		restore_set_page_source(NULL, NULL);
	}
	if (f.check) {
		/* The restore failed before the gate. A damaged file's error wins
		 * over what its damage made the unchecked reading stumble on. */
		struct cv_error cerr = {0};
		if (wait_check(&f, &cerr) < 0) {
			*err = cerr;
			rc = -1;
		}
	}
	sf_fd_reader_free(f.fr);
	ckpt_loader_free(&l);
	return rc;
}

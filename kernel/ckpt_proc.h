#pragma once
/* One process as a checkpoint sees it: its threads (registers, xstate,
 * signal mask, rseq, robust list, credentials, pending signals), its
 * address space (areas and the contents of their present private pages),
 * signal handlers, mm fields and auxv, cwd, umask, fd table and the rest
 * of its process state (kernel/ckpt_procstate.h). ckpt_capture fills it from a
 * process whose threads are all ptrace-stopped; restore_proc rebuilds it
 * in a fresh stub process by injected syscalls. Both run in the
 * short-lived checkpoint/restore helper (docs/DESIGN.md, "Checkpoint and
 * restore"). The struct owns every buffer it points to; ckpt_proc_free
 * releases them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "core/err.h"
#include "kernel/ckpt_procstate.h"

#define CKPT_MAX_THREADS 64
#define CKPT_MAX_VMAS 4096
#define CKPT_MAX_FDS 1024
/* PTRACE_GETREGSET NT_X86_XSTATE gives the standard (uncompacted) XSAVE
 * layout of every feature the kernel enables, and SETREGSET takes exactly
 * that size back: 2.7 KiB with AVX-512, ~11 KiB once AMX tile data is in
 * (Sapphire Rapids). */
#define CKPT_XSTATE_MAX 16384
#define CKPT_AUXV_MAX 512 /* 64-bit words */
#define CKPT_PATH_MAX 1024
/* Page runs of one process (24 bytes each in memory): a process touching
 * every other page of 8 GiB has a million; a state file claiming more is
 * refused before its table grows without end. */
#define CKPT_MAX_PAGE_RUNS (1 << 20)

enum ckpt_vma_kind {
	CKPT_VMA_ANON,
	CKPT_VMA_FILE,  /* private file mapping; only its written pages are saved */
	CKPT_VMA_STACK, /* [stack]: anon, MAP_GROWSDOWN */
	CKPT_VMA_VDSO,  /* [vvar], [vvar_vclock], [vdso]: moved, never saved */
	CKPT_VMA_VVAR,
	CKPT_VMA_VCLOCK,
	CKPT_VMA_VSYSCALL, /* fixed by the kernel: skipped */
};

struct ckpt_vma {
	uint64_t start, end, pgoff; /* pgoff in bytes */
	int prot;
	enum ckpt_vma_kind kind;
	char *path; /* CKPT_VMA_FILE only */
};

/* A run of contiguous saved pages. data is NULL when the contents are
 * not held: a capture streams them from the live process (mem_fd) into
 * the state file, a restore from the file into the new process. */
struct ckpt_pages {
	uint64_t addr;
	size_t len;
	unsigned char *data;
};

struct ckpt_thread {
	pid_t tid;    /* as the tracer sees it (the host), or from a file: as saved */
	pid_t ns_tid; /* in its own pid namespace: what the state file records */
	struct user_regs_struct regs;
	unsigned char xstate[CKPT_XSTATE_MAX];
	size_t xstate_len;
	uint64_t sigmask;
	uint64_t rseq_ptr;
	uint32_t rseq_len, rseq_sig;
	uint64_t robust_head;
	size_t robust_len;
	uint64_t clear_tid; /* set_tid_address */
	char comm[16];
	struct ckpt_creds creds; /* credentials, capabilities, securebits, ... */
	struct ckpt_sigq sigq;   /* its own pending signals */
};

struct ckpt_sigaction {
	uint64_t handler, flags, restorer, mask;
};

enum ckpt_fd_kind {
	CKPT_FD_FILE,     /* regular file or directory, reopened by path */
	CKPT_FD_EXTERNAL, /* stdio handed to the sandbox from outside: the
			   * restorer passes a replacement in */
	CKPT_FD_PIPE,     /* one end of a pipe between sandbox processes */
};

struct ckpt_fd {
	int fd;
	enum ckpt_fd_kind kind;
	int flags;   /* open flags from fdinfo (O_APPEND, O_RDWR, ...) */
	int cloexec; /* FD_CLOEXEC */
	uint64_t pos;
	char *path; /* CKPT_FD_FILE: as the process sees it (its own root) */
	int src;    /* CKPT_FD_EXTERNAL: the init's stdio fd (0-2) it is a copy of */
	uint64_t pipe; /* CKPT_FD_PIPE: the pipe's inode; its end is in flags */
};

/* A pipe between sandbox processes, once for all its holders: its
 * capacity, each end's status flags (one open file description per end,
 * shared by every holder) and the bytes buffered in it. */
struct ckpt_pipe {
	uint64_t ino;
	uint64_t size;
	int rflags, wflags;
	unsigned char *data;
	size_t len;
};
#define CKPT_MAX_PIPES 256
#define CKPT_PIPE_MAX_BYTES (1 << 20) /* the default pipe-max-size */
/* All pipes' buffered bytes together: they are held in memory by both
 * checkpoint and the state-file reader, so 256 full 1 MiB pipes (a
 * hostile file's easy 256 MiB) are refused. */
#define CKPT_PIPES_MAX_TOTAL (16 << 20)

/* The mm fields PR_SET_MM_MAP takes (from /proc/PID/stat and brk(0)). */
struct ckpt_mm {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
};

struct ckpt_proc {
	pid_t pid;
	/* In the container's pid namespace: the parent (0 for the init),
	 * the session and process group. */
	pid_t ns_ppid, ns_sid, ns_pgid;
	struct ckpt_thread *threads;
	size_t nthreads;
	struct ckpt_vma *vmas;
	size_t nvmas;
	struct ckpt_pages *pages;
	size_t npages, cap_pages;
	size_t page_bytes; /* total of pages[].len */
	struct ckpt_sigaction sigact[64]; /* index sig-1; handler 0 = SIG_DFL */
	uint64_t sigaltstack_sp, sigaltstack_size;
	int sigaltstack_flags;
	struct ckpt_mm mm;
	uint64_t auxv[CKPT_AUXV_MAX];
	size_t auxv_words;
	char cwd[CKPT_PATH_MAX];
	unsigned umask;
	struct ckpt_fd *fds;
	size_t nfds;
	struct ckpt_pstate ps; /* rlimits, personality, itimers, dumpable, shared pending signals */
	/* Capture: the seccomp filters every process of the container starts
	 * with (ckpt_seccomp_base); a thread with more installed its own. */
	int seccomp_base;
	size_t decl_threads; /* read from a state file: the count its task record gave */
	int mem_fd;          /* capture: /proc/PID/mem of the stopped process, or -1 (0: unset) */
};

/* Says whether fd (its /proc link text given) is stdio handed to the
 * sandbox from outside: it is then saved as external, whatever it is, and
 * restore connects what it is handed in its place; *src receives the
 * init's stdio fd it is a copy of. */
typedef int (*ckpt_external_fn)(void *data, int fd, const char *link, int *src);

/* Seizes and interrupts every thread of pid (repeating until no new
 * thread appears), fills p->threads[].tid and leaves them stopped. */
int ckpt_seize_all(pid_t pid, struct ckpt_proc *p, struct cv_error *err);

/* Captures the stopped process into p (after ckpt_seize_all). Anything it
 * cannot restore (a socket, an eventfd, a shared mapping, ...) fails with
 * an error naming the process, the fd or mapping and its kind. Leaves the
 * threads stopped with their registers as they were. */
int ckpt_capture(struct ckpt_proc *p, ckpt_external_fn is_external, void *data,
		 struct cv_error *err);

/* Detaches every thread of a captured process (it runs on). */
void ckpt_detach_all(struct ckpt_proc *p);

/* Kills a seized process and waits for each of its traced threads (a
 * traced thread must be reaped by its tracer before its tid is free and
 * the leader can be reaped by its parent). */
void ckpt_kill_all(struct ckpt_proc *p);

void ckpt_proc_free(struct ckpt_proc *p);

/* Rebuilds p in a fresh process and lets it run. stub_exe is executed
 * (traced) to get a clean process; ext[i] replaces the external fd
 * ext_fd[i] (n of them). Where the tree is kept in a pid namespace the
 * caller runs this inside it. On success *out_pid is the restored process
 * (a child of the caller). */
int restore_proc(const struct ckpt_proc *p, const char *stub_exe, const int *ext_fd,
		 const int *ext, size_t n, pid_t *out_pid, struct cv_error *err);

/* Rebuilds a process tree (procs[0] the init, each other after its
 * parent; pipes between them) from pid: the container's init, seized by
 * the caller (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE) and stopped
 * at its exec event, its fds 0-2 the external stdio. The children are
 * forked from their restored parents with their saved pids. Detaches
 * every process, running, on success; on failure the caller kills the
 * init (PTRACE_O_EXITKILL takes the children). */
int restore_tree_take(const struct ckpt_proc *procs, size_t n, const struct ckpt_pipe *pipes,
		      size_t npipes, pid_t pid, struct cv_error *err);

/* Where restore gets page contents p does not hold (pages[].data NULL):
 * called once the areas are mapped, with a writer into the new process. */
typedef int (*restore_put_fn)(void *opaque, uint64_t addr, const void *data, size_t len,
			      struct cv_error *err);
typedef int (*restore_pages_fn)(void *src, const struct ckpt_proc *p, restore_put_fn put,
				void *opaque, struct cv_error *err);
void restore_set_page_source(restore_pages_fn fn, void *src);
/* Asked once every process is rebuilt, stopped, before any is detached:
 * a non-zero return (err set) fails the restore with nothing let run (the
 * restore helper waits there for the thread checking the rest of the state
 * file). NULL: none. */
typedef int (*restore_gate_fn)(void *data, struct cv_error *err);
void restore_set_release_gate(restore_gate_fn fn, void *data);
/* Files to recreate in the process (its tmpfs contents) once its fds are
 * in place, before it runs; NULL: none. Not owned. */
struct ckpt_tmpfs;
void restore_set_files(const struct ckpt_tmpfs *fs);

#pragma once
/* The process tree and pipes of a container being checkpointed
 * (kernel/ckpt_tree.c, kernel/ckpt_pipes.c): which processes, in which
 * order (parents before children: restore forks each child from its
 * restored parent), and the pipes between them, paired end to end. */
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"
#include "kernel/ckpt_proc.h"

/* A process of the tree: its host pid and its parent's index in the list
 * (-1 for the init). */
struct ckpt_node {
	pid_t pid;
	int parent;
};

/* Walks the tree from init (host pid) through /proc/PID/task/(*)/children,
 * breadth first, into *out (malloc'd, the caller frees). Every process of
 * the cgroup (cg_pids) must be in the tree and the other way round, else
 * it fails naming the process. A zombie (exited, not yet reaped) fails
 * with EAGAIN: the caller thaws, lets its parent reap it, and retries. */
int ckpt_tree_list(pid_t init, const pid_t *cg_pids, size_t ncg, struct ckpt_node **out,
		   size_t *n, struct cv_error *err);

/* Pairs the pipe fds of the captured processes (procs[i].pid are host
 * pids, every thread still ptrace-stopped): each pipe must have both its
 * ends held in the container, else the fd is refused by name. Reads each
 * pipe's buffered bytes without consuming them (tee(2) from a copy of a
 * holder's read end, taken with pidfd_getfd, into a pipe of ours). */
int ckpt_pipes_collect(const struct ckpt_proc *procs, size_t n, struct ckpt_pipe **out,
		       size_t *npipes, struct cv_error *err);
void ckpt_pipes_free(struct ckpt_pipe *pipes, size_t n);

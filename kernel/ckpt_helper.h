#pragma once
/* What the checkpoint helper process does (kernel/ckpt_helper.c); boot's
 * side (the RPC, the helper's pidfd and report pipe) is
 * kernel/checkpoint.c. */
#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"
#include "kernel/cgroup.h"

struct ckpt_job_args {
	const struct cgroup *cg;  /* the container's cgroup: every process in it is taken */
	const char *container_id;
	const char *spec_json;    /* config.json text for the metadata, or NULL */
	pid_t init_pid;           /* host pid of the container's init (its stdio is external) */
	int image_fd;             /* the state file (the caller's) */
	bool resume;              /* leave it running; else leave it frozen for boot to kill */
	int seccomp_base;         /* the init's seccomp filters at its start (-1: unknown) */
};

/* Takes the container and writes the state file; 0, or -1 with err naming
 * what could not be saved (the container then runs on, untouched). */
int ckpt_helper_run(const struct ckpt_job_args *a, struct cv_error *err);

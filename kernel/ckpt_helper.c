/* The checkpoint helper's work (kernel/ckpt_helper.h), run in a process
 * boot forked for it: it may block (freezer waits, ptrace stops, copying
 * memory) because the reactor is not here.
 *
 * Freeze the container's v2 cgroup so nothing runs or forks while we take
 * it, list its process tree (kernel/ckpt_tree.c), seize and interrupt every thread of every process (a frozen task
 * reports the interrupt stop at once and stays ptrace-stopped after the
 * thaw), thaw, capture each process, pair the pipes between them, write the state file, then let it
 * run again (Resume) or freeze it once more so it stays still until boot
 * kills it (docs/DESIGN.md, "Checkpoint and restore"). */
#include "kernel/ckpt_helper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "kernel/ckpt_proc.h"
#include "kernel/ckpt_tmpfs.h"
#include "kernel/ckpt_tree.h"

#define FREEZE_WAIT_MS 5000
#define ZOMBIE_RETRIES 50

static int wait_frozen(const struct cgroup *cg, struct cv_error *err)
{
	for (int ms = 0; ms < FREEZE_WAIT_MS; ms++) {
		int fd = cgroup_events_fd(cg, err);
		if (fd < 0)
			return -1;
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, "frozen 1"))
				return 0;
		}
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return cv_errf(err, 0, "the freezer did not report the container frozen within %d ms",
		       FREEZE_WAIT_MS);
}

/* Stdio the sandbox was given from outside: fds 0-2 of the container's
 * init, whatever they are (restore connects the stdio it is handed), and
 * in any process, an fd that is the same object (a child's inherited
 * stderr): known by its link text, which names the object ("pipe:[INO]",
 * "socket:[INO]", or a path). */
struct ext_ctx {
	pid_t init;
	pid_t pid;
	char link[3][CKPT_PATH_MAX];
};

static int is_external(void *data, int fd, const char *link, int *src)
{
	const struct ext_ctx *x = data;
	if (x->pid == x->init && fd >= 0 && fd <= 2) {
		*src = fd;
		return 1;
	}
	for (int k = 0; k < 3; k++)
		if (x->link[k][0] && !strcmp(x->link[k], link)) {
			*src = k;
			return 1;
		}
	return 0;
}

static void read_ext_links(struct ext_ctx *x)
{
	for (int k = 0; k < 3; k++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", x->init, k);
		ssize_t n = readlink(path, x->link[k], sizeof(x->link[k]) - 1);
		x->link[k][n > 0 ? n : 0] = '\0';
	}
}

static int write_image(const struct ckpt_job_args *a, struct ckpt_proc *procs, size_t n,
		       const struct ckpt_pipe *pipes, size_t npipes, struct cv_error *err)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += procs[i].page_bytes;
	const char *ids[1] = {a->container_id};
	const char *specs[1] = {a->spec_json};
	struct sf_meta meta = {.container_count = 1,
			       .network = "sandbox",
			       .nspecs = a->spec_json ? 1 : 0,
			       .spec_ids = ids,
			       .specs = specs,
			       .memory_bytes = bytes};
	int fd = a->image_fd;
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, err);
	if (!w)
		return -1;
	int rc = 0;
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_CONTAINER, 1, 0, err);
	if (!pk)
		rc = -1;
	if (rc == 0) {
		mpk_pack_key(pk, "id");
		mpk_pack_str(pk, a->container_id);
		rc = sf_record_end(w, err);
	}
	for (size_t i = 0; rc == 0 && i < npipes; i++)
		rc = ckpt_image_put_pipe(w, &pipes[i], err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = ckpt_image_put(w, &procs[i], err);
	/* The container's tmpfs files, read by its (stopped) init. */
	if (rc == 0)
		rc = ckpt_tmpfs_save(&procs[0], w, err);
	if (rc == 0)
		rc = sf_writer_finish(w, err);
	sf_writer_free(w);
	/* No fsync: the fd is the caller's (docs/STYLE: a donated fd is the
	 * caller's to make durable), and syncing 256 MiB would cost more
	 * than writing it. */
	return rc;
}

/* Freezes the cgroup and lists its tree. A zombie (a child that just
 * exited, say a `sleep` of a shell loop) would need its parent to reap
 * it: thaw briefly and try again. */
static int freeze_and_list(const struct ckpt_job_args *a, struct ckpt_node **tree, size_t *n,
			   struct cv_error *err)
{
	for (int attempt = 0;; attempt++) {
		pid_t *pids = NULL;
		size_t ncg = 0;
		if (cgroup_freeze(a->cg, true, err) < 0 || wait_frozen(a->cg, err) < 0 ||
		    cgroup_pids(a->cg, &pids, &ncg, err) < 0)
			return -1;
		int rc = ckpt_tree_list(a->init_pid, pids, ncg, tree, n, err);
		free(pids);
		if (rc == 0 || err->code != EAGAIN || attempt == ZOMBIE_RETRIES)
			return rc;
		struct cv_error terr = {0};
		cgroup_freeze(a->cg, false, &terr);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
		memset(err, 0, sizeof(*err));
	}
}

int ckpt_helper_run(const struct ckpt_job_args *a, struct cv_error *err)
{
	struct ckpt_node *tree = NULL;
	size_t n = 0;
	struct ckpt_proc *procs = NULL;
	struct ckpt_pipe *pipes = NULL;
	size_t npipes = 0;
	int rc = freeze_and_list(a, &tree, &n, err);
	if (rc == 0 && !(procs = calloc(n, sizeof(*procs))))
		rc = cv_errf(err, ENOMEM, "checkpoint: processes");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = ckpt_seize_all(tree[i].pid, &procs[i], err);
	/* Seized (or failed): let the cgroup go, the tasks stay ptrace-stopped. */
	struct cv_error terr = {0};
	cgroup_freeze(a->cg, false, &terr);
	struct ext_ctx x = {.init = a->init_pid};
	read_ext_links(&x);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		x.pid = tree[i].pid;
		procs[i].seccomp_base = a->seccomp_base;
		rc = ckpt_capture(&procs[i], is_external, &x, err);
	}
	for (size_t i = 1; rc == 0 && i < n; i++)
		procs[i].ns_ppid = procs[tree[i].parent].threads[0].ns_tid;
	if (rc == 0)
		rc = ckpt_pipes_collect(procs, n, &pipes, &npipes, err);
	if (rc == 0)
		rc = write_image(a, procs, n, pipes, npipes, err);
	/* Done with them: freeze again first when they are not to run on, so
	 * they stay still between our exit (which detaches them) and boot's
	 * kill. */
	if (rc == 0 && !a->resume)
		cgroup_freeze(a->cg, true, &terr);
	for (size_t i = 0; i < n && procs; i++) {
		ckpt_detach_all(&procs[i]); /* none for one not seized */
		ckpt_proc_free(&procs[i]);
	}
	ckpt_pipes_free(pipes, npipes);
	free(procs);
	free(tree);
	return rc;
}

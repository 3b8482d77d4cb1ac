/* Unit tests for kernel/ckpt_image.c's checks of a process tree read from
 * a state file: restore forks each task from its parent, so a hostile
 * file may not name a parent that comes later or not at all, a pid twice,
 * or a pipe end that no pipe record describes. Each refusal names the
 * task; nothing is kept and no fd is left open. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "test/unit/ckpt_records.h"
#include "test/unit/unit.h"

struct task {
	uint64_t pid, ppid;
	const char *pipe_fd; /* NULL, or the fd type "pipe" with pipe id 77 */
	int pipe_flags;
};

static void put_task(struct sf_writer *w, const struct task *t)
{
	struct cv_error err = {0};
	msgpack_packer *pk = ckrec_task_begin(w, t->pid, 1, 3, &err);
	ckrec_u64(pk, "ppid", t->ppid);
	ckrec_u64(pk, "sid", 1);
	ckrec_u64(pk, "pgid", 1);
	CHECK(sf_record_end(w, &err) == 0);
	pk = ckrec_thread_begin(w, t->pid, sizeof(struct user_regs_struct), 0, &err);
	CHECK(sf_record_end(w, &err) == 0);
	struct sf_mapping a = {.start = 0x400000, .end = 0x401000, .prot = 3,
			       .flags = MAP_PRIVATE | MAP_ANONYMOUS};
	CHECK(sf_put_mapping(w, &a, &err) == 0);
	if (!t->pipe_fd)
		return;
	pk = sf_record_begin(w, SF_KIND_FD, 7, 0, &err);
	ckrec_u64(pk, "fd", 3);
	mpk_pack_key(pk, "type");
	mpk_pack_str(pk, t->pipe_fd);
	ckrec_u64(pk, "pipe", 77);
	ckrec_u64(pk, "flags", (uint64_t)t->pipe_flags);
	ckrec_u64(pk, "cloexec", 0);
	ckrec_u64(pk, "pos", 0);
	mpk_pack_key(pk, "path");
	mpk_pack_str(pk, "");
	CHECK(sf_record_end(w, &err) == 0);
}

/* Loads a file of the given tasks (and pipe 77 when with_pipe); returns
 * what the loader said and, on success, the task count in *n. */
static int load(const struct task *tasks, size_t ntasks, bool with_pipe, size_t *n,
		struct cv_error *err)
{
	struct cv_error werr = {0};
	int fd = memfd_create("ckpt-tree", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, &werr);
	CHECK(w != NULL);
	if (with_pipe) {
		struct ckpt_pipe cp = {.ino = 77, .size = 65536};
		CHECK(ckpt_image_put_pipe(w, &cp, &werr) == 0);
	}
	for (size_t i = 0; i < ntasks; i++)
		put_task(w, &tasks[i]);
	CHECK(sf_writer_finish(w, &werr) == 0);
	sf_writer_free(w);
	struct ckpt_loader l = {0};
	int rc = ckrec_load(fd, &l, err);
	*n = l.nprocs;
	ckpt_loader_free(&l);
	close(fd);
	return rc;
}

TEST(test_tree_in_order_loads)
{
	const struct task t[] = {{1, 0, "pipe", O_WRONLY}, {5, 1, "pipe", O_RDONLY}, {9, 5, NULL, 0}};
	struct cv_error err = {0};
	size_t n = 0;
	int fds = unit_count_fds();
	CHECK(load(t, 3, true, &n, &err) == 0);
	CHECK(n == 3);
	CHECK(unit_count_fds() == fds);
}

TEST(test_hostile_trees_refused_by_name)
{
	static const struct {
		struct task t[3];
		size_t n;
		bool pipe;
		const char *want;
	} cases[] = {
		/* A child before its parent: restore could not fork it. */
		{{{1, 0, NULL, 0}, {9, 5, NULL, 0}, {5, 1, NULL, 0}}, 3, false,
		 "task 9: its parent 5 is not a task before it"},
		/* A parent that is no task at all. */
		{{{1, 0, NULL, 0}, {5, 4242, NULL, 0}}, 2, false,
		 "task 5: its parent 4242 is not a task before it"},
		/* The same pid twice. */
		{{{1, 0, NULL, 0}, {5, 1, NULL, 0}, {5, 1, NULL, 0}}, 3, false, "task 5 twice"},
		/* A pipe end with no pipe record. */
		{{{1, 0, "pipe", O_RDONLY}}, 1, false, "pipe 77 has no pipe record"},
		/* A pipe fd open read-write: neither end. */
		{{{1, 0, "pipe", O_RDWR}}, 1, true, "is neither its read nor its write end"},
		/* An fd type the engine does not restore. */
		{{{1, 0, "socket", 0}}, 1, false, "unknown type \"socket\""},
	};
	int fds = unit_count_fds();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cv_error err = {0};
		size_t n = 0;
		CHECK(load(cases[i].t, cases[i].n, cases[i].pipe, &n, &err) < 0);
		CHECK(ckrec_says(err.msg, cases[i].want, i));
	}
	CHECK(unit_count_fds() == fds);
}

UNIT_MAIN(test_tree_in_order_loads, test_hostile_trees_refused_by_name)

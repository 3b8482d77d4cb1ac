/* Unit tests for the state-file reader's bound on pipe bytes
 * (kernel/ckpt_image.c): every pipe's buffered bytes are held in memory
 * until restore refills them, so a hostile file of 256 full 1 MiB pipes
 * must not make the restore helper hold 256 MiB. At most 16 MiB together
 * are accepted; the pipe that crosses it is named. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "test/unit/unit.h"

/* A file of n full 1 MiB pipes and nothing else; returns a memfd. */
static int pipes_image(int n)
{
	struct cv_error err = {0};
	int fd = memfd_create("ckpt-pipes", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, &err);
	unsigned char *bytes = calloc(1, CKPT_PIPE_MAX_BYTES);
	CHECK(w && bytes);
	for (int i = 0; i < n; i++) {
		struct ckpt_pipe cp = {.ino = 1000 + (uint64_t)i, .size = CKPT_PIPE_MAX_BYTES,
				       .data = bytes, .len = CKPT_PIPE_MAX_BYTES};
		CHECK(ckpt_image_put_pipe(w, &cp, &err) == 0);
	}
	CHECK(sf_writer_finish(w, &err) == 0);
	sf_writer_free(w);
	free(bytes);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* The record pass alone (a file of pipes and no task is refused later,
 * by ckpt_image_done, for another reason). */
static int read_pipes(int n, struct cv_error *err)
{
	int fd = pipes_image(n);
	struct ckpt_loader l = {0};
	int rc = sf_read_fd(fd, ckpt_image_event, &l, err) != 0 ? -1 : 0;
	if (rc == 0)
		CHECK(l.npipes == (size_t)n);
	ckpt_loader_free(&l);
	close(fd);
	return rc;
}

TEST(test_sixteen_full_pipes_load)
{
	struct cv_error err = {0};
	int fds = unit_count_fds();
	CHECK(read_pipes(CKPT_PIPES_MAX_TOTAL / CKPT_PIPE_MAX_BYTES, &err) == 0);
	CHECK(unit_count_fds() == fds);
}

TEST(test_seventeenth_full_pipe_refused_by_name)
{
	struct cv_error err = {0};
	int fds = unit_count_fds();
	CHECK(read_pipes(CKPT_PIPES_MAX_TOTAL / CKPT_PIPE_MAX_BYTES + 1, &err) < 0);
	if (!strstr(err.msg, "pipe 1016: the pipes hold more than 16777216 bytes together"))
		fprintf(stderr, "  got: \"%s\"\n", err.msg);
	CHECK(strstr(err.msg, "pipe 1016: the pipes hold more than 16777216 bytes together") != NULL);
	CHECK(unit_count_fds() == fds);
}

UNIT_MAIN(test_sixteen_full_pipes_load, test_seventeenth_full_pipe_refused_by_name)

/* The page pass of a restore (kernel/ckpt_image.c): a loader holds page
 * contents up to its keep_max budget and no further, and
 * ckpt_image_stream_pages hands over exactly the runs of its task that
 * were not held, then stops reading at the next task (shown on a file cut
 * inside the second task's pages: the first task's pass still succeeds). */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "test/unit/ckpt_records.h"
#include "test/unit/unit.h"

#define BIG (2u << 20) /* task 2's run: more than one LZ4 block */

/* Incompressible bytes of run `run` at offset i. */
static unsigned char byte_at(unsigned run, size_t i)
{
	uint64_t x = (i + run * 0x100000001ull) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (unsigned char)(x >> 40);
}

static void put_task(struct sf_writer *w, uint64_t pid, uint64_t ppid, const size_t *runs,
		     size_t nruns, unsigned first_run)
{
	struct cv_error err = {0};
	msgpack_packer *pk = ckrec_task_begin(w, pid, 1, 1, &err);
	ckrec_u64(pk, "ppid", ppid);
	CHECK(sf_record_end(w, &err) == 0);
	pk = ckrec_thread_begin(w, pid, sizeof(struct user_regs_struct), 0, &err);
	CHECK(sf_record_end(w, &err) == 0);
	struct sf_mapping m = {.start = 0x400000, .end = 0x400000 + (8u << 20), .prot = 3,
			       .flags = MAP_PRIVATE | MAP_ANONYMOUS};
	CHECK(sf_put_mapping(w, &m, &err) == 0);
	unsigned char *buf = malloc(BIG);
	uint64_t addr = 0x400000;
	for (size_t r = 0; r < nruns; r++) {
		for (size_t i = 0; i < runs[r]; i++)
			buf[i] = byte_at(first_run + (unsigned)r, i);
		CHECK(sf_put_pages(w, addr, runs[r], &err) == 0);
		CHECK(sf_write_data(w, buf, runs[r], &err) == 0);
		addr += runs[r];
	}
	free(buf);
}

/* Task 1 (runs 0, 1: 4 KiB, 8 KiB), its child task 2 (run 2: BIG). */
static int image(void)
{
	struct cv_error err = {0};
	int fd = memfd_create("ckpt-stream", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, &err);
	const size_t one[] = {4096, 8192}, two[] = {BIG};
	put_task(w, 1, 0, one, 2, 0);
	put_task(w, 2, 1, two, 1, 2);
	CHECK(sf_writer_finish(w, &err) == 0);
	sf_writer_free(w);
	return fd;
}

struct got {
	unsigned run; /* the run the bytes should be */
	uint64_t base, bytes, bad;
};

static int put(void *opaque, uint64_t addr, const void *data, size_t len, struct cv_error *err)
{
	(void)err;
	struct got *g = opaque;
	for (size_t i = 0; i < len; i++)
		g->bad += ((const unsigned char *)data)[i] != byte_at(g->run, addr - g->base + i);
	g->bytes += len;
	return 0;
}

TEST(test_keep_budget_and_stream_the_rest)
{
	struct cv_error err = {0};
	int fd = image();
	struct sf_fd_reader *fr = sf_fd_reader_create(fd, true, &err);
	CHECK(fr != NULL);
	/* Room for the first run only. */
	struct ckpt_loader l = {.skip_data = true, .keep_max = 4096 + 100};
	CHECK(sf_fd_reader_run(fr, ckpt_image_event, &l, &err) == 0 && ckpt_image_done(&l, &err) == 0);
	CHECK(l.nprocs == 2 && l.procs[0].npages == 2 && l.procs[1].npages == 1);
	CHECK(l.kept == 4096);
	CHECK(l.procs[0].pages[0].data != NULL && l.procs[0].pages[1].data == NULL &&
	      l.procs[1].pages[0].data == NULL);
	for (size_t i = 0; i < 4096; i++)
		if (l.procs[0].pages[0].data[i] != byte_at(0, i)) {
			CHECK(0);
			break;
		}
	/* Task 1's pass: only its second run (8 KiB at 0x401000). */
	struct got g = {.run = 1, .base = 0x401000};
	CHECK(ckpt_image_stream_pages(fr, &l.procs[0], 0, put, &g, &err) == 0);
	CHECK(g.bytes == 8192 && g.bad == 0);
	/* Task 2's: its whole run. */
	struct got h = {.run = 2, .base = 0x400000};
	CHECK(ckpt_image_stream_pages(fr, &l.procs[1], 1, put, &h, &err) == 0);
	CHECK(h.bytes == BIG && h.bad == 0);

	/* The same file cut inside task 2's run: task 1's pass stops at task
	 * 2's record and succeeds; task 2's meets the cut. */
	off_t size = lseek(fd, 0, SEEK_END);
	CHECK(ftruncate(fd, size - (256 << 10)) == 0);
	struct got g2 = {.run = 1, .base = 0x401000};
	CHECK(ckpt_image_stream_pages(fr, &l.procs[0], 0, put, &g2, &err) == 0);
	CHECK(g2.bytes == 8192 && g2.bad == 0);
	struct got h2 = {.run = 2, .base = 0x400000};
	CHECK(ckpt_image_stream_pages(fr, &l.procs[1], 1, put, &h2, &err) < 0);
	CHECK(strstr(err.msg, "truncated") != NULL);
	ckpt_loader_free(&l);
	sf_fd_reader_free(fr);
	close(fd);
}

TEST(test_without_budget_nothing_is_kept)
{
	struct cv_error err = {0};
	int fd = image();
	struct sf_fd_reader *fr = sf_fd_reader_create(fd, false, &err);
	struct ckpt_loader l = {.skip_data = true};
	CHECK(fr && sf_fd_reader_run(fr, ckpt_image_event, &l, &err) == 0);
	CHECK(l.kept == 0 && l.nprocs == 2 && l.procs[0].pages[0].data == NULL);
	ckpt_loader_free(&l);
	/* Not skipping: everything is held, whatever keep_max says. */
	struct ckpt_loader all = {0};
	CHECK(sf_fd_reader_run(fr, ckpt_image_event, &all, &err) == 0);
	CHECK(all.kept == 4096 + 8192 + BIG && all.procs[1].pages[0].data != NULL);
	ckpt_loader_free(&all);
	sf_fd_reader_free(fr);
	close(fd);
}

UNIT_MAIN(test_keep_budget_and_stream_the_rest, test_without_budget_nothing_is_kept)

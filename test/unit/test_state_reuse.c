/* Reading one state file more than once (state/state.h): sf_reader_reset,
 * sf_reader_skip_checksums and the sf_fd_reader that a restore reads its
 * file through (kernel/restore_helper.c). Run with arguments, the binary
 * also measures the record pass of a file:
 *   test_state_reuse --bench FILE N   N whole reads with a fresh reader each
 *                                     (sf_read_fd) against N with one reused
 *                                     reader (sf_fd_reader); one JSON line */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "core/mpk.h"
#include "state/state.h"
#include "test/unit/mem_sink.h"
#include "test/unit/unit.h"

#define RUN_BYTES (1u << 20) /* half a pattern, half noise: both kinds of LZ4 block */

static unsigned char byte_at(size_t i)
{
	if (i < RUN_BYTES / 2)
		return (unsigned char)(i % 251);
	uint64_t x = i * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (unsigned char)(x >> 40);
}

/* container, pages (RUN_BYTES), blob (100 bytes), end. */
static int make_file(struct mem *out, struct cv_error *err)
{
	struct sf_meta meta = {.container_count = 1, .memory_bytes = RUN_BYTES};
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, out, err);
	if (!w)
		return -1;
	int rc = -1;
	unsigned char *run = malloc(RUN_BYTES);
	msgpack_packer *pk = run ? sf_record_begin(w, SF_KIND_CONTAINER, 1, 0, err) : NULL;
	if (!pk)
		goto out;
	mpk_pack_key(pk, "id");
	mpk_pack_str(pk, "c");
	for (size_t i = 0; i < RUN_BYTES; i++)
		run[i] = byte_at(i);
	if (sf_record_end(w, err) < 0 || sf_put_pages(w, 0x400000, RUN_BYTES, err) < 0 ||
	    sf_write_data(w, run, RUN_BYTES, err) < 0)
		goto out;
	if (!(pk = sf_record_begin(w, SF_KIND_BLOB, 1, 100, err)))
		goto out;
	mpk_pack_key(pk, "name");
	mpk_pack_str(pk, "b");
	if (sf_record_end(w, err) < 0 || sf_write_data(w, run, 100, err) < 0)
		goto out;
	rc = sf_writer_finish(w, err);
out:
	free(run);
	sf_writer_free(w);
	return rc;
}

/* What a read saw; stop_at: return that from the first record (0: never). */
struct seen {
	unsigned meta, records, end;
	uint64_t data, bad;
	int stop_at;
};

static int on_event(void *opaque, const struct sf_event *ev, struct cv_error *err)
{
	(void)err;
	struct seen *s = opaque;
	switch (ev->type) {
	case SF_EV_META:
		s->meta++;
		break;
	case SF_EV_RECORD:
		s->records++;
		if (s->stop_at)
			return s->stop_at;
		break;
	case SF_EV_DATA:
		/* The pages run comes first: its bytes are known. */
		if (s->data < RUN_BYTES)
			for (size_t i = 0; i < ev->len; i++)
				s->bad += ((const unsigned char *)ev->data)[i] != byte_at(ev->data_off + i);
		s->data += ev->len;
		break;
	case SF_EV_END:
		s->end++;
		break;
	case SF_EV_NONE:
	default:
		break;
	}
	return 0;
}

static bool whole(const struct seen *s)
{
	return s->meta == 1 && s->records == 3 && s->end == 1 && s->data == RUN_BYTES + 100 &&
	       s->bad == 0;
}

/* Feeds all of p through r; 0 or -1. */
static int read_all(struct sf_reader *r, const unsigned char *p, size_t n, struct seen *s,
		    struct cv_error *err)
{
	size_t off = 0;
	for (;;) {
		size_t k = n - off;
		struct sf_event ev;
		if (sf_reader_feed(r, p + off, &k, &ev, err) < 0)
			return -1;
		off += k;
		if (ev.type == SF_EV_NONE && off == n)
			return sf_reader_finish(r, err);
		on_event(s, &ev, err);
	}
}

TEST(test_reset_reads_again_after_success_and_failure)
{
	struct cv_error err = {0};
	struct mem f = {0};
	CHECK(make_file(&f, &err) == 0);
	struct sf_reader *r = sf_reader_create(&err);
	CHECK(r != NULL);
	struct seen a = {0}, b = {0};
	CHECK(read_all(r, f.p, f.len, &a, &err) == 0 && whole(&a));
	sf_reader_reset(r);
	CHECK(sf_reader_meta(r) == NULL && sf_reader_offset(r) == 0);
	CHECK(read_all(r, f.p, f.len, &b, &err) == 0 && whole(&b));
	/* Without a reset, what follows a whole file is garbage after it. */
	unsigned char junk[16] = "NOTASTATEFILE...";
	struct seen c = {0};
	CHECK(read_all(r, junk, sizeof(junk), &c, &err) < 0 && strstr(err.msg, "garbage after"));
	/* A failed reader refuses everything until reset; then reads again. */
	sf_reader_reset(r);
	CHECK(read_all(r, junk, sizeof(junk), &c, &err) < 0 && strstr(err.msg, "bad magic"));
	CHECK(read_all(r, f.p, f.len, &c, &err) < 0 && strstr(err.msg, "already failed"));
	sf_reader_reset(r);
	struct seen d = {0};
	cv_error_reset(&err);
	CHECK(read_all(r, f.p, f.len, &d, &err) == 0 && whole(&d));
	sf_reader_free(r);
	free(f.p);
}

TEST(test_skip_checksums_only_skips_checksums)
{
	struct cv_error err = {0};
	struct mem f = {0};
	CHECK(make_file(&f, &err) == 0);
	/* A flipped bit in the frame's content checksum (its last 4 bytes). */
	f.p[f.len - 2] ^= 0x10;
	struct sf_reader *r = sf_reader_create(&err);
	CHECK(r != NULL);
	struct seen a = {0};
	CHECK(read_all(r, f.p, f.len, &a, &err) < 0 && strstr(err.msg, "checksum mismatch"));
	sf_reader_reset(r);
	sf_reader_skip_checksums(r);
	struct seen b = {0};
	cv_error_reset(&err);
	CHECK(read_all(r, f.p, f.len, &b, &err) == 0 && whole(&b));
	/* A reset checks them again. */
	sf_reader_reset(r);
	struct seen c = {0};
	CHECK(read_all(r, f.p, f.len, &c, &err) < 0 && strstr(err.msg, "checksum mismatch"));
	f.p[f.len - 2] ^= 0x10;
	/* Skipping, the structure is still checked: the same file cut
	 * short, or with its end record's counts wrong, is refused. */
	sf_reader_reset(r);
	sf_reader_skip_checksums(r);
	struct seen d = {0};
	CHECK(read_all(r, f.p, f.len - 9, &d, &err) < 0 && strstr(err.msg, "truncated"));
	sf_reader_free(r);
	free(f.p);
}

static int tmpfile_with(const struct mem *m, char *path)
{
	strcpy(path, "/tmp/cvisor-test-reuse-XXXXXX");
	int fd = mkstemp(path);
	if (fd >= 0 && write(fd, m->p, m->len) != (ssize_t)m->len) {
		close(fd);
		fd = -1;
	}
	return fd;
}

TEST(test_fd_reader_positioned_reads_leave_the_offset)
{
	struct cv_error err = {0};
	struct mem f = {0};
	CHECK(make_file(&f, &err) == 0);
	int fds = unit_count_fds();
	char path[64];
	int fd = tmpfile_with(&f, path);
	CHECK(fd >= 0);
	CHECK(lseek(fd, 5, SEEK_SET) == 5);
	struct sf_fd_reader *fr = sf_fd_reader_create(fd, true, &err);
	CHECK(fr != NULL);
	for (int i = 0; i < 3; i++) {
		struct seen s = {0};
		CHECK(sf_fd_reader_run(fr, on_event, &s, &err) == 0 && whole(&s));
		CHECK(lseek(fd, 0, SEEK_CUR) == 5);
	}
	/* A positive return of cb stops the read and is the caller's. */
	struct seen stop = {.stop_at = 7};
	CHECK(sf_fd_reader_run(fr, on_event, &stop, &err) == 7 && stop.records == 1);
	struct seen again = {0};
	CHECK(sf_fd_reader_run(fr, on_event, &again, &err) == 0 && whole(&again));
	sf_fd_reader_free(fr);
	/* Not positioned: each run rewinds and the offset follows the reads. */
	fr = sf_fd_reader_create(fd, false, &err);
	CHECK(fr != NULL);
	for (int i = 0; i < 2; i++) {
		struct seen s = {0};
		CHECK(sf_fd_reader_run(fr, on_event, &s, &err) == 0 && whole(&s));
		CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)f.len);
	}
	sf_fd_reader_free(fr);
	close(fd);
	unlink(path);
	CHECK(unit_count_fds() == fds);
	free(f.p);
}

TEST(test_fd_reader_skip_checksums_sticks_across_runs)
{
	struct cv_error err = {0};
	struct mem f = {0};
	CHECK(make_file(&f, &err) == 0);
	f.p[f.len - 1] ^= 0x01;
	char path[64];
	int fd = tmpfile_with(&f, path);
	CHECK(fd >= 0);
	struct sf_fd_reader *fr = sf_fd_reader_create(fd, true, &err);
	CHECK(fr != NULL);
	struct seen s = {0};
	CHECK(sf_fd_reader_run(fr, on_event, &s, &err) < 0 && strstr(err.msg, "checksum mismatch"));
	sf_fd_reader_skip_checksums(fr);
	for (int i = 0; i < 2; i++) {
		struct seen t = {0};
		cv_error_reset(&err);
		CHECK(sf_fd_reader_run(fr, on_event, &t, &err) == 0 && whole(&t));
	}
	sf_fd_reader_free(fr);
	close(fd);
	unlink(path);
	free(f.p);
}

TEST(test_fd_reader_reads_a_pipe_once)
{
	struct cv_error err = {0};
	struct mem f = {0};
	CHECK(make_file(&f, &err) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	if ((size_t)fcntl(p[1], F_GETPIPE_SZ) < f.len) {
		close(p[0]);
		close(p[1]);
		free(f.p);
		SKIP("a pipe of %zu bytes cannot be had here", f.len);
	}
	CHECK(write(p[1], f.p, f.len) == (ssize_t)f.len);
	close(p[1]);
	struct sf_fd_reader *fr = sf_fd_reader_create(p[0], true, &err);
	CHECK(fr != NULL);
	struct seen s = {0};
	CHECK(sf_fd_reader_run(fr, on_event, &s, &err) == 0 && whole(&s));
	CHECK(sf_fd_reader_run(fr, on_event, &s, &err) < 0 && strstr(err.msg, "cannot be read twice"));
	sf_fd_reader_free(fr);
	close(p[0]);
	free(f.p);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(const char *path, long n)
{
	struct cv_error err = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	double t0 = now();
	for (long i = 0; i < n; i++)
		if (lseek(fd, 0, SEEK_SET) < 0 || sf_read_fd(fd, NULL, NULL, &err) != 0)
			goto fail;
	double fresh = (now() - t0) / (double)n;
	struct sf_fd_reader *fr = sf_fd_reader_create(fd, false, &err);
	if (!fr)
		goto fail;
	t0 = now();
	for (long i = 0; i < n; i++)
		if (sf_fd_reader_run(fr, NULL, NULL, &err) != 0) {
			sf_fd_reader_free(fr);
			goto fail;
		}
	double reused = (now() - t0) / (double)n;
	sf_fd_reader_free(fr);
	close(fd);
	printf("{\"file\":\"%s\",\"passes\":%ld,\"fresh_reader_us\":%.1f,\"reused_reader_us\":%.1f}\n",
	       path, n, fresh * 1e6, reused * 1e6);
	return 0;
fail:
	fprintf(stderr, "%s\n", err.msg);
	close(fd);
	return 1;
}

int unit_main(void);

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--bench") == 0)
		return bench(argv[2], atol(argv[3]) > 0 ? atol(argv[3]) : 1000);
	return unit_main();
}

#define main unit_main
UNIT_MAIN(test_reset_reads_again_after_success_and_failure, test_skip_checksums_only_skips_checksums,
	  test_fd_reader_positioned_reads_leave_the_offset,
	  test_fd_reader_skip_checksums_sticks_across_runs, test_fd_reader_reads_a_pipe_once)

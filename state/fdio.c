/* The state file over a file descriptor (state/state.h): a sink for the
 * writer and whole-file reads through one reused buffer. The fd is always
 * the caller's: nothing here closes it. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "state/internal.h"

int sf_fd_sink(void *opaque, const void *p, size_t n, struct cv_error *err)
{
	int fd = *(int *)opaque;
	const char *c = p;
	while (n > 0) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return cv_errf(err, errno, "writing the state file");
		if (k == 0)
			return cv_errf(err, EIO, "writing the state file");
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads fd through r into buf (SF_FD_CHUNK bytes) until cb says stop
 * (stop_at_meta: after SF_EV_META) or the file ends. positioned: pread
 * from offset 0, else read from the fd's offset. */
static int drive(struct sf_reader *r, int fd, unsigned char *buf, bool positioned, sf_event_fn cb,
		 void *opaque, bool stop_at_meta, struct cv_error *err)
{
	int rc = 0;
	off_t at = 0;
	for (;;) {
		ssize_t n = positioned ? pread(fd, buf, SF_FD_CHUNK, at) : read(fd, buf, SF_FD_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cv_errf(err, errno, "reading the state file");
		if (n == 0)
			return sf_reader_finish(r, err);
		at += n;
		size_t off = 0;
		/* Feed until the reader has taken every byte and reports no
		 * event: even an empty feed may still yield events (a decoded
		 * block is handed out in slices). */
		for (;;) {
			size_t k = (size_t)n - off;
			struct sf_event ev;
			rc = sf_reader_feed(r, buf + off, &k, &ev, err);
			off += k;
			if (rc < 0)
				return rc;
			if (ev.type == SF_EV_NONE) {
				if (off == (size_t)n)
					break;
				continue;
			}
			if (cb && (rc = cb(opaque, &ev, err)) != 0)
				return rc;
			if (stop_at_meta && ev.type == SF_EV_META)
				return 0;
		}
	}
}

/* One read through a reader of its own and a buffer of its own. */
static int read_once(int fd, sf_event_fn cb, void *opaque, bool stop_at_meta,
		     struct sf_reader **keep, struct cv_error *err)
{
	struct sf_reader *r = sf_reader_create(err);
	if (!r)
		return -1;
	unsigned char *buf = malloc(SF_FD_CHUNK);
	int rc = buf ? drive(r, fd, buf, false, cb, opaque, stop_at_meta, err)
		     : cv_errf(err, ENOMEM, "state file read buffer");
	free(buf);
	if (keep && rc == 0)
		*keep = r;
	else
		sf_reader_free(r);
	return rc;
}

int sf_read_fd(int fd, sf_event_fn cb, void *opaque, struct cv_error *err)
{
	return read_once(fd, cb, opaque, false, NULL, err);
}

int sf_read_meta_fd(int fd, msgpack_zone **zone, const msgpack_object **meta, struct cv_error *err)
{
	*zone = NULL;
	*meta = NULL;
	struct sf_reader *r = NULL;
	int rc = read_once(fd, NULL, NULL, true, &r, err);
	if (rc == 0)
		rc = sf_reader_take_meta(r, zone, meta, err);
	sf_reader_free(r);
	return rc;
}

struct sf_fd_reader {
	int fd;
	bool seekable, positioned;
	bool skip_checksums;
	unsigned runs;
	struct sf_reader *r;
	unsigned char *buf; /* SF_FD_CHUNK bytes */
};

struct sf_fd_reader *sf_fd_reader_create(int fd, bool positioned, struct cv_error *err)
{
	struct sf_fd_reader *fr = calloc(1, sizeof(*fr));
	if (!fr) {
		cv_errf(err, ENOMEM, "state file reader");
		return NULL;
	}
	fr->fd = fd;
	fr->seekable = lseek(fd, 0, SEEK_CUR) >= 0;
	fr->positioned = positioned && fr->seekable;
	fr->r = sf_reader_create(err);
	fr->buf = malloc(SF_FD_CHUNK);
	if (!fr->r || !fr->buf) {
		if (fr->r)
			cv_errf(err, ENOMEM, "state file read buffer");
		sf_fd_reader_free(fr);
		return NULL;
	}
	return fr;
}

void sf_fd_reader_free(struct sf_fd_reader *fr)
{
	if (!fr)
		return;
	sf_reader_free(fr->r);
	free(fr->buf);
	free(fr);
}

void sf_fd_reader_skip_checksums(struct sf_fd_reader *fr)
{
	fr->skip_checksums = true;
	sf_reader_skip_checksums(fr->r);
}

int sf_fd_reader_run(struct sf_fd_reader *fr, sf_event_fn cb, void *opaque, struct cv_error *err)
{
	if (fr->runs++ && !fr->seekable)
		return cv_errf(err, ESPIPE, "the state file cannot be read twice (it is not seekable)");
	if (fr->seekable && !fr->positioned && lseek(fr->fd, 0, SEEK_SET) < 0)
		return cv_errf(err, errno, "the state file: rewinding it");
	sf_reader_reset(fr->r);
	if (fr->skip_checksums)
		sf_reader_skip_checksums(fr->r);
	return drive(fr->r, fr->fd, fr->buf, fr->positioned, cb, opaque, false, err);
}

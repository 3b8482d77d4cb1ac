/* The state file over a file descriptor (state/state.h): a sink for the
 * writer and whole-file reads through one reused buffer. The fd is always
 * the caller's: nothing here closes it. */
#include <errno.h>
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

/* Reads fd through r until cb says stop (stop_at_meta: after SF_EV_META)
 * or the file ends. */
static int drive(struct sf_reader *r, int fd, sf_event_fn cb, void *opaque, bool stop_at_meta,
		 struct cv_error *err)
{
	unsigned char *buf = malloc(SF_FD_CHUNK);
	if (!buf)
		return cv_errf(err, ENOMEM, "state file read buffer");
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, SF_FD_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = cv_errf(err, errno, "reading the state file");
			break;
		}
		if (n == 0) {
			rc = sf_reader_finish(r, err);
			break;
		}
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
				goto out;
			if (ev.type == SF_EV_NONE) {
				if (off == (size_t)n)
					break;
				continue;
			}
			if (cb && (rc = cb(opaque, &ev, err)) != 0)
				goto out;
			if (stop_at_meta && ev.type == SF_EV_META)
				goto out;
		}
	}
out:
	free(buf);
	return rc;
}

int sf_read_fd(int fd, sf_event_fn cb, void *opaque, struct cv_error *err)
{
	struct sf_reader *r = sf_reader_create(err);
	if (!r)
		return -1;
	int rc = drive(r, fd, cb, opaque, false, err);
	sf_reader_free(r);
	return rc;
}

int sf_read_meta_fd(int fd, msgpack_zone **zone, const msgpack_object **meta, struct cv_error *err)
{
	*zone = NULL;
	*meta = NULL;
	struct sf_reader *r = sf_reader_create(err);
	if (!r)
		return -1;
	int rc = drive(r, fd, NULL, NULL, true, err);
	if (rc == 0)
		rc = sf_reader_take_meta(r, zone, meta, err);
	sf_reader_free(r);
	return rc;
}

/* Fuzz target for the state file reader (state/reader.c and what it
 * calls): the input is a whole state file, hostile. It is read twice, at
 * once and in pieces of 1 to 7 bytes (the split taken from the input's
 * length), by one reader reset in between (sf_reader_reset: nothing of a
 * read may survive it), and both reads must agree on accepting or refusing
 * it: the reader is a resumable stage machine, any split must decode the
 * same. A third read skips the checksums (sf_reader_skip_checksums): it
 * must accept whatever the checked reads accepted.
 * Every data slice is touched (ASan checks its bounds), mappings go
 * through sf_get_mapping. Must never crash, leak, or allocate beyond the
 * bounds (SF_META_MAX, SF_RECORD_MAX). */
#include <stdio.h>
#include <string.h>

#include "state/state.h"

static unsigned sum;

static void touch(const struct sf_event *ev)
{
	struct cv_error err = { 0 };
	if (ev->type == SF_EV_DATA) {
		const unsigned char *p = ev->data;
		for (size_t i = 0; i < ev->len; i++)
			sum += p[i];
	}
	if (ev->type == SF_EV_RECORD && ev->kind == SF_KIND_MAPPING) {
		struct sf_mapping m;
		if (sf_get_mapping(ev->obj, &m, &err) == 0 && m.path)
			sum += (unsigned char)m.path[m.path_len ? m.path_len - 1 : 0];
	}
}

/* 0 accepted, -1 refused. */
static int read_split(struct sf_reader *r, const uint8_t *data, size_t size, size_t step)
{
	struct cv_error err = { 0 };
	int rc = 0;
	size_t off = 0;
	for (;;) {
		size_t piece = size - off < step ? size - off : step;
		size_t k = piece;
		struct sf_event ev;
		rc = sf_reader_feed(r, data + off, &k, &ev, &err);
		off += k;
		if (rc < 0)
			break;
		if (ev.type == SF_EV_NONE && off == size)
			break;
		touch(&ev);
	}
	if (rc == 0)
		rc = sf_reader_finish(r, &err);
	if (rc < 0 && !err.msg[0])
		abort(); /* a refusal always says why */
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cv_error err = { 0 };
	struct sf_reader *r = sf_reader_create(&err);
	if (!r)
		abort();
	int whole = read_split(r, data, size, size ? size : 1);
	sf_reader_reset(r);
	int split = read_split(r, data, size, 1 + size % 7);
	if (whole != split) {
		fprintf(stderr, "fuzz_state: whole read %s, split read %s\n",
			whole ? "refused" : "accepted", split ? "refused" : "accepted");
		abort();
	}
	sf_reader_reset(r);
	sf_reader_skip_checksums(r);
	if (whole == 0 && read_split(r, data, size, size ? size : 1) != 0) {
		fprintf(stderr, "fuzz_state: refused without the checksums, accepted with them\n");
		abort();
	}
	sf_reader_free(r);
	return 0;
}

#include "fuzz_replay.h"

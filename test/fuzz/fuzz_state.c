/* Fuzz target for the state file reader (state/reader.c and what it
 * calls): the input is a whole state file, hostile. It is read twice, at
 * once and in pieces of 1 to 7 bytes (the split taken from the input's
 * length), and both reads must agree on accepting or refusing it: the
 * reader is a resumable stage machine, any split must decode the same.
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
static int read_split(const uint8_t *data, size_t size, size_t step)
{
	struct cv_error err = { 0 };
	struct sf_reader *r = sf_reader_create(&err);
	if (!r)
		abort();
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
	sf_reader_free(r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int whole = read_split(data, size, size ? size : 1);
	int split = read_split(data, size, 1 + size % 7);
	if (whole != split) {
		fprintf(stderr, "fuzz_state: whole read %s, split read %s\n",
			whole ? "refused" : "accepted", split ? "refused" : "accepted");
		abort();
	}
	return 0;
}

#include "fuzz_replay.h"

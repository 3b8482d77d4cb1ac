/* Fuzz target for the checkpoint engine's record loader (kernel/ckpt_image.c):
 * what a state file's records say about tasks, threads, mappings, pages and
 * fds, past the state reader's own checks (fuzz_state covers those). The
 * input is a stream of records, each a u16 big-endian length and that many
 * bytes of msgpack, checked as the state reader checks a record
 * (sf_mp_check, so msgpack-c never sizes a table from a forged count) and
 * fed as a record of the kind its "kind" string names (announcing "data": N bytes, the next N input bytes
 * follow as its data run, cut short at the end of the input), with the
 * loader keeping page contents or not (the first byte's low bit). Every
 * field is hostile: the loader must refuse with a message, never crash,
 * overflow a fixed array, or leak. */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "state/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct ckpt_loader l = {.skip_data = data[0] & 1};
	struct cv_error err = {0};
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 1;
	int rc = 0;
	while (rc == 0 && off < size) {
		if (size - off < 2)
			break;
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (len == 0 || len > size - off)
			break;
		struct cv_error cerr = {0};
		size_t pos = 0;
		if (sf_mp_check(data + off, len, SF_RECORD_DEPTH, "record", &cerr) < 0 ||
		    msgpack_unpack_next(&u, (const char *)data + off, len, &pos) !=
			    MSGPACK_UNPACK_SUCCESS) {
			off += len;
			continue;
		}
		off += len;
		const msgpack_object *rec = &u.data;
		if (rec->type != MSGPACK_OBJECT_MAP)
			continue;
		const msgpack_object *k = mpk_map_get(rec, "kind");
		if (!k || k->type != MSGPACK_OBJECT_STR)
			continue;
		int kind = sf_kind_lookup(k->via.str.ptr, k->via.str.size);
		if (kind < 0 || kind == SF_KIND_END)
			continue;
		uint64_t dlen = 0;
		const msgpack_object *d = mpk_map_get(rec, "data");
		if (d && d->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			dlen = d->via.u64 > (1u << 16) ? (1u << 16) : d->via.u64;
		/* The state reader guarantees page runs are page-multiples. */
		if (kind == SF_KIND_PAGES)
			dlen = (dlen + 4095) & ~(uint64_t)4095;
		struct sf_event ev = {.type = SF_EV_RECORD, .obj = rec, .kind = (enum sf_kind)kind,
				      .data_len = dlen};
		rc = ckpt_image_event(&l, &ev, &err);
		uint64_t done = 0;
		while (rc == 0 && done < dlen && off < size) {
			size_t n = size - off < 4096 ? size - off : 4096;
			if (n > dlen - done)
				n = (size_t)(dlen - done);
			struct sf_event de = {.type = SF_EV_DATA, .data = data + off, .len = n,
					      .data_off = done};
			rc = ckpt_image_event(&l, &de, &err);
			off += n;
			done += n;
		}
	}
	if (rc == 0)
		rc = ckpt_image_done(&l, &err);
	if (rc < 0 && !err.msg[0])
		abort(); /* a refusal always says why */
	msgpack_unpacked_destroy(&u);
	ckpt_loader_free(&l);
	return 0;
}

#include "test/fuzz/fuzz_replay.h"

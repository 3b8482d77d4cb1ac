#pragma once
/* The state file (docs/STATEFILE.md): one sandbox's checkpoint, streamed.
 *
 *   "CVISORSF" | u64 BE metadata length | metadata (msgpack map)
 *   | u32 BE CRC-32 of the three before (the frame's checksums cover the rest)
 *   | one LZ4 frame (block and content checksums) holding the records:
 *       u32 BE length | a msgpack map {"kind": ..., ...}  [| `data` raw bytes]
 *       ... closed by the `end` record with the counts.
 *
 * A record may announce a data run (`"data": N`): the N raw bytes that
 * follow it in the stream (page contents, a file's bytes). Writer and
 * reader stream them in bounded slices, so memory stays constant however
 * large the image is. This module knows nothing about processes: the
 * engine decides what a task or a mapping holds beyond the few fields the
 * reader checks (docs/STATEFILE.md lists them).
 *
 * Shaped like lz4's frame API: opaque contexts; the writer hands its output
 * to a sink callback through one reused buffer; the reader is a resumable
 * stage machine fed any split of the input (`sf_reader_feed`, with the
 * LZ4F_decompress in/out length convention) that yields one event at a
 * time. Errors follow core/err.h and say what is damaged. */
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SF_MAGIC "CVISORSF" /* 8 bytes, no NUL on disk */
#define SF_MAGIC_LEN 8
#define SF_VERSION 1               /* metadata "version"; the reader accepts only this */
#define SF_META_MAX (1u << 20)     /* metadata bytes the reader accepts */
#define SF_RECORD_MAX (1u << 20)   /* encoded bytes of one record (not its data run) */
#define SF_RECORD_DEPTH 32         /* nesting of msgpack containers inside a record */

/* Record kinds. The reader refuses any other name. The fields the reader
 * checks for each kind are in docs/STATEFILE.md; any other field is the
 * engine's (opaque `bin` payloads included, up to SF_RECORD_MAX). */
enum sf_kind {
	SF_KIND_CONTAINER, /* "container": id; spec, cgroup, mounts ... */
	SF_KIND_TASK,      /* "task": pid (+ pids per pid namespace, tree, creds, ...) */
	SF_KIND_THREAD,    /* "thread": tid (registers as bin fields or data) */
	SF_KIND_MAPPING,   /* "mapping": start, end, prot, flags, offset [, path] */
	SF_KIND_PAGES,     /* "pages": addr, data = byte count (the page contents follow; both page-aligned) */
	SF_KIND_FD,        /* "fd": fd (+ what it refers to) */
	SF_KIND_PIPE,      /* "pipe": id [, data = bytes buffered in it] */
	SF_KIND_FILE,      /* "file": path [, data = contents] (tmpfs files, dirs, links) */
	SF_KIND_BLOB,      /* "blob": name, data (any other named byte run) */
	SF_KIND_END,       /* "end": records, data_bytes (written by sf_writer_finish) */
	SF_KIND_COUNT,
};

/* "container", "task", ...; NULL for an out-of-range value. */
const char *sf_kind_name(enum sf_kind k);
/* The kind named s (len bytes, not NUL-terminated), or -1. */
int sf_kind_lookup(const char *s, size_t len);

/* --- Writer ------------------------------------------------------------ */

/* Receives the writer's output, in order; returns 0, or -1 with err set. */
typedef int (*sf_sink_fn)(void *opaque, const void *p, size_t n, struct cv_error *err);

/* The caller's part of the metadata (the writer adds version, _timestamp,
 * compression, kernel_release and arch). Nothing is kept after create. */
struct sf_meta {
	uint32_t container_count;
	const char *network;       /* "sandbox", "host", "none"; NULL: not written */
	size_t nspecs;             /* entries of container_specs: */
	const char *const *spec_ids;  /* container id → */
	const char *const *specs;     /* its OCI spec (config.json text) */
	uint64_t memory_bytes;     /* estimate of the page bytes to come (progress), 0: unknown */
	size_t nextra;             /* more string entries; a key starting with '_' or */
	const char *const *extra_keys; /* equal to one of the above is refused */
	const char *const *extra_values;
};

struct sf_writer;

/* Writes the envelope (magic, length, metadata) and the frame header to
 * the sink and returns a writer, or NULL with err set. The sink and its
 * opaque must outlive the writer. The caller frees with sf_writer_free. */
struct sf_writer *sf_writer_create(const struct sf_meta *meta, sf_sink_fn sink, void *opaque,
				   struct cv_error *err);

/* Starts a record of kind k: packs the map header (nfields of the caller's
 * + "kind" [+ "data" when data_len > 0]) and returns the packer for the
 * caller's nfields key/value pairs (msgpack_pack_*; mpk_pack_key). Then
 * sf_record_end. A record of kind end is refused (sf_writer_finish writes
 * it). Returns NULL (err set) if the previous record's data run is not
 * complete or the writer has failed. */
msgpack_packer *sf_record_begin(struct sf_writer *w, enum sf_kind k, uint32_t nfields,
				uint64_t data_len, struct cv_error *err);
/* Checks that exactly nfields pairs were packed, the record fits in
 * SF_RECORD_MAX and passes every check the reader will make (keys unique
 * strings, the kind's required fields, page alignment: docs/STATEFILE.md),
 * and compresses it. A refused record fails the writer. */
int sf_record_end(struct sf_writer *w, struct cv_error *err);
/* Part of the current record's data run (any split; the sum must equal its
 * data_len before the next record). Streams in bounded slices. */
int sf_write_data(struct sf_writer *w, const void *p, size_t n, struct cv_error *err);
/* Writes the end record, closes the frame, flushes to the sink. The writer
 * accepts nothing more (free it). */
int sf_writer_finish(struct sf_writer *w, struct cv_error *err);
void sf_writer_free(struct sf_writer *w);

/* Counts so far (for progress lines and the end record). */
uint64_t sf_writer_records(const struct sf_writer *w);     /* records, end excluded */
uint64_t sf_writer_data_bytes(const struct sf_writer *w);  /* data-run bytes */
uint64_t sf_writer_out_bytes(const struct sf_writer *w);   /* bytes given to the sink */

/* Typed helpers for the records whose fields the reader checks. */
struct sf_mapping {
	uint64_t start, end; /* page aligned, start < end */
	uint32_t prot, flags; /* PROT_*, MAP_* */
	uint64_t offset;     /* file offset */
	const char *path;    /* backing file or [heap]/[stack]/...; NULL: anonymous */
	/* Bytes of path. sf_get_mapping sets it: msgpack strings are not
	 * NUL-terminated, so there path points into the record, path_len long.
	 * sf_put_mapping takes a NUL-terminated path when it is 0. */
	size_t path_len;
};
int sf_put_mapping(struct sf_writer *w, const struct sf_mapping *m, struct cv_error *err);
/* A run of page contents at addr: len bytes follow with sf_write_data. */
int sf_put_pages(struct sf_writer *w, uint64_t addr, uint64_t len, struct cv_error *err);

/* A sink writing to fd (opaque: int *, the caller's fd, never closed):
 * every byte, retrying EINTR and short writes. */
int sf_fd_sink(void *opaque, const void *p, size_t n, struct cv_error *err);

/* --- Reader ------------------------------------------------------------ */

enum sf_event_kind {
	SF_EV_NONE,   /* all input consumed, no event: feed more */
	SF_EV_META,   /* the metadata was read and checked: ev->obj */
	SF_EV_RECORD, /* a record: ev->obj (map), ev->kind, ev->data_len */
	SF_EV_DATA,   /* a slice of the last record's data run: ev->data, ev->len at ev->data_off */
	SF_EV_END,    /* the end record matched the stream; only EOF may follow */
};

/* Pointers stay valid until the next call on the reader. */
struct sf_event {
	enum sf_event_kind type;
	const msgpack_object *obj; /* META: the metadata map; RECORD: the record map */
	enum sf_kind kind;         /* RECORD */
	uint64_t data_len;         /* RECORD: bytes of data run that follow (0: none) */
	const void *data;          /* DATA */
	size_t len;                /* DATA */
	uint64_t data_off;         /* DATA: offset of this slice in the run */
	uint64_t records;          /* END: records before end */
	uint64_t data_bytes;       /* END: data-run bytes in the stream */
};

struct sf_reader;

/* NULL (ENOMEM, err set) or a reader; free with sf_reader_free. */
struct sf_reader *sf_reader_create(struct cv_error *err);
void sf_reader_free(struct sf_reader *r);

/* Consumes up to *in_len bytes of in and stops at the first event. On
 * return *in_len holds the bytes consumed (feed the rest again). 0 with
 * ev->type set, or -1 with err naming the damage; after an error the reader
 * refuses everything. Any split of the file gives the same events. */
int sf_reader_feed(struct sf_reader *r, const void *in, size_t *in_len, struct sf_event *ev,
		   struct cv_error *err);
/* At end of input: 0 if the end record was read and nothing follows the
 * frame, else -1 saying where the file was cut. */
int sf_reader_finish(struct sf_reader *r, struct cv_error *err);

/* The metadata map once SF_EV_META was returned (NULL before); lives as
 * long as the reader. */
const msgpack_object *sf_reader_meta(const struct sf_reader *r);
/* Bytes consumed so far (file offset), for progress and error offsets. */
uint64_t sf_reader_offset(const struct sf_reader *r);

/* Back to the state of a fresh reader, keeping what it allocated (its
 * decompression buffer and context, its record buffer): a file read more
 * than once is read with one reader. The metadata of the last read is
 * freed. Checksums are verified again after a reset. */
void sf_reader_reset(struct sf_reader *r);
/* From the next byte of the LZ4 frame on, neither the block nor the
 * content checksums are computed (LZ4F's skipChecksums): they cost most of
 * a read (xxHash32 over the compressed and the decompressed bytes). Only
 * for a reader going over a file that another reader checks in full before
 * anything read from it is used; every other check stays. Until the next
 * sf_reader_reset. */
void sf_reader_skip_checksums(struct sf_reader *r);

/* Decodes a record of kind mapping (path points into the record, valid as
 * long as it). */
int sf_get_mapping(const msgpack_object *rec, struct sf_mapping *m, struct cv_error *err);
/* An unsigned field of a record or of the metadata (err names it if missing
 * or not an unsigned integer). */
int sf_get_u64(const msgpack_object *map, const char *key, uint64_t *out, struct cv_error *err);

/* Whole-file helpers over an fd (the caller's, never closed), reading
 * through one reused buffer. cb gets every event (META, RECORD, DATA,
 * END); a non-zero return stops the read and is returned (err as cb set
 * it). Returns 0 once the whole file was read and checked. */
typedef int (*sf_event_fn)(void *opaque, const struct sf_event *ev, struct cv_error *err);
int sf_read_fd(int fd, sf_event_fn cb, void *opaque, struct cv_error *err);
/* Reads only the envelope; *zone receives the zone that owns *meta (the
 * caller destroys it with msgpack_zone_free). Both helpers read from the
 * fd's current offset and leave it wherever their reads stopped (lseek
 * back to read the file again, e.g. validate first, then restore). */
int sf_read_meta_fd(int fd, msgpack_zone **zone, const msgpack_object **meta, struct cv_error *err);

/* Whole-file reads of one fd, repeated: one reader and one input buffer
 * kept across the reads (nothing allocated per read). Each read starts at
 * offset 0: positioned, with pread, never moving the fd's offset, so that
 * a second reader of the same file in another thread is not disturbed;
 * else by lseek and read, so that the offset follows the reading (the
 * CLI's restore progress line watches it: cmd/progress.c). A fd that
 * cannot seek (a pipe) is read once, from where it stands; a second read
 * of it is refused. */
struct sf_fd_reader;
/* fd stays the caller's and must outlive the reader. */
struct sf_fd_reader *sf_fd_reader_create(int fd, bool positioned, struct cv_error *err);
void sf_fd_reader_free(struct sf_fd_reader *fr);
/* Reads the whole file from its start, as sf_read_fd does (cb may be NULL;
 * a non-zero return of cb stops the read and is returned: a positive one
 * is the caller's "enough", not an error). */
int sf_fd_reader_run(struct sf_fd_reader *fr, sf_event_fn cb, void *opaque, struct cv_error *err);
/* sf_reader_skip_checksums for the rest of this run (when called from its
 * cb before the frame: all of its frame) and for every later run. */
void sf_fd_reader_skip_checksums(struct sf_fd_reader *fr);

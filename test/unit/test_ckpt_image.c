/* Unit tests for kernel/ckpt_image.c's refusals: a state file whose
 * records are well-formed for the state reader but wrong for the engine
 * (a register set of another size, pages outside every mapping, a thread
 * count that disagrees, an unknown fd type, mappings out of order, a page
 * run saved twice) is refused with a message naming it, and nothing is
 * kept. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "test/unit/unit.h"

enum flaw { NONE, REGS_SIZE, PAGES_OUTSIDE, THREADS_COUNT, FD_TYPE, MAP_ORDER, PAGES_TWICE };

static void u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	mpk_pack_key(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void bin(msgpack_packer *pk, const char *k, size_t n)
{
	static const unsigned char zero[4096];
	mpk_pack_key(pk, k);
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, zero, n);
}

/* A one-task file with the given flaw; returns a memfd (caller closes). */
static int image(enum flaw f)
{
	struct cv_error err = {0};
	int fd = memfd_create("ckpt-image", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, &err);
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_TASK, 10, 0, &err);
	u64(pk, "pid", 1);
	mpk_pack_key(pk, "cwd");
	mpk_pack_str(pk, "/");
	u64(pk, "umask", 022);
	bin(pk, "mm", sizeof(struct ckpt_mm));
	bin(pk, "auxv", 16);
	bin(pk, "sigactions", 64 * sizeof(struct ckpt_sigaction));
	u64(pk, "sigaltstack_sp", 0);
	u64(pk, "sigaltstack_size", 0);
	u64(pk, "sigaltstack_flags", 2);
	u64(pk, "threads", f == THREADS_COUNT ? 2 : 1);
	CHECK(sf_record_end(w, &err) == 0);
	pk = sf_record_begin(w, SF_KIND_THREAD, 10, 0, &err);
	u64(pk, "tid", 1);
	bin(pk, "regs", f == REGS_SIZE ? 8 : sizeof(struct user_regs_struct));
	bin(pk, "xstate", 512);
	u64(pk, "sigmask", 0);
	u64(pk, "rseq", 0);
	u64(pk, "rseq_len", 0);
	u64(pk, "rseq_sig", 0);
	u64(pk, "robust_list", 0);
	u64(pk, "robust_len", 0);
	u64(pk, "clear_tid", 0);
	CHECK(sf_record_end(w, &err) == 0);
	struct sf_mapping a = {.start = 0x400000, .end = 0x402000, .prot = 3,
			       .flags = MAP_PRIVATE | MAP_ANONYMOUS};
	struct sf_mapping b = {.start = 0x300000, .end = 0x301000, .prot = 3,
			       .flags = MAP_PRIVATE | MAP_ANONYMOUS};
	CHECK(sf_put_mapping(w, &a, &err) == 0);
	if (f == MAP_ORDER)
		CHECK(sf_put_mapping(w, &b, &err) == 0);
	static const unsigned char page[4096];
	CHECK(sf_put_pages(w, f == PAGES_OUTSIDE ? 0x900000 : 0x401000, 4096, &err) == 0);
	CHECK(sf_write_data(w, page, sizeof(page), &err) == 0);
	if (f == PAGES_TWICE) {
		CHECK(sf_put_pages(w, 0x401000, 4096, &err) == 0);
		CHECK(sf_write_data(w, page, sizeof(page), &err) == 0);
	}
	pk = sf_record_begin(w, SF_KIND_FD, 6, 0, &err);
	u64(pk, "fd", 3);
	mpk_pack_key(pk, "type");
	mpk_pack_str(pk, f == FD_TYPE ? "socket" : "file");
	u64(pk, "flags", 0);
	u64(pk, "cloexec", 0);
	u64(pk, "pos", 0);
	mpk_pack_key(pk, "path");
	mpk_pack_str(pk, "/etc/passwd");
	CHECK(sf_record_end(w, &err) == 0);
	CHECK(sf_writer_finish(w, &err) == 0);
	sf_writer_free(w);
	return fd;
}

static int load(enum flaw f, struct cv_error *err)
{
	int fd = image(f);
	lseek(fd, 0, SEEK_SET);
	struct ckpt_loader l = {0};
	int rc = sf_read_fd(fd, ckpt_image_event, &l, err) != 0 ? -1 : ckpt_image_done(&l, err);
	if (rc == 0)
		CHECK(l.nprocs == 1 && l.procs[0].npages == 1 && l.procs[0].nfds == 1);
	ckpt_loader_free(&l);
	close(fd);
	return rc;
}

TEST(test_good_image_loads)
{
	struct cv_error err = {0};
	CHECK(load(NONE, &err) == 0);
}

TEST(test_refusals_name_what)
{
	static const struct {
		enum flaw f;
		const char *want;
	} cases[] = {
		{REGS_SIZE, "field \"regs\" holds 8 bytes"},
		{PAGES_OUTSIDE, "lie outside its mappings"},
		{THREADS_COUNT, "1 thread records, its task record says 2"},
		{FD_TYPE, "unknown type \"socket\""},
		{MAP_ORDER, "mappings overlap or are out of order"},
		{PAGES_TWICE, "page runs overlap or are out of order at 0x401000"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cv_error err = {0};
		CHECK(load(cases[i].f, &err) < 0);
		if (!strstr(err.msg, cases[i].want))
			fprintf(stderr, "  case %zu: \"%s\"\n", i, err.msg);
		CHECK(strstr(err.msg, cases[i].want) != NULL);
	}
}

UNIT_MAIN(test_good_image_loads, test_refusals_name_what)

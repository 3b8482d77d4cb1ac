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
#include "test/unit/ckpt_records.h"
#include "test/unit/unit.h"

enum flaw { NONE, REGS_SIZE, PAGES_OUTSIDE, THREADS_COUNT, FD_TYPE, MAP_ORDER, PAGES_TWICE };

/* A one-task file with the given flaw; returns a memfd (caller closes). */
static int image(enum flaw f)
{
	struct cv_error err = {0};
	int fd = memfd_create("ckpt-image", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, &err);
	msgpack_packer *pk = ckrec_task_begin(w, 1, f == THREADS_COUNT ? 2 : 1, 0, &err);
	CHECK(sf_record_end(w, &err) == 0);
	pk = ckrec_thread_begin(w, 1, f == REGS_SIZE ? 8 : sizeof(struct user_regs_struct), 0, &err);
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
	ckrec_u64(pk, "fd", 3);
	mpk_pack_key(pk, "type");
	mpk_pack_str(pk, f == FD_TYPE ? "socket" : "file");
	ckrec_u64(pk, "flags", 0);
	ckrec_u64(pk, "cloexec", 0);
	ckrec_u64(pk, "pos", 0);
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
	struct ckpt_loader l = {0};
	int rc = ckrec_load(fd, &l, err);
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
		CHECK(ckrec_says(err.msg, cases[i].want, i));
	}
}

UNIT_MAIN(test_good_image_loads, test_refusals_name_what)

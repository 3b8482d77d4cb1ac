/* kernel/spawn_wire.c: an exec's arguments packed by boot and unpacked by
 * the intermediate. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/spawn_wire.h"
#include "unit.h"

static char *argv_[] = { "sh", "-c", "echo \"a b\"", "", NULL };
static char *envv_[] = { "PATH=/bin", "X=", NULL };
static const uint32_t gids_[] = { 10, 20, 30 };
static const int guest_[] = { 1, 5, 0 };
static const int fds_[] = { 100, 101, 102 };

static struct spawn_exec_args sample(void)
{
	struct spawn_exec_args a = {
		.init_pidfd = 7, .ns_flags = 0x20000, /* not carried */
		.filename = "/bin/sh", .argv = argv_, .envv = envv_, .cwd = "/tmp",
		.uid = 1000, .gid = 1001, .extra_gids = gids_, .n_extra_gids = 3,
		.has_caps = true,
		.caps = { .bounding = 1, .effective = 2, .inheritable = 3, .permitted = 4, .ambient = 5 },
		.no_new_privs = true, .fds = fds_, .guest_fds = guest_, .nfds = 3, .exec_fd = 9,
		.stdio_is_pty = true,
	};
	return a;
}

/* The packed bytes of a, read back from the memfd. */
static char *pack_bytes(const struct spawn_exec_args *a, size_t *len)
{
	int fd;
	struct cv_error err;
	if (spawn_wire_pack(a, &fd, &err) < 0)
		return NULL;
	struct stat st;
	fstat(fd, &st);
	char *buf = malloc((size_t)st.st_size);
	*len = (size_t)pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	return buf;
}

TEST(test_round_trip_keeps_every_per_exec_field)
{
	struct spawn_exec_args in = sample(), out;
	memset(&out, 0, sizeof(out));
	int fd;
	struct cv_error err;
	CHECK(spawn_wire_pack(&in, &fd, &err) == 0);
	void *storage = NULL;
	CHECK(spawn_wire_unpack(fd, &out, &storage, &err) == 0);
	close(fd);
	CHECK_STR(out.filename, "/bin/sh");
	CHECK_STR(out.cwd, "/tmp");
	for (int i = 0; i < 4; i++)
		CHECK_STR(out.argv[i], argv_[i]);
	CHECK(out.argv[4] == NULL);
	CHECK_STR(out.envv[0], "PATH=/bin");
	CHECK_STR(out.envv[1], "X=");
	CHECK(out.envv[2] == NULL);
	CHECK(out.uid == 1000 && out.gid == 1001);
	CHECK(out.n_extra_gids == 3 && out.extra_gids[2] == 30);
	CHECK(out.nfds == 3 && out.guest_fds[0] == 1 && out.guest_fds[1] == 5 &&
	      out.guest_fds[2] == 0);
	CHECK(out.has_caps && out.caps.bounding == 1 && out.caps.ambient == 5);
	CHECK(out.no_new_privs && out.stdio_is_pty);
	CHECK(out.exec_fd >= 0); /* "there is one": the fd itself travels beside */
	/* The container's fields are the intermediate's own, never carried. */
	CHECK(out.init_pidfd == 0 && out.ns_flags == 0 && out.fds == NULL);
	free(storage);
}

TEST(test_optional_fields_stay_absent)
{
	char *argv[] = { "true", NULL };
	char *envv[] = { NULL };
	struct spawn_exec_args in = { .argv = argv, .envv = envv, .exec_fd = -1 }, out;
	memset(&out, 0, sizeof(out));
	size_t len;
	char *buf = pack_bytes(&in, &len);
	CHECK(buf != NULL);
	void *storage = NULL;
	struct cv_error err;
	CHECK(spawn_wire_decode(buf, len, &out, &storage, &err) == 0);
	CHECK(out.filename == NULL);
	CHECK_STR(out.cwd, "/"); /* NULL cwd travels as "/" */
	CHECK(out.exec_fd == -1 && !out.has_caps && !out.no_new_privs && out.nfds == 0);
	CHECK(out.envv[0] == NULL);
	free(storage);
	free(buf);
}

/* Every shorter prefix, and every single-byte change of the counts, is
 * refused with an error or decodes within its bytes: never a read past
 * the end (ASan watches under `make check`). */
TEST(test_damaged_input_is_refused)
{
	struct spawn_exec_args in = sample();
	size_t len;
	char *buf = pack_bytes(&in, &len);
	CHECK(buf != NULL);
	struct cv_error err;
	for (size_t cut = 0; cut < len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, buf, cut);
		struct spawn_exec_args out;
		void *storage = NULL;
		if (spawn_wire_decode(copy, cut, &out, &storage, &err) == 0) {
			fprintf(stderr, "  a %zu-byte prefix of %zu decoded\n", cut, len);
			CHECK(0);
			free(storage);
		}
		free(copy);
	}
	for (size_t off = 0; off < 48 && off < len; off++) {
		for (int v = 0; v < 256; v += 51) {
			char *copy = malloc(len);
			memcpy(copy, buf, len);
			copy[off] = (char)v;
			struct spawn_exec_args out;
			void *storage = NULL;
			if (spawn_wire_decode(copy, len, &out, &storage, &err) == 0) {
				/* What decoded must lie within the buffer it came from. */
				CHECK(out.argv && out.argv[0]);
				free(storage);
			}
			free(copy);
		}
	}
	/* Trailing bytes are damage too. */
	char *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 'x';
	struct spawn_exec_args out;
	void *storage = NULL;
	CHECK(spawn_wire_decode(longer, len + 1, &out, &storage, &err) < 0);
	CHECK(strstr(err.msg, "left after") != NULL);
	free(longer);
	free(buf);
}

UNIT_MAIN(test_round_trip_keeps_every_per_exec_field, test_optional_fields_stay_absent,
	  test_damaged_input_is_refused)

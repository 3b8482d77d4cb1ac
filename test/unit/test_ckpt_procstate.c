/* Unit tests for the process state of a checkpoint (kernel/ckpt_procstate.h):
 * kernel/ckpt_image.c's reader refuses every field of it that is out of
 * range (rlimits, itimers, dumpable, the pending queues, ids, groups,
 * securebits, no_new_privs, pdeathsig, capability sets the kernel would
 * never hold), naming it, and keeps nothing; pst_check_bounds refuses a
 * capability, a hard rlimit or a cleared no_new_privs beyond what the
 * container's init was given, naming it. */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/mpk.h"
#include "kernel/ckpt_image.h"
#include "test/unit/ckpt_records.h"
#include "test/unit/unit.h"

enum flaw {
	NONE,
	SOFT_ABOVE_HARD,
	ITIMER_USEC,
	DUMPABLE,
	SIGQ_PARTIAL,
	SIGQ_SIGKILL,
	SIGQ_TOO_MANY,
	SECUREBITS,
	NNP,
	PDEATHSIG,
	GROUPS_ODD,
	UID_INVALID,
	EFF_NOT_PERMITTED,
	AMB_NOT_INHERITABLE,
	NO_STATE, /* a file from before: neither part, which loads */
};

/* n siginfos of signal sig. */
static unsigned char *siginfos(int sig, size_t n)
{
	unsigned char *b = calloc(n ? n : 1, 128);
	for (size_t i = 0; i < n; i++)
		memcpy(b + i * 128, &sig, sizeof(sig));
	return b;
}

static int image(enum flaw f)
{
	struct cv_error err = {0};
	int fd = memfd_create("ckpt-pstate", MFD_CLOEXEC);
	struct sf_meta meta = {.container_count = 1};
	struct sf_writer *w = sf_writer_create(&meta, sf_fd_sink, &fd, &err);
	bool state = f != NO_STATE;
	msgpack_packer *pk = ckrec_task_begin(w, 1, 1, state ? 5 : 0, &err);
	if (state) {
		struct ckpt_rlimit rl[CKPT_NRLIMITS];
		for (int k = 0; k < CKPT_NRLIMITS; k++)
			rl[k] = (struct ckpt_rlimit){64, 128};
		if (f == SOFT_ABOVE_HARD)
			rl[RLIMIT_NOFILE].cur = 129;
		struct ckpt_itimer it[CKPT_NITIMERS] = {{0, 0, 10, 500000}};
		if (f == ITIMER_USEC)
			it[2].value_usec = 1000000;
		ckrec_bin(pk, "rlimits", rl, sizeof(rl));
		ckrec_u64(pk, "personality", 0x40000);
		ckrec_bin(pk, "itimers", it, sizeof(it));
		ckrec_u64(pk, "dumpable", f == DUMPABLE ? 3 : 1);
		size_t n = f == SIGQ_TOO_MANY ? CKPT_MAX_SIGQ + 1 : 2;
		unsigned char *q = siginfos(f == SIGQ_SIGKILL ? SIGKILL : SIGUSR2, n);
		ckrec_bin(pk, "sigqueue", q, n * 128 - (f == SIGQ_PARTIAL ? 1 : 0));
		free(q);
	}
	CHECK(sf_record_end(w, &err) == 0);
	pk = ckrec_thread_begin(w, 1, sizeof(struct user_regs_struct), state ? 12 : 0, &err);
	if (state) {
		uint32_t ids[4] = {1000, 1001, 1002, f == UID_INVALID ? UINT32_MAX : 1003};
		uint32_t groups[2] = {100, 200};
		ckrec_bin(pk, "uids", ids, sizeof(ids));
		ckrec_bin(pk, "gids", ids, sizeof(ids));
		ckrec_bin(pk, "groups", groups, f == GROUPS_ODD ? 6 : sizeof(groups));
		ckrec_u64(pk, "cap_eff", f == EFF_NOT_PERMITTED ? 0x3 : 0x1);
		ckrec_u64(pk, "cap_prm", 0x1);
		ckrec_u64(pk, "cap_inh", 0x0);
		ckrec_u64(pk, "cap_bnd", 0x3);
		ckrec_u64(pk, "cap_amb", f == AMB_NOT_INHERITABLE ? 0x1 : 0x0);
		ckrec_u64(pk, "securebits", f == SECUREBITS ? 0x1000 : 0x11);
		ckrec_u64(pk, "no_new_privs", f == NNP ? 2 : 1);
		ckrec_u64(pk, "pdeathsig", f == PDEATHSIG ? 65 : SIGHUP);
		unsigned char *q = siginfos(SIGRTMIN + 2, 1);
		ckrec_bin(pk, "sigqueue", q, 128);
		free(q);
	}
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
	if (rc == 0 && f == NONE) {
		const struct ckpt_proc *p = &l.procs[0];
		const struct ckpt_creds *c = &p->threads[0].creds;
		CHECK(p->ps.known && p->ps.rlim[RLIMIT_NOFILE].max == 128);
		CHECK(p->ps.personality == 0x40000 && p->ps.dumpable == 1);
		CHECK(p->ps.itimer[0].value_usec == 500000 && p->ps.shared.n == 2);
		CHECK(c->known && c->uid[3] == 1003 && c->ngroups == 2 && c->groups[1] == 200);
		CHECK(c->securebits == 0x11 && c->pdeathsig == SIGHUP && c->no_new_privs == 1);
		CHECK(p->threads[0].sigq.n == 1);
	}
	if (rc == 0 && f == NO_STATE)
		CHECK(!l.procs[0].ps.known && !l.procs[0].threads[0].creds.known);
	ckpt_loader_free(&l);
	close(fd);
	return rc;
}

TEST(test_pstate_fields_load)
{
	struct cv_error err = {0};
	CHECK(load(NONE, &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "  %s\n", err.msg);
	CHECK(load(NO_STATE, &err) == 0);
}

TEST(test_pstate_reader_refusals_name_the_field)
{
	static const struct {
		enum flaw f;
		const char *want;
	} cases[] = {
		{SOFT_ABOVE_HARD, "rlimit 7: soft 129 above hard 128"},
		{ITIMER_USEC, "itimer 2 is not a valid time"},
		{DUMPABLE, "field \"dumpable\" is 3, at most 2"},
		{SIGQ_PARTIAL, "field \"sigqueue\" holds 255 bytes"},
		{SIGQ_SIGKILL, "signal 9 cannot be queued again"},
		{SIGQ_TOO_MANY, "not at most 256 whole siginfos"},
		{SECUREBITS, "field \"securebits\" is 4096"},
		{NNP, "field \"no_new_privs\" is 2"},
		{PDEATHSIG, "field \"pdeathsig\" is 65"},
		{GROUPS_ODD, "field \"groups\" holds 6 bytes"},
		{UID_INVALID, "uid or gid 4294967295 is not a valid id"},
		{EFF_NOT_PERMITTED, "effective capabilities outside the permitted ones"},
		{AMB_NOT_INHERITABLE, "ambient capabilities outside the permitted and inheritable"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cv_error err = {0};
		CHECK(load(cases[i].f, &err) < 0);
		CHECK(ckrec_says(err.msg, cases[i].want, i));
		CHECK(strstr(err.msg, "task 1") != NULL);
	}
}

/* A one-thread process holding `c`, limits `rl`, against bounds b. */
static int bounds(const struct ckpt_creds *c, uint64_t nofile_max, const struct pst_bounds *b,
		  struct cv_error *err)
{
	struct ckpt_thread th[1];
	memset(th, 0, sizeof(th));
	th[0].tid = 1;
	th[0].creds = *c;
	struct ckpt_proc p;
	memset(&p, 0, sizeof(p));
	p.pid = 7;
	p.threads = th;
	p.nthreads = 1;
	p.ps.known = true;
	for (int k = 0; k < CKPT_NRLIMITS; k++)
		p.ps.rlim[k] = (struct ckpt_rlimit){64, 1024};
	p.ps.rlim[RLIMIT_NOFILE].max = nofile_max;
	return pst_check_bounds(&p, b, err);
}

TEST(test_bounds_refuse_beyond_the_bundle)
{
	/* The bundle: CAP_CHOWN (0), CAP_SETPCAP (8) everywhere but ambient;
	 * no_new_privs; every hard limit 1024. */
	struct pst_bounds b = {.cap_eff = 0x101, .cap_prm = 0x101, .cap_inh = 0, .cap_bnd = 0x101,
			       .no_new_privs = 1};
	for (int k = 0; k < CKPT_NRLIMITS; k++)
		b.rlim[k] = (struct ckpt_rlimit){1024, 1024};
	struct ckpt_creds ok = {.known = true, .cap_eff = 0x1, .cap_prm = 0x1, .cap_inh = 0x100,
				.cap_bnd = 0x1, .cap_amb = 0, .no_new_privs = 1};
	struct cv_error err = {0};
	CHECK(bounds(&ok, 1024, &b, &err) == 0);

	struct ckpt_creds c = ok;
	c.cap_bnd |= 1ULL << 21;
	CHECK(bounds(&c, 1024, &b, &err) < 0);
	CHECK_STR(err.msg, "process 7: capability CAP_SYS_ADMIN is not in the container's "
			   "bounding set (thread 1)");

	b.cap_prm = 0x1; /* CAP_SETPCAP bounded but not permitted */
	b.cap_eff = 0x1;
	c = ok;
	c.cap_prm = c.cap_eff = 0x101;
	memset(&err, 0, sizeof(err));
	CHECK(bounds(&c, 1024, &b, &err) < 0);
	CHECK_STR(err.msg, "process 7: capability CAP_SETPCAP is not in the container's permitted "
			   "set (thread 1)");
	/* Without CAP_SETPCAP, inheritable may not reach past permitted. */
	memset(&err, 0, sizeof(err));
	CHECK(bounds(&ok, 1024, &b, &err) < 0);
	CHECK(strstr(err.msg, "inheritable capability CAP_SETPCAP") != NULL);
	b.cap_prm = b.cap_eff = 0x101;

	c = ok;
	c.no_new_privs = 0;
	memset(&err, 0, sizeof(err));
	CHECK(bounds(&c, 1024, &b, &err) < 0);
	CHECK(strstr(err.msg, "process 7: no_new_privs is off in the state file") != NULL);

	memset(&err, 0, sizeof(err));
	CHECK(bounds(&ok, 1048576, &b, &err) < 0);
	CHECK_STR(err.msg, "process 7: rlimit RLIMIT_NOFILE hard 1048576 exceeds the container's 1024");
	memset(&err, 0, sizeof(err));
	CHECK(bounds(&ok, (uint64_t)RLIM_INFINITY, &b, &err) < 0);
	CHECK(strstr(err.msg, "hard unlimited exceeds the container's 1024") != NULL);
	/* An unknown part (an older file) is left as the bundle's: no refusal. */
	c = ok;
	c.known = false;
	c.cap_bnd = ~0ULL;
	memset(&err, 0, sizeof(err));
	CHECK(bounds(&c, 1024, &b, &err) == 0);
}

UNIT_MAIN(test_pstate_fields_load, test_pstate_reader_refusals_name_the_field,
	  test_bounds_refuse_beyond_the_bundle)

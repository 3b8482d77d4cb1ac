/* Process attributes from the spec (kernel/procattr.h): the tables of
 * names runc and the runtime spec use, and the syscalls that apply them. */
#include "kernel/procattr.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

/* linux/ioprio.h is not in every libc's kernel headers. */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

struct named {
	const char *name;
	unsigned long value;
};

static const struct named io_classes[] = {
	{ "IOPRIO_CLASS_RT", 1 },
	{ "IOPRIO_CLASS_BE", 2 },
	{ "IOPRIO_CLASS_IDLE", 3 },
};

/* The runtime spec's list. SCHED_ISO exists only in out-of-tree kernels:
 * accepted by name, the kernel refuses it with the field named. */
static const struct named sched_policies[] = {
	{ "SCHED_OTHER", SCHED_OTHER }, { "SCHED_FIFO", SCHED_FIFO },
	{ "SCHED_RR", SCHED_RR },       { "SCHED_BATCH", SCHED_BATCH },
	{ "SCHED_ISO", 4 },             { "SCHED_IDLE", SCHED_IDLE },
	{ "SCHED_DEADLINE", SCHED_DEADLINE },
};

const char *const procattr_sched_policies[] = {
	"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH",
	"SCHED_ISO",   "SCHED_IDLE", "SCHED_DEADLINE", NULL,
};

static const struct named sched_flags[] = {
	{ "SCHED_FLAG_RESET_ON_FORK", 0x01 }, { "SCHED_FLAG_RECLAIM", 0x02 },
	{ "SCHED_FLAG_DL_OVERRUN", 0x04 },    { "SCHED_FLAG_KEEP_POLICY", 0x08 },
	{ "SCHED_FLAG_KEEP_PARAMS", 0x10 },   { "SCHED_FLAG_UTIL_CLAMP_MIN", 0x20 },
	{ "SCHED_FLAG_UTIL_CLAMP_MAX", 0x40 },
};

static const struct named domains[] = {
	{ "LINUX", PER_LINUX },
	{ "LINUX32", PER_LINUX32 },
};

static const struct named persona_flags[] = {
	{ "ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE }, { "ADDR_COMPAT_LAYOUT", ADDR_COMPAT_LAYOUT },
	{ "READ_IMPLIES_EXEC", READ_IMPLIES_EXEC }, { "ADDR_LIMIT_32BIT", ADDR_LIMIT_32BIT },
	{ "SHORT_INODE", SHORT_INODE },             { "WHOLE_SECONDS", WHOLE_SECONDS },
	{ "STICKY_TIMEOUTS", STICKY_TIMEOUTS },     { "ADDR_LIMIT_3GB", ADDR_LIMIT_3GB },
	{ "UNAME26", UNAME26 },                     { "MMAP_PAGE_ZERO", MMAP_PAGE_ZERO },
	{ "FDPIC_FUNCPTRS", FDPIC_FUNCPTRS },
};

static bool lookup(const struct named *t, size_t n, const char *name, unsigned long *out)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(t[i].name, name) == 0) {
			*out = t[i].value;
			return true;
		}
	return false;
}

static int check_io_priority(const struct oci_io_priority *io, struct cv_error *err)
{
	unsigned long c;
	if (!lookup(io_classes, ARRAY_SIZE(io_classes), io->class_, &c))
		return cv_errf(err, 0,
			       "spec.process.ioPriority.class: unknown class \"%s\" (expected "
			       "IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)",
			       io->class_);
	if (io->priority < 0 || io->priority > 7)
		return cv_errf(err, 0, "spec.process.ioPriority.priority: %d is out of range 0-7",
			       (int)io->priority);
	return 0;
}

static int sched_policy(const struct oci_scheduler *s, unsigned long *policy, unsigned long *flags,
			struct cv_error *err)
{
	if (!lookup(sched_policies, ARRAY_SIZE(sched_policies), s->policy, policy))
		return cv_errf(err, 0, "spec.process.scheduler.policy: unknown policy \"%s\"",
			       s->policy);
	*flags = 0;
	for (size_t i = 0; i < s->n_flags; i++) {
		unsigned long f;
		if (!lookup(sched_flags, ARRAY_SIZE(sched_flags), s->flags[i], &f))
			return cv_errf(err, 0, "spec.process.scheduler.flags[%zu]: unknown flag \"%s\"",
				       i, s->flags[i] ? s->flags[i] : "");
		*flags |= f;
	}
	if (s->nice < -20 || s->nice > 19)
		return cv_errf(err, 0, "spec.process.scheduler.nice: %d is out of range -20..19",
			       (int)s->nice);
	bool rt = *policy == SCHED_FIFO || *policy == SCHED_RR;
	if (rt && (s->priority < 1 || s->priority > 99))
		return cv_errf(err, 0,
			       "spec.process.scheduler.priority: %s needs a priority of 1-99, got %d",
			       s->policy, (int)s->priority);
	if (!rt && s->priority != 0)
		return cv_errf(err, 0, "spec.process.scheduler.priority: must be 0 for %s, got %d",
			       s->policy, (int)s->priority);
	if (*policy == SCHED_DEADLINE && (s->runtime == 0 || s->runtime > s->deadline ||
					  (s->period && s->deadline > s->period)))
		return cv_errf(err, 0,
			       "spec.process.scheduler: SCHED_DEADLINE needs 0 < runtime <= deadline "
			       "<= period (period 0 means the deadline)");
	return 0;
}

static int persona(const struct oci_personality *p, unsigned long *out, struct cv_error *err)
{
	if (!lookup(domains, ARRAY_SIZE(domains), p->domain, out))
		return cv_errf(err, 0,
			       "spec.linux.personality.domain: unknown domain \"%s\" (expected LINUX or "
			       "LINUX32)",
			       p->domain);
	for (size_t i = 0; i < p->n_flags; i++) {
		unsigned long f;
		if (!lookup(persona_flags, ARRAY_SIZE(persona_flags), p->flags[i], &f))
			return cv_errf(err, 0, "spec.linux.personality.flags[%zu]: unknown flag \"%s\"",
				       i, p->flags[i] ? p->flags[i] : "");
		*out |= f;
	}
	return 0;
}

int procattr_check(const struct oci_spec *spec, struct cv_error *err)
{
	const struct oci_process *p = &spec->process;
	unsigned long a, b;
	if (p->has_io_priority && check_io_priority(&p->io_priority, err) < 0)
		return -1;
	if (p->has_scheduler && sched_policy(&p->scheduler, &a, &b, err) < 0)
		return -1;
	if (spec->has_linux && spec->linux_.has_personality &&
	    persona(&spec->linux_.personality, &a, err) < 0)
		return -1;
	return 0;
}

int procattr_join_keyring(const struct oci_spec *spec, struct cv_error *err)
{
	const char *cid = spec->session_keyring;
	if (cid && !*cid)
		return 0; /* --no-new-keyring: keep the caller's */
	/* runc's name, "_ses.<container id>"; the kernel's "_ses" (an
	 * anonymous keyring) without an id. */
	char buf[300];
	const char *name = NULL;
	if (cid) {
		if ((size_t)snprintf(buf, sizeof(buf), "_ses.%s", cid) >= sizeof(buf))
			return cv_errf(err, ENAMETOOLONG, "the session keyring name \"_ses.%.40s...\"",
				       cid);
		name = buf;
	}
	long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name);
	if (id < 0 && errno == ENOSYS) {
		/* No keyrings in this kernel: nothing to share either (runc). */
		LOG(LL_WARN, "the kernel has no keyrings: the container keeps no session keyring");
		return 0;
	}
	if (id < 0)
		return cv_errf(err, errno, "joining a new session keyring \"%s\"",
			       name ? name : "_ses");
	/* runc's ModKeyringPerm(id, ^0, KEY_USR_SEARCH): the container's user
	 * (after the uid switch) may search its own session keyring. The
	 * description reads "type;uid;gid;perm;name". */
	char desc[512];
	long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof(desc));
	if (n < 0)
		return cv_errf(err, errno, "describing the session keyring");
	desc[sizeof(desc) - 1] = '\0';
	const char *f = desc;
	for (int i = 0; i < 3 && f; i++) {
		f = strchr(f, ';');
		if (f)
			f++;
	}
	if (!f)
		return cv_errf(err, 0, "the session keyring's description \"%s\" has no permissions",
			       desc);
	unsigned long perm = strtoul(f, NULL, 16) | 0x080000; /* KEY_USR_SEARCH */
	if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm) < 0)
		return cv_errf(err, errno, "making the session keyring searchable by its user");
	return 0;
}

int procattr_set_io_priority(const struct oci_process *p, struct cv_error *err)
{
	if (!p->has_io_priority)
		return 0;
	unsigned long c = 0;
	if (check_io_priority(&p->io_priority, err) < 0)
		return -1;
	lookup(io_classes, ARRAY_SIZE(io_classes), p->io_priority.class_, &c);
	int prio = (int)(c << IOPRIO_CLASS_SHIFT) | p->io_priority.priority;
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) < 0)
		return cv_errf(err, errno, "spec.process.ioPriority: setting %s priority %d",
			       p->io_priority.class_, (int)p->io_priority.priority);
	return 0;
}

/* struct sched_attr, SCHED_ATTR_SIZE_VER0 (glibc before 2.41 has none). */
struct procattr_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

int procattr_set_scheduler(const struct oci_process *p, struct cv_error *err)
{
	if (!p->has_scheduler)
		return 0;
	const struct oci_scheduler *s = &p->scheduler;
	unsigned long policy, flags;
	if (sched_policy(s, &policy, &flags, err) < 0)
		return -1;
	struct procattr_sched_attr a = {
		.size = sizeof(a),
		.sched_policy = (uint32_t)policy,
		.sched_flags = flags,
		.sched_nice = s->nice,
		.sched_priority = (uint32_t)s->priority,
		.sched_runtime = s->runtime,
		.sched_deadline = s->deadline,
		.sched_period = s->period,
	};
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return cv_errf(err, errno, "spec.process.scheduler: setting policy %s", s->policy);
	return 0;
}

int procattr_set_personality(const struct oci_spec *spec, struct cv_error *err)
{
	if (!spec->has_linux || !spec->linux_.has_personality)
		return 0;
	unsigned long per;
	if (persona(&spec->linux_.personality, &per, err) < 0)
		return -1;
	if (personality(per) < 0)
		return cv_errf(err, errno, "spec.linux.personality: setting domain %s",
			       spec->linux_.personality.domain);
	return 0;
}

static bool apparmor_enabled(void)
{
	char c = 'N';
	int fd = open("/sys/module/apparmor/parameters/enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, &c, 1);
	close(fd);
	return n == 1 && c == 'Y';
}

static bool selinux_enabled(void)
{
	struct statfs sf;
	return statfs("/sys/fs/selinux", &sf) == 0 && sf.f_type == SELINUX_MAGIC;
}

/* Writes val to /proc/<this pid>/<rel> (rel may start with task/<tid>).
 * /proc is the container's: it must be procfs, and rel is resolved beneath
 * it without symlinks (thread-self and self are symlinks: named by pid
 * and tid instead, in the pid namespace that mounted this /proc). */
static int write_proc(const char *rel, const char *val, const char *field, struct cv_error *err)
{
	int proc = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct statfs sf;
	if (proc < 0 || fstatfs(proc, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
		if (proc >= 0)
			close(proc);
		return cv_errf(err, EXDEV, "%s: /proc in the container is not procfs", field);
	}
	char path[128];
	struct open_how how = {
		.flags = O_WRONLY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};
	snprintf(path, sizeof(path), "%d/%s", (int)getpid(), rel);
	int fd = (int)syscall(SYS_openat2, proc, path, &how, sizeof(how));
	int e = errno;
	close(proc);
	if (fd < 0)
		return cv_errf(err, e, "%s: opening /proc/%s", field, path);
	ssize_t n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	if (n < 0)
		return cv_errf(err, e, "%s: writing \"%s\" to /proc/%s", field, val, path);
	return 0;
}

static int write_attr(const char *rel, const char *val, const char *field, struct cv_error *err)
{
	char path[96];
	snprintf(path, sizeof(path), "task/%d/attr/%s", (int)gettid(), rel);
	return write_proc(path, val, field, err);
}

int procattr_set_oom_score_adj(const struct oci_process *p, struct cv_error *err)
{
	if (!p->has_oom_score_adj)
		return 0;
	char v[16];
	snprintf(v, sizeof(v), "%d", (int)p->oom_score_adj);
	struct cv_error e2;
	cv_error_reset(&e2);
	if (write_proc("oom_score_adj", v, "spec.process.oomScoreAdj", &e2) == 0)
		return 0;
	if (e2.code == EACCES || e2.code == EPERM) {
		/* Lowering it needs CAP_SYS_RESOURCE of the host's user
		 * namespace, which a process in the container's has not got. */
		LOG(LL_WARN, "%s: the exec'd process keeps its inherited value", e2.msg);
		return 0;
	}
	*err = e2;
	return -1;
}

int procattr_set_exec_labels(const struct oci_process *p, struct cv_error *err)
{
	const char *aa = p->apparmor_profile;
	if (aa && *aa) {
		if (!apparmor_enabled()) {
			LOG(LL_WARN, "spec.process.apparmorProfile \"%s\": AppArmor is not enabled on this "
				     "host, the profile is not applied",
			    aa);
		} else {
			char v[512];
			snprintf(v, sizeof(v), "exec %s", aa);
			/* The per-LSM file first (stacked LSMs), then the shared one. */
			struct cv_error e2;
			cv_error_reset(&e2);
			if (write_attr("apparmor/exec", v, "spec.process.apparmorProfile", &e2) < 0 &&
			    write_attr("exec", v, "spec.process.apparmorProfile", err) < 0)
				return -1;
		}
	}
	const char *se = p->selinux_label;
	if (se && *se) {
		if (!selinux_enabled())
			LOG(LL_WARN, "spec.process.selinuxLabel \"%s\": SELinux is not enabled on this host, "
				     "the label is not applied",
			    se);
		else if (write_attr("exec", se, "spec.process.selinuxLabel", err) < 0)
			return -1;
	}
	return 0;
}

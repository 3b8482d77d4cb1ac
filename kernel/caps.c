/* Capability names ↔ numbers and applying the five sets (kernel/caps.h). */
#include "kernel/caps.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"


/* Indexed by capability number (include/uapi/linux/capability.h). */
static const char *const cap_names[] = {
	"CAP_CHOWN",              /* 0 */
	"CAP_DAC_OVERRIDE",       /* 1 */
	"CAP_DAC_READ_SEARCH",    /* 2 */
	"CAP_FOWNER",             /* 3 */
	"CAP_FSETID",             /* 4 */
	"CAP_KILL",               /* 5 */
	"CAP_SETGID",             /* 6 */
	"CAP_SETUID",             /* 7 */
	"CAP_SETPCAP",            /* 8 */
	"CAP_LINUX_IMMUTABLE",    /* 9 */
	"CAP_NET_BIND_SERVICE",   /* 10 */
	"CAP_NET_BROADCAST",      /* 11 */
	"CAP_NET_ADMIN",          /* 12 */
	"CAP_NET_RAW",            /* 13 */
	"CAP_IPC_LOCK",           /* 14 */
	"CAP_IPC_OWNER",          /* 15 */
	"CAP_SYS_MODULE",         /* 16 */
	"CAP_SYS_RAWIO",          /* 17 */
	"CAP_SYS_CHROOT",         /* 18 */
	"CAP_SYS_PTRACE",         /* 19 */
	"CAP_SYS_PACCT",          /* 20 */
	"CAP_SYS_ADMIN",          /* 21 */
	"CAP_SYS_BOOT",           /* 22 */
	"CAP_SYS_NICE",           /* 23 */
	"CAP_SYS_RESOURCE",       /* 24 */
	"CAP_SYS_TIME",           /* 25 */
	"CAP_SYS_TTY_CONFIG",     /* 26 */
	"CAP_MKNOD",              /* 27 */
	"CAP_LEASE",              /* 28 */
	"CAP_AUDIT_WRITE",        /* 29 */
	"CAP_AUDIT_CONTROL",      /* 30 */
	"CAP_SETFCAP",            /* 31 */
	"CAP_MAC_OVERRIDE",       /* 32 */
	"CAP_MAC_ADMIN",          /* 33 */
	"CAP_SYSLOG",             /* 34 */
	"CAP_WAKE_ALARM",         /* 35 */
	"CAP_BLOCK_SUSPEND",      /* 36 */
	"CAP_AUDIT_READ",         /* 37 */
	"CAP_PERFMON",            /* 38 */
	"CAP_BPF",                /* 39 */
	"CAP_CHECKPOINT_RESTORE", /* 40 */
};

int caps_from_name(const char *name, int *cap)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(cap_names[i], name) == 0) {
			*cap = (int)i;
			return 0;
		}
	return -1;
}

const char *caps_name(int cap)
{
	if (cap < 0 || (size_t)cap >= ARRAY_SIZE(cap_names))
		return NULL;
	return cap_names[cap];
}

int caps_last_cap(void)
{
	/* Read once: the value is fixed for the kernel's lifetime. */
	static int cached = -1;
	if (cached >= 0)
		return cached;
	int last = (int)ARRAY_SIZE(cap_names) - 1;
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[16];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			int v = atoi(buf);
			if (v > 0 && v < 64)
				last = v;
		}
	}
	cached = last;
	return cached;
}

uint64_t caps_all(void)
{
	int last = caps_last_cap();
	return last >= 63 ? ~(uint64_t)0 : (((uint64_t)1 << (last + 1)) - 1);
}

static int set_from_names(char **names, size_t n, const char *set, uint64_t *out,
			  struct cv_error *err)
{
	int last = caps_last_cap();
	*out = 0;
	for (size_t i = 0; i < n; i++) {
		int cap;
		if (caps_from_name(names[i], &cap) < 0)
			return cv_errf(err, 0, "spec.process.capabilities.%s: unknown capability \"%s\"",
				       set, names[i]);
		if (cap > last) {
			/* runc does the same: a newer spec on an older kernel still runs. */
			LOG(LL_WARN, "spec.process.capabilities.%s: %s is not supported by this kernel, ignoring it",
			    set, names[i]);
			continue;
		}
		*out |= (uint64_t)1 << cap;
	}
	return 0;
}

int caps_from_spec(const struct oci_capabilities *c, struct cap_sets *out, struct cv_error *err)
{
	memset(out, 0, sizeof(*out));
	if (set_from_names(c->bounding, c->n_bounding, "bounding", &out->bounding, err) < 0 ||
	    set_from_names(c->effective, c->n_effective, "effective", &out->effective, err) < 0 ||
	    set_from_names(c->inheritable, c->n_inheritable, "inheritable", &out->inheritable, err) < 0 ||
	    set_from_names(c->permitted, c->n_permitted, "permitted", &out->permitted, err) < 0 ||
	    set_from_names(c->ambient, c->n_ambient, "ambient", &out->ambient, err) < 0)
		return -1;
	return 0;
}

/* Called in a cloned child before execve: no allocation, no stdio. */
int caps_apply(const struct cap_sets *s, struct cv_error *err)
{
	int last = caps_last_cap();
	/* The bounding set first: dropping needs CAP_SETPCAP, which capset may remove. */
	for (int cap = 0; cap <= last; cap++) {
		if (s->bounding & ((uint64_t)1 << cap))
			continue;
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (in == 0 || (in < 0 && errno == EINVAL))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return cv_errf(err, errno, "dropping %s from the bounding set", caps_name(cap) ?: "?");
	}

	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	d[0].effective = (uint32_t)s->effective;
	d[1].effective = (uint32_t)(s->effective >> 32);
	d[0].permitted = (uint32_t)s->permitted;
	d[1].permitted = (uint32_t)(s->permitted >> 32);
	d[0].inheritable = (uint32_t)s->inheritable;
	d[1].inheritable = (uint32_t)(s->inheritable >> 32);
	if (syscall(SYS_capset, &h, d) < 0)
		return cv_errf(err, errno, "setting capabilities");

	/* Kernels before 4.3 have no ambient set: nothing to clear then. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
		if (errno == EINVAL && !s->ambient)
			return 0;
		return cv_errf(err, errno, "clearing the ambient capabilities");
	}
	for (int cap = 0; cap <= last; cap++) {
		if (!(s->ambient & ((uint64_t)1 << cap)))
			continue;
		/* The kernel raises only what is permitted and inheritable
		 * (EPERM otherwise). runc's own `spec` lists ambient capabilities
		 * without inheritable ones and runc skips them with a warning;
		 * so do we, or `cvisor spec` + `cvisor run` would fail. */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
			return cv_errf(err, errno, "raising the ambient capability %s",
				       caps_name(cap) ?: "?");
	}
	return 0;
}

/* The mount option table (kernel/mount_opts.h): runc's names and meanings
 * (libcontainer/specconv), so a spec means here what it means to runc. */
#include "kernel/mount_opts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "core/util.h"

enum opt_kind {
	OPT_FLAG,        /* sets (or clears) an MS_* flag */
	OPT_PROPAGATION, /* a propagation change after the mount */
	OPT_RECURSIVE,   /* a MOUNT_ATTR_* set (or cleared) on the whole tree */
	OPT_TMPCOPYUP,
	OPT_NOOP,        /* "defaults": the kernel's defaults */
	OPT_REFUSED,
};

static const struct {
	const char *name;
	enum opt_kind kind;
	bool clear;
	unsigned long value;
} table[] = {
	{ "defaults", OPT_NOOP, false, 0 },
	{ "ro", OPT_FLAG, false, MS_RDONLY },
	{ "rw", OPT_FLAG, true, MS_RDONLY },
	{ "nosuid", OPT_FLAG, false, MS_NOSUID },
	{ "suid", OPT_FLAG, true, MS_NOSUID },
	{ "nodev", OPT_FLAG, false, MS_NODEV },
	{ "dev", OPT_FLAG, true, MS_NODEV },
	{ "noexec", OPT_FLAG, false, MS_NOEXEC },
	{ "exec", OPT_FLAG, true, MS_NOEXEC },
	{ "sync", OPT_FLAG, false, MS_SYNCHRONOUS },
	{ "async", OPT_FLAG, true, MS_SYNCHRONOUS },
	{ "dirsync", OPT_FLAG, false, MS_DIRSYNC },
	{ "remount", OPT_FLAG, false, MS_REMOUNT },
	{ "mand", OPT_FLAG, false, MS_MANDLOCK },
	{ "nomand", OPT_FLAG, true, MS_MANDLOCK },
	{ "atime", OPT_FLAG, true, MS_NOATIME },
	{ "noatime", OPT_FLAG, false, MS_NOATIME },
	{ "diratime", OPT_FLAG, true, MS_NODIRATIME },
	{ "nodiratime", OPT_FLAG, false, MS_NODIRATIME },
	{ "relatime", OPT_FLAG, false, MS_RELATIME },
	{ "norelatime", OPT_FLAG, true, MS_RELATIME },
	{ "strictatime", OPT_FLAG, false, MS_STRICTATIME },
	{ "nostrictatime", OPT_FLAG, true, MS_STRICTATIME },
	{ "lazytime", OPT_FLAG, false, MS_LAZYTIME },
	{ "nolazytime", OPT_FLAG, true, MS_LAZYTIME },
	{ "iversion", OPT_FLAG, false, MS_I_VERSION },
	{ "noiversion", OPT_FLAG, true, MS_I_VERSION },
	{ "acl", OPT_FLAG, false, MS_POSIXACL },
	{ "noacl", OPT_FLAG, true, MS_POSIXACL },
	{ "silent", OPT_FLAG, false, MS_SILENT },
	{ "loud", OPT_FLAG, true, MS_SILENT },
	{ "nosymfollow", OPT_FLAG, false, MS_NOSYMFOLLOW },
	{ "symfollow", OPT_FLAG, true, MS_NOSYMFOLLOW },
	{ "bind", OPT_FLAG, false, MS_BIND },
	{ "rbind", OPT_FLAG, false, MS_BIND | MS_REC },
	{ "private", OPT_PROPAGATION, false, MS_PRIVATE },
	{ "rprivate", OPT_PROPAGATION, false, MS_PRIVATE | MS_REC },
	{ "shared", OPT_PROPAGATION, false, MS_SHARED },
	{ "rshared", OPT_PROPAGATION, false, MS_SHARED | MS_REC },
	{ "slave", OPT_PROPAGATION, false, MS_SLAVE },
	{ "rslave", OPT_PROPAGATION, false, MS_SLAVE | MS_REC },
	{ "unbindable", OPT_PROPAGATION, false, MS_UNBINDABLE },
	{ "runbindable", OPT_PROPAGATION, false, MS_UNBINDABLE | MS_REC },
	{ "rro", OPT_RECURSIVE, false, MOUNT_ATTR_RDONLY },
	{ "rrw", OPT_RECURSIVE, true, MOUNT_ATTR_RDONLY },
	{ "rnosuid", OPT_RECURSIVE, false, MOUNT_ATTR_NOSUID },
	{ "rsuid", OPT_RECURSIVE, true, MOUNT_ATTR_NOSUID },
	{ "rnodev", OPT_RECURSIVE, false, MOUNT_ATTR_NODEV },
	{ "rdev", OPT_RECURSIVE, true, MOUNT_ATTR_NODEV },
	{ "rnoexec", OPT_RECURSIVE, false, MOUNT_ATTR_NOEXEC },
	{ "rexec", OPT_RECURSIVE, true, MOUNT_ATTR_NOEXEC },
	{ "rnodiratime", OPT_RECURSIVE, false, MOUNT_ATTR_NODIRATIME },
	{ "rdiratime", OPT_RECURSIVE, true, MOUNT_ATTR_NODIRATIME },
	{ "rrelatime", OPT_RECURSIVE, false, MOUNT_ATTR_RELATIME },
	{ "rnorelatime", OPT_RECURSIVE, true, MOUNT_ATTR_RELATIME },
	{ "rnoatime", OPT_RECURSIVE, false, MOUNT_ATTR_NOATIME },
	{ "ratime", OPT_RECURSIVE, true, MOUNT_ATTR_NOATIME },
	{ "rstrictatime", OPT_RECURSIVE, false, MOUNT_ATTR_STRICTATIME },
	{ "rnostrictatime", OPT_RECURSIVE, true, MOUNT_ATTR_STRICTATIME },
	{ "rnosymfollow", OPT_RECURSIVE, false, MOUNT_ATTR_NOSYMFOLLOW },
	{ "rsymfollow", OPT_RECURSIVE, true, MOUNT_ATTR_NOSYMFOLLOW },
	{ "tmpcopyup", OPT_TMPCOPYUP, false, 0 },
	/* An idmapped mount needs a user namespace fd per mount (the spec's
	 * uidMappings/gidMappings of the mount): not implemented. Refused
	 * by name rather than handed to the filesystem as data. */
	{ "idmap", OPT_REFUSED, false, 0 },
	{ "ridmap", OPT_REFUSED, false, 0 },
};

const char *mount_opts_name(size_t i)
{
	while (i < ARRAY_SIZE(table) && table[i].kind == OPT_REFUSED)
		i++; /* refused ones are at the end */
	return i < ARRAY_SIZE(table) ? table[i].name : NULL;
}

static int find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return (int)i;
	return -1;
}

unsigned long mount_opts_propagation(const char *name)
{
	int i = name ? find(name) : -1;
	return i >= 0 && table[i].kind == OPT_PROPAGATION ? table[i].value : 0;
}

/* The atime modes are one field of mount_setattr: setting one must clear
 * the field (MOUNT_ATTR__ATIME), and a cleared one falls back to the
 * kernel's default, relatime; "rnorelatime" asks for strictatime. */
static void recursive(uint64_t attr, bool clear, struct mount_opts *o)
{
	if (attr & MOUNT_ATTR__ATIME || attr == MOUNT_ATTR_RELATIME) {
		if (attr == MOUNT_ATTR_RELATIME && clear) {
			attr = MOUNT_ATTR_STRICTATIME;
			clear = false;
		}
		o->rec_clr |= MOUNT_ATTR__ATIME;
		o->rec_set &= ~(uint64_t)MOUNT_ATTR__ATIME;
		if (!clear)
			o->rec_set |= attr;
		return;
	}
	if (clear) {
		o->rec_clr |= attr;
		o->rec_set &= ~attr;
	} else {
		o->rec_set |= attr;
		o->rec_clr &= ~attr;
	}
}

int mount_opts_parse(char *const *opts, size_t n, const char *field, struct mount_opts *out,
		     struct cv_error *err)
{
	memset(out, 0, sizeof(*out));
	size_t dl = 0;
	for (size_t i = 0; i < n; i++) {
		const char *o = opts[i] ? opts[i] : "";
		if (!*o)
			continue;
		int k = find(o);
		if (k < 0) {
			/* For the filesystem: "mode=755", "size=65536k". */
			int w = snprintf(out->data + dl, sizeof(out->data) - dl, "%s%s", dl ? "," : "", o);
			if (w < 0 || (size_t)w >= sizeof(out->data) - dl)
				return cv_errf(err, E2BIG, "%s.options: too long at \"%s\"", field, o);
			dl += (size_t)w;
			continue;
		}
		unsigned long v = table[k].value;
		switch (table[k].kind) {
		case OPT_FLAG:
			if (table[k].clear)
				out->flags &= ~v;
			else
				out->flags |= v & ~(unsigned long)MS_REC;
			if (v & MS_REC)
				out->recursive_bind = true;
			break;
		case OPT_PROPAGATION:
			if (out->n_propagation == MOUNT_OPTS_MAX_PROPAGATION)
				return cv_errf(err, E2BIG, "%s.options: more than %d propagation options",
					       field, MOUNT_OPTS_MAX_PROPAGATION);
			out->propagation[out->n_propagation++] = v;
			break;
		case OPT_RECURSIVE:
			recursive(v, table[k].clear, out);
			break;
		case OPT_TMPCOPYUP:
			out->tmpcopyup = true;
			break;
		case OPT_NOOP:
			break;
		case OPT_REFUSED:
			return cv_errf(err, 0,
				       "%s.options: \"%s\" (idmapped mounts) is not supported by cvisor",
				       field, o);
		}
	}
	return 0;
}

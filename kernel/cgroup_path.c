/* Where a container's cgroup is (kernel/cgroup.h, cgroup_resolve_path):
 * runc's rules for linux.cgroupsPath, resolved once by `create` into a
 * path relative to every hierarchy's root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/cgroup.h"

/* Refuses ".." (a spec must not escape the tree), "." and empty
 * components other than repeated slashes, so the node is exactly where the
 * text says. */
static int check_components(const char *field, const char *raw, const char *p,
			    struct cv_error *err)
{
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		if ((len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.'))
			return cv_errf(err, 0, "%s \"%s\" must not contain \".\" or \"..\"", field, raw);
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* Appends "/"-separated rel to out (which holds a path without a trailing
 * slash, "" for the root), dropping repeated slashes. */
static int append(char *out, size_t n, const char *rel, struct cv_error *err)
{
	size_t len = strlen(out);
	for (const char *p = rel; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		int w = snprintf(out + len, n - len, "%s%.*s", len ? "/" : "", (int)(e - p), p);
		if (w < 0 || (size_t)w >= n - len)
			return cv_errf(err, ENAMETOOLONG, "the container's cgroup path");
		len += (size_t)w;
		p = e;
	}
	return 0;
}

/* systemd's unit-name expansion of a slice (runc's ExpandSlice):
 * "machine-libpod.slice" → "machine.slice/machine-libpod.slice",
 * "-.slice" → the root. */
static int expand_slice(const char *raw, const char *slice, size_t sl, char *out, size_t n,
			struct cv_error *err)
{
	static const char suffix[] = ".slice";
	const size_t sfx = sizeof(suffix) - 1;
	if (sl <= sfx || memcmp(slice + sl - sfx, suffix, sfx) != 0)
		return cv_errf(err, 0, "linux.cgroupsPath \"%s\": the slice \"%.*s\" must end in \".slice\"",
			       raw, (int)sl, slice);
	size_t name = sl - sfx;
	out[0] = '\0';
	if (name == 1 && slice[0] == '-')
		return 0;
	size_t len = 0;
	for (size_t i = 0; i <= name; i++) {
		if (i < name && slice[i] != '-')
			continue;
		/* test--a.slice, -test.slice and test-.slice are not slice names. */
		if (i == 0 || slice[i - 1] == '-')
			return cv_errf(err, 0, "linux.cgroupsPath \"%s\": \"%.*s\" is not a valid slice name",
				       raw, (int)sl, slice);
		int w = snprintf(out + len, n - len, "%s%.*s%s", len ? "/" : "", (int)i, slice, suffix);
		if (w < 0 || (size_t)w >= n - len)
			return cv_errf(err, ENAMETOOLONG, "the container's cgroup path");
		len += (size_t)w;
	}
	return 0;
}

/* Splits "slice:prefix:name" into systemd's slice ("system.slice" when
 * empty, systemd's default for system services) and unit
 * ("<prefix>-<name>.scope", or "<name>.scope" without a prefix), checking
 * each part as runc's systemd driver does. */
static int split_systemd(const char *raw, char *slice, size_t sn, char *unit, size_t un,
			 struct cv_error *err)
{
	const char *c1 = strchr(raw, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || strchr(c2 + 1, ':'))
		return cv_errf(err, 0,
			       "linux.cgroupsPath \"%s\": expected \"slice:prefix:name\" (systemd) or an absolute path",
			       raw);
	const char *name = c2 + 1;
	if (!*name)
		return cv_errf(err, 0, "linux.cgroupsPath \"%s\": the name part is empty", raw);
	if (memchr(raw, '/', (size_t)(c2 - raw)) || strchr(name, '/'))
		return cv_errf(err, 0, "linux.cgroupsPath \"%s\": a systemd path has no \"/\"", raw);
	if (check_components("linux.cgroupsPath", raw, name, err) < 0)
		return -1;
	/* runc makes "<name>.slice" a slice unit of its own rather than a
	 * scope; cvisor makes scopes only. */
	size_t nl = strlen(name);
	if (nl >= 6 && strcmp(name + nl - 6, ".slice") == 0)
		return cv_errf(err, 0,
			       "linux.cgroupsPath \"%s\": a name ending in \".slice\" (a slice as the container's unit) is not supported; cvisor makes a scope",
			       raw);
	int w = c1 > raw ? snprintf(slice, sn, "%.*s", (int)(c1 - raw), raw) :
			   snprintf(slice, sn, "system.slice");
	if (w < 0 || (size_t)w >= sn)
		return cv_errf(err, ENAMETOOLONG, "linux.cgroupsPath \"%s\": the slice", raw);
	int pl = (int)(c2 - c1 - 1);
	w = pl ? snprintf(unit, un, "%.*s-%s.scope", pl, c1 + 1, name) :
		 snprintf(unit, un, "%s.scope", name);
	if (w < 0 || (size_t)w >= un)
		return cv_errf(err, ENAMETOOLONG, "linux.cgroupsPath \"%s\": the unit name", raw);
	return 0;
}

/* "slice:prefix:name" → "<expanded slice>/<prefix>-<name>.scope", the
 * nodes systemd gives the transient scope. */
static int systemd_form(const char *raw, char *out, size_t n, struct cv_error *err)
{
	char slice[256], unit[512];
	if (split_systemd(raw, slice, sizeof(slice), unit, sizeof(unit), err) < 0 ||
	    expand_slice(raw, slice, strlen(slice), out, n, err) < 0)
		return -1;
	return append(out, n, unit, err);
}

/* --systemd-cgroup without a cgroupsPath: runc's default scope
 * ("system.slice", prefix "runc", the id), with cvisor's name. */
static const char *systemd_default(const char *id, char *buf, size_t n)
{
	snprintf(buf, n, ":cvisor:%s", id ? id : "");
	return buf;
}

int cgroup_systemd_names(const char *cgroups_path, const char *id, char *slice, size_t sn,
			 char *unit, size_t un, struct cv_error *err)
{
	char def[512];
	const char *cp = cgroups_path && *cgroups_path ? cgroups_path :
							 systemd_default(id, def, sizeof(def));
	return split_systemd(cp, slice, sn, unit, un, err);
}

/* The parent runc gives a relative path: on the unified hierarchy, the
 * parent of the caller's own cgroup (the caller's cgroup most probably
 * has processes, so no controller could be enabled below it: runc's fs2
 * rule); without one, the caller's own cgroup of the memory hierarchy
 * (runc's fs rule, which is per controller; cvisor keeps one path in every
 * hierarchy, so it takes that of the memory controller). */
static int own_parent(char *out, size_t n, struct cv_error *err)
{
	bool v2 = cgroup_v2_root() != NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return cv_errf(err, errno, "reading /proc/self/cgroup");
	char line[4096], path[4096] = "";
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = '\0'; /* "id\0controllers\0path" */
		const char *ctrls = c1 + 1;
		if (v2) {
			found = strcmp(line, "0") == 0 && !*ctrls;
		} else {
			for (char *save = NULL, *t = strtok_r(c1 + 1, ",", &save); t && !found;
			     t = strtok_r(NULL, ",", &save))
				found = strcmp(t, "memory") == 0;
		}
		if (found)
			snprintf(path, sizeof(path), "%s", c2 + 1);
	}
	fclose(f);
	if (!found || path[0] != '/')
		return cv_errf(err, 0,
			       "linux.cgroupsPath is relative, and /proc/self/cgroup does not name this process's %s cgroup",
			       v2 ? "unified" : "memory");
	/* Above our cgroup namespace's root the kernel writes "/..": such a
	 * parent is not ours to use. */
	if (check_components("this process's cgroup", path, path, err) < 0)
		return -1;
	if (v2) {
		char *slash = strrchr(path, '/');
		*slash = '\0';
	}
	out[0] = '\0';
	return append(out, n, path, err);
}

int cgroup_resolve_path(const char *cgroups_path, const char *id, bool systemd, char *out,
			size_t n, struct cv_error *err)
{
	const char *cp = cgroups_path && *cgroups_path ? cgroups_path : NULL;
	if (n == 0)
		return cv_errf(err, ENAMETOOLONG, "the container's cgroup path");
	out[0] = '\0';
	/* The systemd driver names a scope: only the systemd form (or none,
	 * the default scope) says which, as runc requires. */
	if (systemd && cp && !strchr(cp, ':'))
		return cv_errf(err, 0,
			       "linux.cgroupsPath \"%s\": --systemd-cgroup expects \"slice:prefix:name\"",
			       cp);
	char def[512];
	if (systemd && !cp) {
		if (!id || !*id)
			return cv_errf(err, 0, "container id \"\" cannot name a systemd scope");
		cp = systemd_default(id, def, sizeof(def));
	}
	if (cp && cp[0] == '/') {
		if (check_components("linux.cgroupsPath", cp, cp, err) < 0 || append(out, n, cp, err) < 0)
			return -1;
		if (!out[0])
			return cv_errf(err, 0, "linux.cgroupsPath \"%s\": the root cgroup cannot hold a container",
				       cp);
		return 0;
	}
	if (cp && strchr(cp, ':'))
		return systemd_form(cp, out, n, err);
	/* Relative, or none: runc's default is the container id. */
	const char *rel = cp ? cp : id;
	if (!rel || !*rel)
		return cv_errf(err, 0, "container id \"\" cannot name a cgroup");
	if (check_components(cp ? "linux.cgroupsPath" : "container id", rel, rel, err) < 0)
		return -1;
	if (own_parent(out, n, err) < 0 || append(out, n, rel, err) < 0)
		return -1;
	if (!out[0])
		return cv_errf(err, 0, "linux.cgroupsPath \"%s\": the root cgroup cannot hold a container",
			       rel);
	return 0;
}

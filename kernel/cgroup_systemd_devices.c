/* The container's device rules as systemd's DevicePolicy/DeviceAllow
 * (kernel/cgroup_systemd.h, cgroup_systemd_device_props), as runc's
 * systemd driver sends them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/cgroup_devices.h"
#include "kernel/cgroup_systemd.h"

static bool is_all(const struct cgdev_rule *r)
{
	return r->type == 'a' && r->major < 0 && r->minor < 0 && r->access == CGDEV_ACC_ALL;
}

/* systemd's "char-<driver>" names every minor of a major by the driver
 * name /proc/devices gives it. false when the major is not listed. */
static bool driver_name(char type, int64_t major, char *out, size_t n)
{
	FILE *f = fopen("/proc/devices", "re");
	if (!f)
		return false;
	char line[256];
	bool in = false, found = false;
	const char *section = type == 'c' ? "Character devices:" : "Block devices:";
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strchr(line, ':')) {
			in = strcmp(line, section) == 0;
			continue;
		}
		long long m;
		char name[128];
		if (in && sscanf(line, "%lld %127s", &m, name) == 2 && m == major) {
			snprintf(out, n, "%s-%s", type == 'c' ? "char" : "block", name);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* The node systemd takes for one c or b rule, or false if it has none. */
static bool node_of(const struct cgdev_rule *r, char *out, size_t n)
{
	const char *kind = r->type == 'c' ? "char" : "block";
	if (r->major < 0 && r->minor < 0) {
		snprintf(out, n, "%s-*", kind);
		return true;
	}
	if (r->major < 0)
		return false;
	if (r->minor < 0)
		return driver_name(r->type, r->major, out, n);
	snprintf(out, n, "/dev/%s/%lld:%lld", kind, (long long)r->major, (long long)r->minor);
	return true;
}

static bool covers(const struct cgdev_rule *a, const struct cgdev_rule *b)
{
	return a->type == b->type && (a->major < 0 || a->major == b->major) &&
	       (a->minor < 0 || a->minor == b->minor);
}

/* The allow list the rules end in: list holds c/b rules (no 'a'), their
 * access bits trimmed by later denies of the very same devices. */
static int allow_list(const struct cgdev_rule *rules, size_t n, size_t n_spec,
		      struct cgdev_rule *list, size_t *nl, bool *allow_all, struct cv_error *err)
{
	*allow_all = false;
	*nl = 0;
	for (size_t i = 0; i < n; i++) {
		if (is_all(&rules[i])) {
			*allow_all = rules[i].allow;
			*nl = 0;
			continue;
		}
		struct cgdev_rule half[2] = { rules[i], rules[i] };
		size_t nh = 1;
		if (rules[i].type == 'a') {
			half[0].type = 'c';
			half[1].type = 'b';
			nh = 2;
		}
		for (size_t h = 0; h < nh; h++) {
			const struct cgdev_rule *q = &half[h];
			if (q->allow) {
				if (!*allow_all)
					list[(*nl)++] = *q;
				continue;
			}
			bool cut = *allow_all;
			for (size_t e = 0; e < *nl && !cut; e++) {
				if (list[e].type == q->type && list[e].major == q->major &&
				    list[e].minor == q->minor)
					list[e].access &= ~q->access;
				else if (covers(&list[e], q) && (list[e].access & q->access))
					cut = true;
			}
			if (cut && i < n_spec)
				return cv_errf(err, 0,
					       "linux.resources.devices[%zu]: a deny inside an earlier wildcard allow cannot be given to systemd, whose DeviceAllow is an allow list",
					       i);
		}
	}
	return 0;
}

static int add(struct cgroup_sd_props *out, const char *name, char type, const char *str,
	       struct cv_error *err)
{
	struct cgroup_sd_prop *p = cgroup_sd_add(out, name, type, err);
	if (!p)
		return -1;
	if (str)
		snprintf(p->str, sizeof(p->str), "%s", str);
	return 0;
}

int cgroup_systemd_device_props(const struct oci_resources *res, struct cgroup_sd_props *out,
				struct cv_error *err)
{
	size_t n_spec = res ? res->n_devices : 0;
	if (n_spec > CGDEV_MAX_RULES)
		return cv_errf(err, 0, "linux.resources.devices: more than %d rules", CGDEV_MAX_RULES);
	struct cgdev_rule *rules = malloc((n_spec + CGDEV_N_DEFAULT) * sizeof(*rules));
	struct cgdev_rule *list = malloc(2 * (n_spec + CGDEV_N_DEFAULT) * sizeof(*list));
	int r = -1;
	if (!rules || !list) {
		cv_errf(err, ENOMEM, "linux.resources.devices");
		goto out;
	}
	size_t n = cgdev_rules(res ? res->devices : NULL, n_spec, rules), nl;
	bool allow_all;
	if (allow_list(rules, n, n_spec, list, &nl, &allow_all, err) < 0)
		goto out;
	/* An empty DeviceAllow resets systemd's list (an update replaces it). */
	if (add(out, "DevicePolicy", 's', allow_all ? "auto" : "strict", err) < 0 ||
	    add(out, "DeviceAllow", 'D', NULL, err) < 0)
		goto out;
	r = 0;
	if (allow_all)
		goto out;
	if (add(out, "DeviceAllow", 'D', NULL, err) < 0) {
		r = -1;
		goto out;
	}
	struct cgroup_sd_prop *p = &out->p[out->n - 1];
	for (size_t i = 0; i < nl; i++) {
		if (!list[i].access || out->n_dev == CGROUP_SD_DEVS_MAX)
			continue;
		struct cgroup_sd_dev *d = &out->dev[out->n_dev];
		if (!node_of(&list[i], d->node, sizeof(d->node)))
			continue;
		size_t k = 0;
		if (list[i].access & CGDEV_ACC_R)
			d->access[k++] = 'r';
		if (list[i].access & CGDEV_ACC_W)
			d->access[k++] = 'w';
		if (list[i].access & CGDEV_ACC_M)
			d->access[k++] = 'm';
		d->access[k] = '\0';
		out->n_dev++;
		p->num++;
	}
out:
	free(rules);
	free(list);
	return r;
}

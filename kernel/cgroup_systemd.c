/* The systemd cgroup driver (kernel/cgroup_systemd.h): the scope's
 * start, update and stop, over kernel/cgroup_systemd_bus.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/cgroup_internal.h"
#include "kernel/cgroup_systemd.h"
#include "kernel/cgroup_systemd_bus.h"

bool cgroup_systemd_unified(void)
{
	detect();
	return where(C_MEMORY) == WHERE_V2;
}

static int add_prop(struct cgroup_sd_props *p, const char *name, char type, uint64_t num,
		    const char *str, struct cv_error *err)
{
	struct cgroup_sd_prop *e = cgroup_sd_add(p, name, type, err);
	if (!e)
		return -1;
	e->num = num;
	if (str)
		snprintf(e->str, sizeof(e->str), "%s", str);
	return 0;
}

/* The scope's own properties: runc's Apply sets the same. */
static int scope_props(struct cgroup_sd_props *p, const char *slice, const char *description,
		       pid_t pid, bool unified, struct cv_error *err)
{
	if (add_prop(p, "Description", 's', 0, description, err) < 0 ||
	    add_prop(p, "Slice", 's', 0, slice, err) < 0 ||
	    add_prop(p, "PIDs", 'P', (uint64_t)pid, NULL, err) < 0 ||
	    /* The container may make cgroups below its own (a nested
	     * runtime), and cvisor writes the files systemd has no property
	     * for: both need the subtree delegated. */
	    add_prop(p, "Delegate", 'b', 1, NULL, err) < 0 ||
	    /* No ordering against shutdown.target etc.: the scope lives and
	     * dies with the container, as runc's. */
	    add_prop(p, "DefaultDependencies", 'b', 0, NULL, err) < 0 ||
	    add_prop(p, "MemoryAccounting", 'b', 1, NULL, err) < 0 ||
	    add_prop(p, "CPUAccounting", 'b', 1, NULL, err) < 0 ||
	    add_prop(p, "TasksAccounting", 'b', 1, NULL, err) < 0 ||
	    add_prop(p, unified ? "IOAccounting" : "BlockIOAccounting", 'b', 1, NULL, err) < 0)
		return -1;
	return 0;
}

/* StartTransientUnit(unit, "replace", props, no auxiliary units), or NULL
 * when out of memory. */
static DBusMessage *start_msg(const char *unit, const struct cgroup_sd_props *props)
{
	DBusMessage *m = sdbus_new_call("StartTransientUnit");
	if (!m)
		return NULL;
	const char *mode = "replace";
	DBusMessageIter it, aux;
	dbus_message_iter_init_append(m, &it);
	if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &unit) ||
	    !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &mode) ||
	    !sdbus_append_props(&it, props) ||
	    !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(sa(sv))", &aux) ||
	    !dbus_message_iter_close_container(&it, &aux)) {
		dbus_message_unref(m);
		return NULL;
	}
	return m;
}

/* ResetFailedUnit(unit); a unit systemd does not know is fine. */
static int reset_failed(DBusConnection *c, const char *unit, struct cv_error *err)
{
	DBusMessage *m = sdbus_new_call("ResetFailedUnit");
	if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &unit, DBUS_TYPE_INVALID)) {
		if (m)
			dbus_message_unref(m);
		return cv_errf(err, ENOMEM, "systemd: building ResetFailedUnit");
	}
	DBusError de;
	dbus_error_init(&de);
	DBusMessage *rep = sdbus_call(c, m, &de);
	if (rep) {
		dbus_message_unref(rep);
		return 0;
	}
	if (de.name && strcmp(de.name, SD_NO_SUCH_UNIT) == 0) {
		dbus_error_free(&de);
		return 0;
	}
	return sdbus_errf(err, &de, "resetting", unit);
}

int cgroup_systemd_start(const char *unit, const char *slice, const char *description, pid_t pid,
			 const struct oci_resources *res, const msgpack_object *annotations,
			 bool *queued, struct cv_error *err)
{
	*queued = false;
	bool unified = cgroup_systemd_unified();
	/* Large (~120 KiB with the DeviceAllow entries): not on boot's stack. */
	struct cgroup_sd_props *props = calloc(1, sizeof(*props));
	if (!props)
		return cv_errf(err, ENOMEM, "systemd unit properties");
	int r = -1;
	DBusConnection *c = NULL;
	if (scope_props(props, slice, description, pid, unified, err) < 0 ||
	    cgroup_systemd_res_props(res, unified, props, err) < 0 ||
	    cgroup_systemd_device_props(res, props, err) < 0 ||
	    cgroup_systemd_annotation_props(annotations, props, err) < 0)
		goto out;
	c = sdbus_open(err);
	if (!c || sdbus_watch_jobs(c, err) < 0)
		goto out;
	DBusMessage *m = start_msg(unit, props);
	if (!m) {
		cv_errf(err, ENOMEM, "systemd: building StartTransientUnit");
		goto out;
	}
	bool exists = false;
	r = sdbus_call_job(c, m, "starting the scope", unit, SD_UNIT_EXISTS, &exists, queued, err);
	if (r < 0 || !exists)
		goto out;
	/* A unit of that name is loaded. A failed scope left by an earlier
	 * container of that name goes away with a reset, and the start is
	 * tried once more (runc does the same); a running unit is not touched
	 * by the reset, and the second start fails naming it. */
	r = -1;
	if (reset_failed(c, unit, err) < 0)
		goto out;
	m = start_msg(unit, props);
	if (!m) {
		cv_errf(err, ENOMEM, "systemd: building StartTransientUnit");
		goto out;
	}
	r = sdbus_call_job(c, m, "starting the scope", unit, NULL, NULL, queued, err);
out:
	if (c)
		sdbus_close(c);
	free(props);
	return r;
}

int cgroup_systemd_set(const char *unit, const struct oci_resources *res, struct cv_error *err)
{
	struct cgroup_sd_props *props = calloc(1, sizeof(*props));
	if (!props)
		return cv_errf(err, ENOMEM, "systemd unit properties");
	int r = -1;
	DBusConnection *c = NULL;
	if (cgroup_systemd_res_props(res, cgroup_systemd_unified(), props, err) < 0)
		goto out;
	/* Device rules only when update lists some (cgroup_update's rule). */
	if (res && res->n_devices && cgroup_systemd_device_props(res, props, err) < 0)
		goto out;
	r = 0;
	if (props->n == 0)
		goto out;
	r = -1;
	c = sdbus_open(err);
	if (!c)
		goto out;
	DBusMessage *m = sdbus_new_call("SetUnitProperties");
	if (!m) {
		cv_errf(err, ENOMEM, "systemd: SetUnitProperties");
		goto out;
	}
	dbus_bool_t runtime = TRUE; /* until reboot, as runc sets them */
	DBusMessageIter it;
	dbus_message_iter_init_append(m, &it);
	if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &unit) ||
	    !dbus_message_iter_append_basic(&it, DBUS_TYPE_BOOLEAN, &runtime) ||
	    !sdbus_append_props(&it, props)) {
		dbus_message_unref(m);
		cv_errf(err, ENOMEM, "systemd: building SetUnitProperties");
		goto out;
	}
	DBusError de;
	dbus_error_init(&de);
	DBusMessage *rep = sdbus_call(c, m, &de);
	if (!rep) {
		sdbus_errf(err, &de, "setting the properties of", unit);
		goto out;
	}
	dbus_message_unref(rep);
	r = 0;
out:
	if (c)
		sdbus_close(c);
	free(props);
	return r;
}

int cgroup_systemd_stop(const char *unit, struct cv_error *err)
{
	DBusConnection *c = sdbus_open(err);
	if (!c)
		return -1;
	int r = sdbus_watch_jobs(c, err);
	bool no_unit = false;
	DBusMessage *m = r < 0 ? NULL : sdbus_new_call("StopUnit");
	const char *mode = "replace";
	if (r == 0 && (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &unit, DBUS_TYPE_STRING,
						       &mode, DBUS_TYPE_INVALID))) {
		if (m)
			dbus_message_unref(m);
		r = cv_errf(err, ENOMEM, "systemd: building StopUnit");
	} else if (r == 0) {
		r = sdbus_call_job(c, m, "stopping", unit, SD_NO_SUCH_UNIT, &no_unit, NULL, err);
	}
	/* A scope whose processes were killed may be left "failed": reset,
	 * so its name can be used again. Gone already is fine. */
	if (r == 0 && !no_unit)
		r = reset_failed(c, unit, err);
	sdbus_close(c);
	return r;
}

int cgroup_systemd_join_v2(const struct cgroup *cg, pid_t pid, struct cv_error *err)
{
	if (cg->v2_dirfd < 0)
		return 0;
	int fd = openat(cg->v2_dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "opening %s/cgroup.procs", cg->path);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	int r = 0;
	if (write(fd, buf, (size_t)n) != n)
		r = cv_errf(err, errno, "moving pid %d into %s", (int)pid, cg->path);
	close(fd);
	return r;
}

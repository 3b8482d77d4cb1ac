/* The systemd cgroup driver's bus calls (kernel/cgroup_systemd.h), through
 * libdbus-1: Debian's libsystemd-dev (sd-bus, what crun uses) ships no
 * static library, libdbus-1-dev does, and the binary links statically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dbus/dbus.h>

#include "kernel/cgroup_internal.h"
#include "kernel/cgroup_systemd.h"

#define SD_NAME "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MGR "org.freedesktop.systemd1.Manager"
#define SD_NO_SUCH_UNIT "org.freedesktop.systemd1.NoSuchUnit"

static const char *bus_address(void)
{
	const char *a = getenv("DBUS_SYSTEM_BUS_ADDRESS");
	return a && *a ? a : "unix:path=/run/dbus/system_bus_socket";
}

/* err from a DBusError (freed here); returns -1. */
static int bus_errf(struct cv_error *err, DBusError *de, const char *what, const char *unit)
{
	cv_errf(err, 0, "systemd: %s %s: %s", what, unit,
		de->message ? de->message : "failed");
	dbus_error_free(de);
	return -1;
}

static void bus_close(DBusConnection *c)
{
	dbus_connection_close(c);
	dbus_connection_unref(c);
}

/* A private connection to the system bus on which systemd answers, or
 * NULL with err naming systemd. The caller closes it (bus_close). */
static DBusConnection *bus_open(struct cv_error *err)
{
	/* libdbus would otherwise set SIGPIPE to SIG_IGN in this process,
	 * which every container process forked later would inherit. */
	dbus_connection_set_change_sigpipe(FALSE);
	DBusError de;
	dbus_error_init(&de);
	const char *addr = bus_address();
	DBusConnection *c = dbus_connection_open_private(addr, &de);
	if (!c) {
		cv_errf(err, 0,
			"--systemd-cgroup: systemd is not running on this host: the system bus at %s does not answer (%s)",
			addr, de.message ? de.message : "?");
		dbus_error_free(&de);
		return NULL;
	}
	dbus_connection_set_exit_on_disconnect(c, FALSE);
	if (!dbus_bus_register(c, &de)) {
		cv_errf(err, 0, "--systemd-cgroup: registering on the system bus at %s: %s", addr,
			de.message ? de.message : "?");
		dbus_error_free(&de);
		bus_close(c);
		return NULL;
	}
	dbus_bool_t owned = dbus_bus_name_has_owner(c, SD_NAME, &de);
	if (dbus_error_is_set(&de) || !owned) {
		cv_errf(err, 0,
			"--systemd-cgroup: systemd is not running on this host: nothing owns %s on the system bus at %s%s%s",
			SD_NAME, addr, dbus_error_is_set(&de) ? ": " : "",
			dbus_error_is_set(&de) ? de.message : "");
		dbus_error_free(&de);
		bus_close(c);
		return NULL;
	}
	return c;
}

int cgroup_systemd_check(struct cv_error *err)
{
	DBusConnection *c = bus_open(err);
	if (!c)
		return -1;
	bus_close(c);
	return 0;
}

/* Appends props as a(sv). */
static bool append_props(DBusMessageIter *it, const struct cgroup_sd_props *props)
{
	DBusMessageIter arr;
	if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "(sv)", &arr))
		return false;
	for (size_t i = 0; i < props->n; i++) {
		const struct cgroup_sd_prop *p = &props->p[i];
		DBusMessageIter st, var, pids, dev;
		const char *name = p->name, *s = p->str;
		char sig[2] = { p->type, '\0' };
		dbus_bool_t b = p->num != 0;
		dbus_uint32_t u = (dbus_uint32_t)p->num;
		dbus_int32_t i32 = (dbus_int32_t)(int64_t)p->num;
		dbus_uint64_t t = p->num;
		dbus_int64_t x = (dbus_int64_t)p->num;
		bool ok = dbus_message_iter_open_container(&arr, DBUS_TYPE_STRUCT, NULL, &st) &&
			  dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &name) &&
			  dbus_message_iter_open_container(&st, DBUS_TYPE_VARIANT,
							   p->type == 'P'   ? "au" :
							   p->type == 'D' ? "a(ss)" :
									    sig,
							   &var);
		if (!ok)
			return false;
		switch (p->type) {
		case 'b': ok = dbus_message_iter_append_basic(&var, DBUS_TYPE_BOOLEAN, &b); break;
		case 'u': ok = dbus_message_iter_append_basic(&var, DBUS_TYPE_UINT32, &u); break;
		case 'i': ok = dbus_message_iter_append_basic(&var, DBUS_TYPE_INT32, &i32); break;
		case 't': ok = dbus_message_iter_append_basic(&var, DBUS_TYPE_UINT64, &t); break;
		case 'x': ok = dbus_message_iter_append_basic(&var, DBUS_TYPE_INT64, &x); break;
		case 's': ok = dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &s); break;
		case 'P':
			ok = dbus_message_iter_open_container(&var, DBUS_TYPE_ARRAY, "u", &pids) &&
			     dbus_message_iter_append_basic(&pids, DBUS_TYPE_UINT32, &u) &&
			     dbus_message_iter_close_container(&var, &pids);
			break;
		case 'D':
			ok = dbus_message_iter_open_container(&var, DBUS_TYPE_ARRAY, "(ss)", &pids);
			for (size_t k = 0; ok && k < p->num; k++) {
				const struct cgroup_sd_dev *d = &props->dev[p->dev_off + k];
				const char *node = d->node, *acc = d->access;
				ok = dbus_message_iter_open_container(&pids, DBUS_TYPE_STRUCT, NULL,
								      &dev) &&
				     dbus_message_iter_append_basic(&dev, DBUS_TYPE_STRING, &node) &&
				     dbus_message_iter_append_basic(&dev, DBUS_TYPE_STRING, &acc) &&
				     dbus_message_iter_close_container(&pids, &dev);
			}
			ok = ok && dbus_message_iter_close_container(&var, &pids);
			break;
		default:
			ok = false;
		}
		if (!ok || !dbus_message_iter_close_container(&st, &var) ||
		    !dbus_message_iter_close_container(&arr, &st))
			return false;
	}
	return dbus_message_iter_close_container(it, &arr);
}

static DBusMessage *new_call(const char *method)
{
	return dbus_message_new_method_call(SD_NAME, SD_PATH, SD_MGR, method);
}

/* Sends m (unref'd here) and waits for the reply, which the caller
 * unrefs; NULL with de set on failure. */
static DBusMessage *call(DBusConnection *c, DBusMessage *m, DBusError *de)
{
	DBusMessage *r = dbus_connection_send_with_reply_and_block(c, m, CGROUP_SYSTEMD_TIMEOUT_MS,
								   de);
	dbus_message_unref(m);
	return r;
}

/* Before a job is asked for: JobRemoved then reaches this connection
 * (systemd sends it to the job's requester, and to subscribers). A signal
 * arriving before the method's reply is queued, not lost. */
static int watch_jobs(DBusConnection *c, struct cv_error *err)
{
	DBusError de;
	dbus_error_init(&de);
	dbus_bus_add_match(c,
			   "type='signal',sender='" SD_NAME "',path='" SD_PATH "',interface='" SD_MGR
			   "',member='JobRemoved'",
			   &de);
	if (dbus_error_is_set(&de))
		return bus_errf(err, &de, "watching", "JobRemoved");
	/* Older systemd sends job signals to subscribers only; an error here
	 * (a systemd that needs no subscription) changes nothing. */
	DBusMessage *m = new_call("Subscribe");
	if (!m)
		return cv_errf(err, ENOMEM, "systemd: Subscribe");
	DBusMessage *r = call(c, m, &de);
	if (r)
		dbus_message_unref(r);
	dbus_error_free(&de);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for JobRemoved of job; fails unless its result is "done". */
static int wait_job(DBusConnection *c, const char *job, const char *what, const char *unit,
		    struct cv_error *err)
{
	int64_t deadline = now_ms() + CGROUP_SYSTEMD_TIMEOUT_MS;
	for (;;) {
		DBusMessage *m;
		while ((m = dbus_connection_pop_message(c))) {
			dbus_uint32_t id;
			const char *path, *u, *result;
			int r = 1;
			if (dbus_message_is_signal(m, SD_MGR, "JobRemoved") &&
			    dbus_message_get_args(m, NULL, DBUS_TYPE_UINT32, &id,
						  DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_STRING, &u,
						  DBUS_TYPE_STRING, &result, DBUS_TYPE_INVALID) &&
			    strcmp(path, job) == 0)
				r = strcmp(result, "done") == 0 ?
					    0 :
					    cv_errf(err, 0, "systemd: %s %s: the job ended \"%s\", not \"done\"",
						    what, unit, result);
			dbus_message_unref(m);
			if (r <= 0)
				return r;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return cv_errf(err, ETIMEDOUT,
				       "systemd: %s %s: no JobRemoved signal for job %s within %d s", what,
				       unit, job, CGROUP_SYSTEMD_TIMEOUT_MS / 1000);
		if (!dbus_connection_read_write(c, (int)left))
			return cv_errf(err, 0, "systemd: %s %s: the system bus closed the connection",
				       what, unit);
	}
}

/* Calls m (a Manager method returning a job, unref'd here) and waits for
 * that job. *no_unit tells NoSuchUnit apart when given; *queued (if given)
 * says systemd accepted the job. */
static int call_job(DBusConnection *c, DBusMessage *m, const char *what, const char *unit,
		    bool *no_unit, bool *queued, struct cv_error *err)
{
	DBusError de;
	dbus_error_init(&de);
	DBusMessage *r = call(c, m, &de);
	if (!r) {
		if (no_unit && de.name && strcmp(de.name, SD_NO_SUCH_UNIT) == 0) {
			*no_unit = true;
			dbus_error_free(&de);
			return 0;
		}
		return bus_errf(err, &de, what, unit);
	}
	if (queued)
		*queued = true;
	const char *job;
	if (!dbus_message_get_args(r, &de, DBUS_TYPE_OBJECT_PATH, &job, DBUS_TYPE_INVALID)) {
		dbus_message_unref(r);
		return bus_errf(err, &de, what, unit);
	}
	char jobc[256];
	snprintf(jobc, sizeof(jobc), "%s", job);
	dbus_message_unref(r);
	return wait_job(c, jobc, what, unit, err);
}

bool cgroup_systemd_unified(void)
{
	detect();
	return where(C_MEMORY) == WHERE_V2;
}

static int add_prop(struct cgroup_sd_props *p, const char *name, char type, uint64_t num,
		    const char *str, struct cv_error *err)
{
	if (p->n == CGROUP_SD_PROPS_MAX)
		return cv_errf(err, 0, "systemd unit properties: more than %d", CGROUP_SD_PROPS_MAX);
	struct cgroup_sd_prop *e = &p->p[p->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->type = type;
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

int cgroup_systemd_start(const char *unit, const char *slice, const char *description, pid_t pid,
			 const struct oci_resources *res, const msgpack_object *annotations,
			 bool *queued, struct cv_error *err)
{
	*queued = false;
	bool unified = cgroup_systemd_unified();
	/* Large (48 entries of ~330 bytes): not on boot's stack. */
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
	c = bus_open(err);
	if (!c || watch_jobs(c, err) < 0)
		goto out;
	DBusMessage *m = new_call("StartTransientUnit");
	if (!m) {
		cv_errf(err, ENOMEM, "systemd: StartTransientUnit");
		goto out;
	}
	const char *mode = "replace";
	DBusMessageIter it, aux;
	dbus_message_iter_init_append(m, &it);
	if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &unit) ||
	    !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &mode) ||
	    !append_props(&it, props) ||
	    /* No auxiliary units. */
	    !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(sa(sv))", &aux) ||
	    !dbus_message_iter_close_container(&it, &aux)) {
		dbus_message_unref(m);
		cv_errf(err, ENOMEM, "systemd: building StartTransientUnit");
		goto out;
	}
	r = call_job(c, m, "starting the scope", unit, NULL, queued, err);
out:
	if (c)
		bus_close(c);
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
	c = bus_open(err);
	if (!c)
		goto out;
	DBusMessage *m = new_call("SetUnitProperties");
	if (!m) {
		cv_errf(err, ENOMEM, "systemd: SetUnitProperties");
		goto out;
	}
	dbus_bool_t runtime = TRUE; /* until reboot, as runc sets them */
	DBusMessageIter it;
	dbus_message_iter_init_append(m, &it);
	if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &unit) ||
	    !dbus_message_iter_append_basic(&it, DBUS_TYPE_BOOLEAN, &runtime) ||
	    !append_props(&it, props)) {
		dbus_message_unref(m);
		cv_errf(err, ENOMEM, "systemd: building SetUnitProperties");
		goto out;
	}
	DBusError de;
	dbus_error_init(&de);
	DBusMessage *rep = call(c, m, &de);
	if (!rep) {
		bus_errf(err, &de, "setting the properties of", unit);
		goto out;
	}
	dbus_message_unref(rep);
	r = 0;
out:
	if (c)
		bus_close(c);
	free(props);
	return r;
}

int cgroup_systemd_stop(const char *unit, struct cv_error *err)
{
	DBusConnection *c = bus_open(err);
	if (!c)
		return -1;
	int r = watch_jobs(c, err);
	bool no_unit = false;
	DBusMessage *m = r < 0 ? NULL : new_call("StopUnit");
	const char *mode = "replace";
	if (r == 0 && (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &unit, DBUS_TYPE_STRING,
						       &mode, DBUS_TYPE_INVALID))) {
		if (m)
			dbus_message_unref(m);
		r = cv_errf(err, ENOMEM, "systemd: building StopUnit");
	} else if (r == 0) {
		r = call_job(c, m, "stopping", unit, &no_unit, NULL, err);
	}
	/* A scope whose processes were killed may be left "failed": reset,
	 * so its name can be used again. Gone already is fine. */
	if (r == 0 && !no_unit) {
		m = new_call("ResetFailedUnit");
		if (m && dbus_message_append_args(m, DBUS_TYPE_STRING, &unit, DBUS_TYPE_INVALID)) {
			DBusError de;
			dbus_error_init(&de);
			DBusMessage *rep = call(c, m, &de);
			if (rep)
				dbus_message_unref(rep);
			else if (!de.name || strcmp(de.name, SD_NO_SUCH_UNIT) != 0)
				r = bus_errf(err, &de, "resetting", unit);
			dbus_error_free(&de);
		} else {
			if (m)
				dbus_message_unref(m);
			r = cv_errf(err, ENOMEM, "systemd: building ResetFailedUnit");
		}
	}
	bus_close(c);
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

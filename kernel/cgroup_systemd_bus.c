/* The systemd driver's D-Bus plumbing (kernel/cgroup_systemd_bus.h),
 * through libdbus-1: Debian's libsystemd-dev (sd-bus, what crun uses) ships
 * no static library, libdbus-1-dev does, and the binary links statically. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/cgroup_systemd_bus.h"

static const char *bus_address(void)
{
	const char *a = getenv("DBUS_SYSTEM_BUS_ADDRESS");
	return a && *a ? a : "unix:path=/run/dbus/system_bus_socket";
}

/* err from a DBusError (freed here); returns -1. */
int sdbus_errf(struct cv_error *err, DBusError *de, const char *what, const char *unit)
{
	cv_errf(err, 0, "systemd: %s %s: %s", what, unit,
		de->message ? de->message : "failed");
	dbus_error_free(de);
	return -1;
}

void sdbus_close(DBusConnection *c)
{
	dbus_connection_close(c);
	dbus_connection_unref(c);
}

/* A private connection to the system bus on which systemd answers, or
 * NULL with err naming systemd. The caller closes it (sdbus_close). */
DBusConnection *sdbus_open(struct cv_error *err)
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
		sdbus_close(c);
		return NULL;
	}
	dbus_bool_t owned = dbus_bus_name_has_owner(c, SD_NAME, &de);
	if (dbus_error_is_set(&de) || !owned) {
		cv_errf(err, 0,
			"--systemd-cgroup: systemd is not running on this host: nothing owns %s on the system bus at %s%s%s",
			SD_NAME, addr, dbus_error_is_set(&de) ? ": " : "",
			dbus_error_is_set(&de) ? de.message : "");
		dbus_error_free(&de);
		sdbus_close(c);
		return NULL;
	}
	return c;
}

int cgroup_systemd_check(struct cv_error *err)
{
	DBusConnection *c = sdbus_open(err);
	if (!c)
		return -1;
	sdbus_close(c);
	return 0;
}

/* Appends props as a(sv). */
bool sdbus_append_props(DBusMessageIter *it, const struct cgroup_sd_props *props)
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
							   p->type == 'Y' ? "ay" :
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
		case 'Y': {
			const char *bytes = p->str;
			ok = dbus_message_iter_open_container(&var, DBUS_TYPE_ARRAY, "y", &pids) &&
			     dbus_message_iter_append_fixed_array(&pids, DBUS_TYPE_BYTE, &bytes,
								  (int)p->num) &&
			     dbus_message_iter_close_container(&var, &pids);
			break;
		}
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

DBusMessage *sdbus_new_call(const char *method)
{
	return dbus_message_new_method_call(SD_NAME, SD_PATH, SD_MGR, method);
}

/* Sends m (unref'd here) and waits for the reply, which the caller
 * unrefs; NULL with de set on failure. */
DBusMessage *sdbus_call(DBusConnection *c, DBusMessage *m, DBusError *de)
{
	DBusMessage *r = dbus_connection_send_with_reply_and_block(c, m, CGROUP_SYSTEMD_TIMEOUT_MS,
								   de);
	dbus_message_unref(m);
	return r;
}

/* Before a job is asked for: JobRemoved then reaches this connection
 * (systemd sends it to the job's requester, and to subscribers). A signal
 * arriving before the method's reply is queued, not lost. */
int sdbus_watch_jobs(DBusConnection *c, struct cv_error *err)
{
	DBusError de;
	dbus_error_init(&de);
	dbus_bus_add_match(c,
			   "type='signal',sender='" SD_NAME "',path='" SD_PATH "',interface='" SD_MGR
			   "',member='JobRemoved'",
			   &de);
	if (dbus_error_is_set(&de))
		return sdbus_errf(err, &de, "watching", "JobRemoved");
	/* Older systemd sends job signals to subscribers only; an error here
	 * (a systemd that needs no subscription) changes nothing. */
	DBusMessage *m = sdbus_new_call("Subscribe");
	if (!m)
		return cv_errf(err, ENOMEM, "systemd: Subscribe");
	DBusMessage *r = sdbus_call(c, m, &de);
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

int sdbus_call_job(DBusConnection *c, DBusMessage *m, const char *what, const char *unit,
		   const char *soft, bool *got_soft, bool *queued, struct cv_error *err)
{
	DBusError de;
	dbus_error_init(&de);
	DBusMessage *r = sdbus_call(c, m, &de);
	if (!r) {
		if (soft && de.name && strcmp(de.name, soft) == 0) {
			*got_soft = true;
			dbus_error_free(&de);
			return 0;
		}
		return sdbus_errf(err, &de, what, unit);
	}
	if (queued)
		*queued = true;
	const char *job;
	if (!dbus_message_get_args(r, &de, DBUS_TYPE_OBJECT_PATH, &job, DBUS_TYPE_INVALID)) {
		dbus_message_unref(r);
		return sdbus_errf(err, &de, what, unit);
	}
	char jobc[256];
	snprintf(jobc, sizeof(jobc), "%s", job);
	dbus_message_unref(r);
	return wait_job(c, jobc, what, unit, err);
}


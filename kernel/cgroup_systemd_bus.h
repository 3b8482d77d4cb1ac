#pragma once
/* The systemd driver's D-Bus plumbing (kernel/cgroup_systemd_bus.c), for
 * kernel/cgroup_systemd.c only: a private connection to the system bus on
 * which systemd answers, Manager method calls, the a(sv) marshalling of
 * struct cgroup_sd_props, and waiting for a job's JobRemoved. */
#include <stdbool.h>

#include <dbus/dbus.h>

#include "core/err.h"
#include "kernel/cgroup_systemd.h"

#define SD_NAME "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MGR "org.freedesktop.systemd1.Manager"
#define SD_NO_SUCH_UNIT "org.freedesktop.systemd1.NoSuchUnit"
#define SD_UNIT_EXISTS "org.freedesktop.systemd1.UnitExists"

/* err from a DBusError (freed here): "systemd: <what> <unit>: ...". -1. */
int sdbus_errf(struct cv_error *err, DBusError *de, const char *what, const char *unit);
/* The connection, or NULL with err naming systemd; sdbus_close it. */
DBusConnection *sdbus_open(struct cv_error *err);
void sdbus_close(DBusConnection *c);
/* A Manager method call message (NULL when out of memory). */
DBusMessage *sdbus_new_call(const char *method);
/* Sends m (unref'd here), waits for the reply (the caller unrefs it);
 * NULL with de set on failure. */
DBusMessage *sdbus_call(DBusConnection *c, DBusMessage *m, DBusError *de);
/* Appends props as a(sv). false when out of memory. */
bool sdbus_append_props(DBusMessageIter *it, const struct cgroup_sd_props *props);
/* Before asking for a job: makes its JobRemoved reach this connection. */
int sdbus_watch_jobs(DBusConnection *c, struct cv_error *err);
/* Calls m (a Manager method returning a job, unref'd here) and waits for
 * the job's JobRemoved, failing unless "done". A call failing with the
 * D-Bus error named soft (if given) sets *got_soft and returns 0; *queued
 * (if given) says systemd accepted the job. */
int sdbus_call_job(DBusConnection *c, DBusMessage *m, const char *what, const char *unit,
		   const char *soft, bool *got_soft, bool *queued, struct cv_error *err);

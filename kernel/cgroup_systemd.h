#pragma once
/* The systemd cgroup driver (--systemd-cgroup): the container's cgroup is a
 * transient scope unit that systemd makes and owns, asked for over the
 * system bus (D-Bus) as runc's and crun's systemd drivers do. The scope's
 * path is the one cgroup_resolve_path gives for "slice:prefix:name";
 * cvisor still joins and writes the hierarchies and limits systemd does not
 * handle there, through the ordinary cgroup code (kernel/cgroup.h).
 *
 * "systemd is running" means: the system bus answers and a process owns
 * org.freedesktop.systemd1 on it (sd_booted's /run/systemd/system is not
 * consulted: the bus is what the driver needs). The bus is
 * $DBUS_SYSTEM_BUS_ADDRESS, else unix:path=/run/dbus/system_bus_socket.
 * Every call is blocking, with a bounded wait (CGROUP_SYSTEMD_TIMEOUT_MS),
 * on a private connection closed before returning: nothing stays open. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#include "core/err.h"
#include "core/spec.h"

/* How long a method call, or a job's JobRemoved signal, may take. */
#define CGROUP_SYSTEMD_TIMEOUT_MS 10000

/* One entry of a unit's properties, D-Bus a(sv). */
struct cgroup_sd_prop {
	char name[64];
	/* the variant's D-Bus type: 'b', 't', 'u', 'x', 'i', 's'; 'P' is au
	 * (PIDs); 'D' is a(ss) (DeviceAllow: num entries of dev from dev_off);
	 * 'Y' is ay (a cpu or node bitmask: num bytes of str) */
	char type;
	uint64_t num; /* b (0/1), t, u, x and i (two's complement), P (one pid), D */
	size_t dev_off;
	char str[256]; /* s */
};

/* One DeviceAllow entry: a node ("/dev/char/1:3", "char-pts", "block-*")
 * and its access ("rwm"). */
struct cgroup_sd_dev {
	char node[48];
	char access[4];
};

#define CGROUP_SD_PROPS_MAX 48
/* Every rule of linux.resources.devices split into c and b, and the
 * default list. */
#define CGROUP_SD_DEVS_MAX (2 * 1024 + 16)
struct cgroup_sd_props {
	struct cgroup_sd_prop p[CGROUP_SD_PROPS_MAX];
	size_t n;
	struct cgroup_sd_dev dev[CGROUP_SD_DEVS_MAX];
	size_t n_dev;
};

/* Appends an empty property of that name and type to out (dev_off at the
 * end of out->dev), or NULL with err set when out is full. */
struct cgroup_sd_prop *cgroup_sd_add(struct cgroup_sd_props *out, const char *name, char type,
				     struct cv_error *err);

/* The properties systemd understands for res, named as runc's drivers name
 * them: v1 names (MemoryLimit, CPUShares, BlockIOWeight) when unified is
 * false, the v2 ones (MemoryMax, MemoryLow, MemorySwapMax, CPUWeight,
 * IOWeight, AllowedCPUs, AllowedMemoryNodes) when true; CPUQuotaPerSecUSec (rounded up to 10 ms, as systemd
 * stores it), CPUQuotaPeriodUSec and TasksMax on both. Appends to out.
 * res may be NULL. Limits systemd has no property for (swappiness,
 * cpusets on v1, hugetlb, ...) are written to the cgroup files only. */
int cgroup_systemd_res_props(const struct oci_resources *res, bool unified,
			     struct cgroup_sd_props *out, struct cv_error *err);

/* The spec's "org.systemd.property.<Name>" annotations (runc's and
 * crun's), appended to out. The value is GVariant text, of which these
 * forms are understood: true/false, "uint64 N"/"@t N", "uint32 N"/"@u N",
 * "int64 N"/"@x N", "int32 N"/"@i N", a bare integer (t for names ending in
 * "Sec", as runc converts them, else i) and a quoted 'string'. Anything
 * else is refused naming the annotation. annotations may be NULL. */
int cgroup_systemd_annotation_props(const msgpack_object *annotations,
				    struct cgroup_sd_props *out, struct cv_error *err);

/* DevicePolicy and DeviceAllow for the container's device rules
 * (kernel/cgroup_devices.h: the spec's rules, then runc's default list),
 * so that systemd, whenever it applies the unit's settings again
 * (daemon-reload, SetUnitProperties), writes the same list cvisor wrote
 * instead of allowing every device (runc sends them for that reason):
 * "strict" and the allowed nodes, or "auto" and none when the rules end up
 * allowing everything. A rule systemd cannot name (a minor without a
 * major, a major /proc/devices does not list) is left out of systemd's
 * copy, which is then stricter, never looser; a deny cutting into an
 * earlier wildcard allow cannot be expressed as an allow list and is
 * refused naming linux.resources.devices[i]. kernel/cgroup_systemd_devices.c. */
int cgroup_systemd_device_props(const struct oci_resources *res, struct cgroup_sd_props *out,
				struct cv_error *err);

/* Fails with a message naming systemd unless systemd answers on the bus. */
int cgroup_systemd_check(struct cv_error *err);

/* StartTransientUnit(unit, "replace") with PIDs [pid], Slice, Description,
 * Delegate, DefaultDependencies=no, the accounting switches, res's limits
 * and the annotations' properties; waits for the job's JobRemoved and
 * fails unless its result is "done". *queued is set once systemd accepted
 * the job: the unit is then the caller's to stop (cgroup_systemd_stop),
 * even when this fails; a refused call (UnitExists: someone else's unit of
 * that name) leaves it false. */
int cgroup_systemd_start(const char *unit, const char *slice, const char *description, pid_t pid,
			 const struct oci_resources *res, const msgpack_object *annotations,
			 bool *queued, struct cv_error *err);

/* SetUnitProperties(unit, runtime) with res's properties (`cvisor update`);
 * nothing is sent when res has none. */
int cgroup_systemd_set(const char *unit, const struct oci_resources *res, struct cv_error *err);

/* StopUnit(unit, "replace"), waiting for its job, then ResetFailedUnit;
 * a unit systemd does not know (NoSuchUnit) is not an error. */
int cgroup_systemd_stop(const char *unit, struct cv_error *err);

/* Writes pid into the scope's unified node (cg is the container's cgroup
 * opened at the scope's path): systemd moved it there already where it
 * manages the unified hierarchy; this makes sure, since cvisor's kill,
 * freeze and events go through that node. */
struct cgroup;
int cgroup_systemd_join_v2(const struct cgroup *cg, pid_t pid, struct cv_error *err);

/* Whether systemd would take the v2 property names on this host (the
 * memory controller lives on the unified hierarchy). */
bool cgroup_systemd_unified(void);

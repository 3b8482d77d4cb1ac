/* The OCI runtime spec decoded through mpk field tables (see core/spec.h),
 * then validated. Keys are the OCI JSON names; nested schema names never
 * show in errors (the decoder replaces them by the parent path), so errors
 * read "spec.linux.resources.memory.limit: expected integer, got string". */
#include "core/spec.h"

#include <inttypes.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/mpk.h"
#include "core/util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif


/* Plain field. */
#define F(key, kind, type, member, flags) \
	{ key, kind, offsetof(type, member), MPK_NONE, MPK_NONE, flags, NULL }
/* Field with a has_* flag. */
#define FH(key, kind, type, member, has) \
	{ key, kind, offsetof(type, member), MPK_NONE, offsetof(type, has), 0, NULL }
/* Vector with its count. */
#define FV(key, kind, type, member, count) \
	{ key, kind, offsetof(type, member), offsetof(type, count), MPK_NONE, 0, NULL }
/* Nested struct with a has_* flag. */
#define FS(key, type, member, has, sub) \
	{ key, MPK_STRUCT, offsetof(type, member), MPK_NONE, offsetof(type, has), 0, sub }
/* Array of structs. */
#define FSV(key, type, member, count, sub) \
	{ key, MPK_STRUCTV, offsetof(type, member), offsetof(type, count), MPK_NONE, 0, sub }
#define SCHEMA(var, name, type, fields) \
	static const struct mpk_schema var = { name, sizeof(type), fields, ARRAY_SIZE(fields) }

/* process */
static const struct mpk_field user_fields[] = {
	F("uid", MPK_U32, struct oci_user, uid, 0),
	F("gid", MPK_U32, struct oci_user, gid, 0),
	FH("umask", MPK_U32, struct oci_user, umask, has_umask),
	FV("additionalGids", MPK_U32V, struct oci_user, additional_gids, n_additional_gids),
	F("username", MPK_STR, struct oci_user, username, 0),
};
SCHEMA(user_schema, "User", struct oci_user, user_fields);

static const struct mpk_field caps_fields[] = {
	FV("bounding", MPK_STRV, struct oci_capabilities, bounding, n_bounding),
	FV("effective", MPK_STRV, struct oci_capabilities, effective, n_effective),
	FV("inheritable", MPK_STRV, struct oci_capabilities, inheritable, n_inheritable),
	FV("permitted", MPK_STRV, struct oci_capabilities, permitted, n_permitted),
	FV("ambient", MPK_STRV, struct oci_capabilities, ambient, n_ambient),
};
SCHEMA(caps_schema, "Capabilities", struct oci_capabilities, caps_fields);

static const struct mpk_field rlimit_fields[] = {
	F("type", MPK_STR, struct oci_rlimit, type, MPK_REQUIRED),
	F("hard", MPK_U64, struct oci_rlimit, hard, 0),
	F("soft", MPK_U64, struct oci_rlimit, soft, 0),
};
SCHEMA(rlimit_schema, "Rlimit", struct oci_rlimit, rlimit_fields);

static const struct mpk_field console_size_fields[] = {
	F("height", MPK_U32, struct oci_console_size, height, 0),
	F("width", MPK_U32, struct oci_console_size, width, 0),
};
SCHEMA(console_size_schema, "Box", struct oci_console_size, console_size_fields);

/* Process fields: ioPriority, scheduler, personality (h-mounts). */
static const struct mpk_field io_priority_fields[] = {
	F("class", MPK_STR, struct oci_io_priority, class_, MPK_REQUIRED),
	F("priority", MPK_I32, struct oci_io_priority, priority, 0),
};
SCHEMA(io_priority_schema, "IOPriority", struct oci_io_priority, io_priority_fields);

static const struct mpk_field scheduler_fields[] = {
	F("policy", MPK_STR, struct oci_scheduler, policy, MPK_REQUIRED),
	F("nice", MPK_I32, struct oci_scheduler, nice, 0),
	F("priority", MPK_I32, struct oci_scheduler, priority, 0),
	FV("flags", MPK_STRV, struct oci_scheduler, flags, n_flags),
	F("runtime", MPK_U64, struct oci_scheduler, runtime, 0),
	F("deadline", MPK_U64, struct oci_scheduler, deadline, 0),
	F("period", MPK_U64, struct oci_scheduler, period, 0),
};
SCHEMA(scheduler_schema, "Scheduler", struct oci_scheduler, scheduler_fields);

static const struct mpk_field personality_fields[] = {
	F("domain", MPK_STR, struct oci_personality, domain, MPK_REQUIRED),
	FV("flags", MPK_STRV, struct oci_personality, flags, n_flags),
};
SCHEMA(personality_schema, "Personality", struct oci_personality, personality_fields);
/* End of the process fields block (h-mounts). */

static const struct mpk_field process_fields[] = {
	F("terminal", MPK_BOOL, struct oci_process, terminal, 0),
	FS("consoleSize", struct oci_process, console_size, has_console_size, &console_size_schema),
	{ "user", MPK_STRUCT, offsetof(struct oci_process, user), MPK_NONE, MPK_NONE, 0,
	  &user_schema },
	FV("args", MPK_STRV, struct oci_process, args, n_args),
	FV("env", MPK_STRV, struct oci_process, env, n_env),
	F("cwd", MPK_STR, struct oci_process, cwd, 0),
	FS("capabilities", struct oci_process, capabilities, has_capabilities, &caps_schema),
	FSV("rlimits", struct oci_process, rlimits, n_rlimits, &rlimit_schema),
	F("noNewPrivileges", MPK_BOOL, struct oci_process, no_new_privileges, 0),
	FH("oomScoreAdj", MPK_I32, struct oci_process, oom_score_adj, has_oom_score_adj),
	F("apparmorProfile", MPK_STR, struct oci_process, apparmor_profile, 0),
	/* Process fields (h-mounts). */
	FS("ioPriority", struct oci_process, io_priority, has_io_priority, &io_priority_schema),
	FS("scheduler", struct oci_process, scheduler, has_scheduler, &scheduler_schema),
	F("selinuxLabel", MPK_STR, struct oci_process, selinux_label, 0),
};
SCHEMA(process_schema, "Process", struct oci_process, process_fields);

static const struct mpk_field root_fields[] = {
	F("path", MPK_STR, struct oci_root, path, 0),
	F("readonly", MPK_BOOL, struct oci_root, readonly, 0),
};
SCHEMA(root_schema, "Root", struct oci_root, root_fields);

static const struct mpk_field mount_fields[] = {
	F("destination", MPK_STR, struct oci_mount, destination, MPK_REQUIRED),
	F("type", MPK_STR, struct oci_mount, type, 0),
	F("source", MPK_STR, struct oci_mount, source, 0),
	FV("options", MPK_STRV, struct oci_mount, options, n_options),
};
SCHEMA(mount_schema, "Mount", struct oci_mount, mount_fields);

/* linux */
static const struct mpk_field ns_fields[] = {
	F("type", MPK_STR, struct oci_namespace, type, MPK_REQUIRED),
	F("path", MPK_STR, struct oci_namespace, path, 0),
};
SCHEMA(ns_schema, "Namespace", struct oci_namespace, ns_fields);

static const struct mpk_field idmap_fields[] = {
	F("containerID", MPK_U32, struct oci_id_mapping, container_id, 0),
	F("hostID", MPK_U32, struct oci_id_mapping, host_id, 0),
	F("size", MPK_U32, struct oci_id_mapping, size, 0),
};
SCHEMA(idmap_schema, "IDMapping", struct oci_id_mapping, idmap_fields);

/* ---- linux.resources (h-cgres) ---- */
static const struct mpk_field memory_fields[] = {
	FH("limit", MPK_I64, struct oci_memory, limit, has_limit),
	FH("reservation", MPK_I64, struct oci_memory, reservation, has_reservation),
	FH("swap", MPK_I64, struct oci_memory, swap, has_swap),
	FH("kernel", MPK_I64, struct oci_memory, kernel, has_kernel),
	FH("kernelTCP", MPK_I64, struct oci_memory, kernel_tcp, has_kernel_tcp),
	FH("swappiness", MPK_U64, struct oci_memory, swappiness, has_swappiness),
	FH("disableOOMKiller", MPK_BOOL, struct oci_memory, disable_oom_killer, has_disable_oom_killer),
	FH("useHierarchy", MPK_BOOL, struct oci_memory, use_hierarchy, has_use_hierarchy),
	F("checkBeforeUpdate", MPK_BOOL, struct oci_memory, check_before_update, 0),
};
SCHEMA(memory_schema, "Memory", struct oci_memory, memory_fields);

static const struct mpk_field cpu_fields[] = {
	FH("shares", MPK_U64, struct oci_cpu, shares, has_shares),
	FH("quota", MPK_I64, struct oci_cpu, quota, has_quota),
	FH("period", MPK_U64, struct oci_cpu, period, has_period),
	F("cpus", MPK_STR, struct oci_cpu, cpus, 0),
	F("mems", MPK_STR, struct oci_cpu, mems, 0),
	FH("burst", MPK_U64, struct oci_cpu, burst, has_burst),
	FH("realtimeRuntime", MPK_I64, struct oci_cpu, realtime_runtime, has_realtime_runtime),
	FH("realtimePeriod", MPK_U64, struct oci_cpu, realtime_period, has_realtime_period),
	FH("idle", MPK_I64, struct oci_cpu, idle, has_idle),
};
SCHEMA(cpu_schema, "CPU", struct oci_cpu, cpu_fields);

static const struct mpk_field pids_fields[] = {
	FH("limit", MPK_I64, struct oci_pids, limit, has_limit),
};
SCHEMA(pids_schema, "Pids", struct oci_pids, pids_fields);

static const struct mpk_field weight_device_fields[] = {
	F("major", MPK_I64, struct oci_blkio_weight_device, major, MPK_REQUIRED),
	F("minor", MPK_I64, struct oci_blkio_weight_device, minor, MPK_REQUIRED),
	FH("weight", MPK_U32, struct oci_blkio_weight_device, weight, has_weight),
	FH("leafWeight", MPK_U32, struct oci_blkio_weight_device, leaf_weight, has_leaf_weight),
};
SCHEMA(weight_device_schema, "WeightDevice", struct oci_blkio_weight_device, weight_device_fields);

static const struct mpk_field throttle_fields[] = {
	F("major", MPK_I64, struct oci_blkio_throttle, major, MPK_REQUIRED),
	F("minor", MPK_I64, struct oci_blkio_throttle, minor, MPK_REQUIRED),
	F("rate", MPK_U64, struct oci_blkio_throttle, rate, MPK_REQUIRED),
};
SCHEMA(throttle_schema, "ThrottleDevice", struct oci_blkio_throttle, throttle_fields);

static const struct mpk_field blkio_fields[] = {
	FH("weight", MPK_U32, struct oci_blkio, weight, has_weight),
	FH("leafWeight", MPK_U32, struct oci_blkio, leaf_weight, has_leaf_weight),
	FSV("weightDevice", struct oci_blkio, weight_device, n_weight_device, &weight_device_schema),
	FSV("throttleReadBpsDevice", struct oci_blkio, throttle[0], n_throttle[0], &throttle_schema),
	FSV("throttleWriteBpsDevice", struct oci_blkio, throttle[1], n_throttle[1], &throttle_schema),
	FSV("throttleReadIOPSDevice", struct oci_blkio, throttle[2], n_throttle[2], &throttle_schema),
	FSV("throttleWriteIOPSDevice", struct oci_blkio, throttle[3], n_throttle[3], &throttle_schema),
};
SCHEMA(blkio_schema, "BlockIO", struct oci_blkio, blkio_fields);

static const struct mpk_field hugepage_fields[] = {
	F("pageSize", MPK_STR, struct oci_hugepage_limit, page_size, MPK_REQUIRED),
	F("limit", MPK_U64, struct oci_hugepage_limit, limit, MPK_REQUIRED),
};
SCHEMA(hugepage_schema, "HugepageLimit", struct oci_hugepage_limit, hugepage_fields);

static const struct mpk_field net_prio_fields[] = {
	F("name", MPK_STR, struct oci_net_priority, name, MPK_REQUIRED),
	F("priority", MPK_U32, struct oci_net_priority, priority, MPK_REQUIRED),
};
SCHEMA(net_prio_schema, "InterfacePriority", struct oci_net_priority, net_prio_fields);

static const struct mpk_field network_fields[] = {
	FH("classID", MPK_U32, struct oci_network, class_id, has_class_id),
	FSV("priorities", struct oci_network, priorities, n_priorities, &net_prio_schema),
};
SCHEMA(network_schema, "Network", struct oci_network, network_fields);

static int check_string_map(const msgpack_object *m, const char *path, struct cv_error *err);

/* Checks what the schema cannot: ranges, the hugepage size form, interface
 * names, and the shapes of the rdma and unified maps. `what` is the path
 * of the resources object ("spec.linux.resources" or "resources"). */
static int validate_resources(const struct oci_resources *r, const char *what, struct cv_error *err)
{
	if (r->has_memory && r->memory.has_swappiness && r->memory.swappiness > 100)
		return cv_errf(err, 0, "%s.memory.swappiness: %" PRIu64 " is out of range (0-100)", what,
			       r->memory.swappiness);
	if (r->has_cpu && r->cpu.has_idle && r->cpu.idle != 0 && r->cpu.idle != 1)
		return cv_errf(err, 0, "%s.cpu.idle: must be 0 or 1, got %" PRId64, what, r->cpu.idle);
	static const char *const thr[4] = { "throttleReadBpsDevice", "throttleWriteBpsDevice",
					    "throttleReadIOPSDevice", "throttleWriteIOPSDevice" };
	const struct oci_blkio *b = &r->blkio;
	if (r->has_blkio) {
		if (b->has_weight && b->weight && (b->weight < 10 || b->weight > 1000))
			return cv_errf(err, 0, "%s.blockIO.weight: %u is out of range (10-1000)", what, b->weight);
		if (b->has_leaf_weight && b->leaf_weight && (b->leaf_weight < 10 || b->leaf_weight > 1000))
			return cv_errf(err, 0, "%s.blockIO.leafWeight: %u is out of range (10-1000)", what,
				       b->leaf_weight);
		for (size_t i = 0; i < b->n_weight_device; i++) {
			const struct oci_blkio_weight_device *d = &b->weight_device[i];
			if (d->major < 0 || d->major > UINT32_MAX || d->minor < 0 || d->minor > UINT32_MAX)
				return cv_errf(err, 0, "%s.blockIO.weightDevice[%zu]: bad device number", what, i);
			if ((d->has_weight && d->weight && (d->weight < 10 || d->weight > 1000)) ||
			    (d->has_leaf_weight && d->leaf_weight &&
			     (d->leaf_weight < 10 || d->leaf_weight > 1000)))
				return cv_errf(err, 0, "%s.blockIO.weightDevice[%zu]: weight out of range (10-1000)",
					       what, i);
		}
		for (int k = 0; k < 4; k++)
			for (size_t i = 0; i < b->n_throttle[k]; i++) {
				const struct oci_blkio_throttle *t = &b->throttle[k][i];
				if (t->major < 0 || t->major > UINT32_MAX || t->minor < 0 || t->minor > UINT32_MAX)
					return cv_errf(err, 0, "%s.blockIO.%s[%zu]: bad device number", what, thr[k], i);
			}
	}
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		/* The size names a file (hugetlb.<size>.limit_in_bytes): digits
		 * and a unit, nothing else. */
		const char *ps = r->hugepage_limits[i].page_size;
		size_t d = strspn(ps, "0123456789");
		if (d == 0 || d > 10 || (strcmp(ps + d, "KB") && strcmp(ps + d, "MB") && strcmp(ps + d, "GB")))
			return cv_errf(err, 0, "%s.hugepageLimits[%zu].pageSize: \"%s\" is not a size like \"2MB\"",
				       what, i, ps);
	}
	for (size_t i = 0; r->has_network && i < r->network.n_priorities; i++) {
		const char *n = r->network.priorities[i].name;
		if (!*n || strlen(n) >= 16 || strpbrk(n, "/ \n\t") || !strcmp(n, ".") || !strcmp(n, ".."))
			return cv_errf(err, 0, "%s.network.priorities[%zu].name: \"%s\" is not an interface name",
				       what, i, n);
	}
	char path[64];
	if (r->rdma) {
		snprintf(path, sizeof(path), "%s.rdma", what);
		const msgpack_object *m = r->rdma;
		if (m->type != MSGPACK_OBJECT_MAP)
			return cv_errf(err, 0, "%s: expected map, got %s", path, mpk_type_name(m->type));
		for (uint32_t i = 0; i < m->via.map.size; i++) {
			const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 || k->via.str.size > 64 ||
			    memchr(k->via.str.ptr, '\0', k->via.str.size) ||
			    memchr(k->via.str.ptr, ' ', k->via.str.size) ||
			    memchr(k->via.str.ptr, '\n', k->via.str.size))
				return cv_errf(err, 0, "%s: keys must be device names", path);
			if (v->type != MSGPACK_OBJECT_MAP)
				return cv_errf(err, 0, "%s[\"%.*s\"]: expected map, got %s", path,
					       (int)k->via.str.size, k->via.str.ptr, mpk_type_name(v->type));
			for (uint32_t j = 0; j < v->via.map.size; j++) {
				const msgpack_object *fk = &v->via.map.ptr[j].key, *fv = &v->via.map.ptr[j].val;
				bool known = fk->type == MSGPACK_OBJECT_STR &&
					     ((fk->via.str.size == 10 && !memcmp(fk->via.str.ptr, "hcaHandles", 10)) ||
					      (fk->via.str.size == 10 && !memcmp(fk->via.str.ptr, "hcaObjects", 10)));
				if (!known)
					return cv_errf(err, 0, "%s[\"%.*s\"]: only hcaHandles and hcaObjects are known",
						       path, (int)k->via.str.size, k->via.str.ptr);
				if (fv->type != MSGPACK_OBJECT_NIL &&
				    (fv->type != MSGPACK_OBJECT_POSITIVE_INTEGER || fv->via.u64 > UINT32_MAX))
					return cv_errf(err, 0, "%s[\"%.*s\"].%.*s: expected a 32-bit count", path,
						       (int)k->via.str.size, k->via.str.ptr, (int)fk->via.str.size,
						       fk->via.str.ptr);
			}
		}
	}
	if (r->unified) {
		snprintf(path, sizeof(path), "%s.unified", what);
		if (check_string_map(r->unified, path, err) < 0)
			return -1;
		/* Keys name a file of the container's own node: no path. */
		const msgpack_object *m = r->unified;
		for (uint32_t i = 0; i < m->via.map.size; i++) {
			const msgpack_object_str *k = &m->via.map.ptr[i].key.via.str;
			if (k->size == 0 || k->size > 255 || memchr(k->ptr, '/', k->size) ||
			    (k->size >= 2 && memmem(k->ptr, k->size, "..", 2)) || (k->size == 1 && k->ptr[0] == '.'))
				return cv_errf(err, 0, "%s: key \"%.*s\" must name a file of the container's cgroup "
						       "(no \"/\" or \"..\")",
					       path, (int)k->size, k->ptr);
		}
	}
	return 0;
}
/* ---- end of linux.resources (h-cgres) ---- */

/* devices: linux.resources.devices and linux.devices */
static const struct mpk_field device_cgroup_fields[] = {
	F("allow", MPK_BOOL, struct oci_device_cgroup, allow, 0),
	F("type", MPK_STR, struct oci_device_cgroup, type, 0),
	FH("major", MPK_I64, struct oci_device_cgroup, major, has_major),
	FH("minor", MPK_I64, struct oci_device_cgroup, minor, has_minor),
	F("access", MPK_STR, struct oci_device_cgroup, access, 0),
};
SCHEMA(device_cgroup_schema, "LinuxDeviceCgroup", struct oci_device_cgroup, device_cgroup_fields);

static const struct mpk_field device_fields[] = {
	F("path", MPK_STR, struct oci_device, path, MPK_REQUIRED),
	F("type", MPK_STR, struct oci_device, type, MPK_REQUIRED),
	FH("major", MPK_I64, struct oci_device, major, has_major),
	FH("minor", MPK_I64, struct oci_device, minor, has_minor),
	FH("fileMode", MPK_U32, struct oci_device, file_mode, has_file_mode),
	FH("uid", MPK_U32, struct oci_device, uid, has_uid),
	FH("gid", MPK_U32, struct oci_device, gid, has_gid),
};
SCHEMA(device_schema, "LinuxDevice", struct oci_device, device_fields);

static const struct mpk_field resources_fields[] = {
	/* devices */
	FSV("devices", struct oci_resources, devices, n_devices, &device_cgroup_schema),
	FS("memory", struct oci_resources, memory, has_memory, &memory_schema),
	FS("cpu", struct oci_resources, cpu, has_cpu, &cpu_schema),
	FS("pids", struct oci_resources, pids, has_pids, &pids_schema),
	/* h-cgres */
	FS("blockIO", struct oci_resources, blkio, has_blkio, &blkio_schema),
	FSV("hugepageLimits", struct oci_resources, hugepage_limits, n_hugepage_limits, &hugepage_schema),
	FS("network", struct oci_resources, network, has_network, &network_schema),
	F("rdma", MPK_OBJ, struct oci_resources, rdma, 0),
	F("unified", MPK_OBJ, struct oci_resources, unified, 0),
};
/* Named "resources": the top-level name of `cvisor update --resources F`. */
SCHEMA(resources_schema, "resources", struct oci_resources, resources_fields);

static const struct mpk_field sarg_fields[] = {
	F("index", MPK_U32, struct oci_seccomp_arg, index, 0),
	F("value", MPK_U64, struct oci_seccomp_arg, value, 0),
	F("valueTwo", MPK_U64, struct oci_seccomp_arg, value_two, 0),
	F("op", MPK_STR, struct oci_seccomp_arg, op, MPK_REQUIRED),
};
SCHEMA(sarg_schema, "Arg", struct oci_seccomp_arg, sarg_fields);

static const struct mpk_field syscall_fields[] = {
	FV("names", MPK_STRV, struct oci_seccomp_syscall, names, n_names),
	F("action", MPK_STR, struct oci_seccomp_syscall, action, MPK_REQUIRED),
	FH("errnoRet", MPK_U32, struct oci_seccomp_syscall, errno_ret, has_errno_ret),
	FSV("args", struct oci_seccomp_syscall, args, n_args, &sarg_schema),
};
SCHEMA(syscall_schema, "Syscall", struct oci_seccomp_syscall, syscall_fields);

static const struct mpk_field seccomp_fields[] = {
	F("defaultAction", MPK_STR, struct oci_seccomp, default_action, 0),
	FH("defaultErrnoRet", MPK_U32, struct oci_seccomp, default_errno_ret, has_default_errno_ret),
	FV("architectures", MPK_STRV, struct oci_seccomp, architectures, n_architectures),
	FV("flags", MPK_STRV, struct oci_seccomp, flags, n_flags),
	FSV("syscalls", struct oci_seccomp, syscalls, n_syscalls, &syscall_schema),
};
SCHEMA(seccomp_schema, "Seccomp", struct oci_seccomp, seccomp_fields);

static const struct mpk_field linux_fields[] = {
	/* devices */
	FSV("devices", struct oci_linux, devices, n_devices, &device_schema),
	FSV("namespaces", struct oci_linux, namespaces, n_namespaces, &ns_schema),
	FSV("uidMappings", struct oci_linux, uid_mappings, n_uid_mappings, &idmap_schema),
	FSV("gidMappings", struct oci_linux, gid_mappings, n_gid_mappings, &idmap_schema),
	FS("resources", struct oci_linux, resources, has_resources, &resources_schema),
	F("cgroupsPath", MPK_STR, struct oci_linux, cgroups_path, 0),
	FV("maskedPaths", MPK_STRV, struct oci_linux, masked_paths, n_masked_paths),
	FV("readonlyPaths", MPK_STRV, struct oci_linux, readonly_paths, n_readonly_paths),
	FS("seccomp", struct oci_linux, seccomp, has_seccomp, &seccomp_schema),
	F("sysctl", MPK_OBJ, struct oci_linux, sysctl, 0),
	F("intelRdt", MPK_OBJ, struct oci_linux, intel_rdt, 0),
	F("timeOffsets", MPK_OBJ, struct oci_linux, time_offsets, 0),
	F("netDevices", MPK_OBJ, struct oci_linux, net_devices, 0),
	F("rootfsPropagation", MPK_STR, struct oci_linux, rootfs_propagation, 0),
	F("mountLabel", MPK_STR, struct oci_linux, mount_label, 0),
	/* Process fields (h-mounts). */
	FS("personality", struct oci_linux, personality, has_personality, &personality_schema),
};
SCHEMA(linux_schema, "Linux", struct oci_linux, linux_fields);

/* OCI hooks */
static const struct mpk_field hook_fields[] = {
	F("path", MPK_STR, struct oci_hook, path, MPK_REQUIRED),
	FV("args", MPK_STRV, struct oci_hook, args, n_args),
	{ "env", MPK_STRV, offsetof(struct oci_hook, env), offsetof(struct oci_hook, n_env),
	  offsetof(struct oci_hook, has_env), 0, NULL },
	FH("timeout", MPK_I64, struct oci_hook, timeout, has_timeout),
};
SCHEMA(hook_schema, "Hook", struct oci_hook, hook_fields);

static const struct mpk_field hooks_fields[] = {
	FSV("prestart", struct oci_hooks, prestart, n_prestart, &hook_schema),
	FSV("createRuntime", struct oci_hooks, create_runtime, n_create_runtime, &hook_schema),
	FSV("createContainer", struct oci_hooks, create_container, n_create_container, &hook_schema),
	FSV("startContainer", struct oci_hooks, start_container, n_start_container, &hook_schema),
	FSV("poststart", struct oci_hooks, poststart, n_poststart, &hook_schema),
	FSV("poststop", struct oci_hooks, poststop, n_poststop, &hook_schema),
};
/* Named by its path: also decoded alone (oci_hooks_decode). */
SCHEMA(hooks_schema, "spec.hooks", struct oci_hooks, hooks_fields);

static int validate_hook_list(const struct oci_hook *h, size_t n, const char *kind,
			      struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (h[i].path[0] != '/')
			return cv_errf(err, 0, "spec.hooks.%s[%zu].path: must be an absolute path, got \"%s\"",
				       kind, i, h[i].path);
		if (h[i].has_timeout && h[i].timeout <= 0)
			return cv_errf(err, 0, "spec.hooks.%s[%zu].timeout: must be a positive number of "
					       "seconds, got %lld", kind, i, (long long)h[i].timeout);
	}
	return 0;
}

static int validate_hooks(const struct oci_hooks *h, struct cv_error *err)
{
	if (validate_hook_list(h->prestart, h->n_prestart, "prestart", err) < 0 ||
	    validate_hook_list(h->create_runtime, h->n_create_runtime, "createRuntime", err) < 0 ||
	    validate_hook_list(h->create_container, h->n_create_container, "createContainer", err) < 0 ||
	    validate_hook_list(h->start_container, h->n_start_container, "startContainer", err) < 0 ||
	    validate_hook_list(h->poststart, h->n_poststart, "poststart", err) < 0 ||
	    validate_hook_list(h->poststop, h->n_poststop, "poststop", err) < 0)
		return -1;
	return 0;
}

int oci_hooks_decode(const msgpack_object *obj, msgpack_zone *zone, struct oci_hooks *out,
		     struct cv_error *err)
{
	if (mpk_decode(obj, &hooks_schema, out, zone, err) < 0)
		return -1;
	return validate_hooks(out, err);
}
/* end OCI hooks */

static const struct mpk_field spec_fields[] = {
	F("ociVersion", MPK_STR, struct oci_spec, oci_version, 0),
	FS("process", struct oci_spec, process, has_process, &process_schema),
	FS("root", struct oci_spec, root, has_root, &root_schema),
	F("hostname", MPK_STR, struct oci_spec, hostname, 0),
	F("domainname", MPK_STR, struct oci_spec, domainname, 0),
	FSV("mounts", struct oci_spec, mounts, n_mounts, &mount_schema),
	FS("linux", struct oci_spec, linux_, has_linux, &linux_schema),
	F("annotations", MPK_OBJ, struct oci_spec, annotations, 0),
	FS("hooks", struct oci_spec, hooks, has_hooks, &hooks_schema), /* OCI hooks */
	/* Session keyring (h-mounts). */
	F("cvisor.sessionKeyring", MPK_STR, struct oci_spec, session_keyring, 0),
	/* The container's resolved cgroup (h-cgpath). */
	F("cvisor.cgroupPath", MPK_STR, struct oci_spec, cgroup_path, 0),
	/* The systemd scope of --systemd-cgroup (h-sysd). */
	F("cvisor.systemdUnit", MPK_STR, struct oci_spec, systemd_unit, 0),
	F("cvisor.systemdSlice", MPK_STR, struct oci_spec, systemd_slice, 0),
};
SCHEMA(spec_schema, "spec", struct oci_spec, spec_fields);

static const struct {
	const char *name;
	int flag;
} namespaces[] = {
	{ "pid", CLONE_NEWPID },     { "network", CLONE_NEWNET }, { "mount", CLONE_NEWNS },
	{ "ipc", CLONE_NEWIPC },     { "uts", CLONE_NEWUTS },     { "user", CLONE_NEWUSER },
	{ "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
};

static const struct {
	const char *name;
	int resource;
} rlimits[] = {
	{ "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU },
	{ "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },
	{ "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
	{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_STACK", RLIMIT_STACK },
};

int oci_rlimit_resource(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(rlimits); i++)
		if (strcmp(rlimits[i].name, name) == 0)
			return rlimits[i].resource;
	return -1;
}

const char *oci_namespace_name(size_t i)
{
	return i < ARRAY_SIZE(namespaces) ? namespaces[i].name : NULL;
}

int oci_namespace_flag(const char *type)
{
	if (!type)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++)
		if (strcmp(namespaces[i].name, type) == 0)
			return namespaces[i].flag;
	return 0;
}

/* A map of string → string (sysctl, annotations); NUL bytes refused since
 * the values end up in C strings. */
static int check_string_map(const msgpack_object *m, const char *path, struct cv_error *err)
{
	if (!m)
		return 0;
	if (m->type != MSGPACK_OBJECT_MAP)
		return cv_errf(err, 0, "%s: expected map, got %s", path, mpk_type_name(m->type));
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "%s: keys must be strings, got %s", path,
				       mpk_type_name(k->type));
		if (v->type != MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "%s[\"%.*s\"]: expected string, got %s", path,
				       (int)k->via.str.size, k->via.str.ptr, mpk_type_name(v->type));
		if ((v->via.str.size && memchr(v->via.str.ptr, '\0', v->via.str.size)) ||
		    (k->via.str.size && memchr(k->via.str.ptr, '\0', k->via.str.size)))
			return cv_errf(err, 0, "%s[\"%.*s\"]: string contains a NUL byte", path,
				       (int)k->via.str.size, k->via.str.ptr);
	}
	return 0;
}

/* devices: linux.devices and linux.resources.devices */
static int check_dev_number(int64_t v, int64_t max, bool wildcard_ok, const char *what, size_t i,
			    const char *field, struct cv_error *err)
{
	if ((v == -1 && wildcard_ok) || (v >= 0 && v <= max))
		return 0;
	return cv_errf(err, 0, "%s[%zu].%s: %" PRId64 " is out of range (0..%" PRId64 "%s)", what, i,
		       field, v, max, wildcard_ok ? ", or -1 for any" : "");
}

int oci_device_rules_validate(const struct oci_device_cgroup *rules, size_t n, const char *what,
			      struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct oci_device_cgroup *r = &rules[i];
		const char *t = r->type ? r->type : "a";
		if (strcmp(t, "a") != 0 && strcmp(t, "c") != 0 && strcmp(t, "b") != 0)
			return cv_errf(err, 0, "%s[%zu].type: \"%s\" is not one of a, c, b", what, i, t);
		for (const char *a = r->access ? r->access : ""; *a; a++)
			if (*a != 'r' && *a != 'w' && *a != 'm')
				return cv_errf(err, 0, "%s[%zu].access: \"%s\" is not a subset of \"rwm\"",
					       what, i, r->access);
		if ((r->has_major &&
		     check_dev_number(r->major, UINT32_MAX, true, what, i, "major", err) < 0) ||
		    (r->has_minor &&
		     check_dev_number(r->minor, UINT32_MAX, true, what, i, "minor", err) < 0))
			return -1;
	}
	return 0;
}

/* A path below /dev with no "." or ".." component: nodes are made only in
 * the container's /dev (kernel/devices.c walks it component by component). */
static int check_device_path(const char *p, size_t i, struct cv_error *err)
{
	if (strncmp(p, "/dev/", 5) != 0)
		return cv_errf(err, 0, "spec.linux.devices[%zu].path: \"%s\" is not under /dev", i, p);
	bool any = false;
	for (const char *c = p + 5; *c;) {
		while (*c == '/')
			c++;
		size_t l = strcspn(c, "/");
		if ((l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return cv_errf(err, 0,
				       "spec.linux.devices[%zu].path: \"%s\" has a \".\" or \"..\" "
				       "component: refusing to leave the container's /dev",
				       i, p);
		any |= l > 0;
		c += l;
	}
	if (!any || p[strlen(p) - 1] == '/')
		return cv_errf(err, 0, "spec.linux.devices[%zu].path: \"%s\" names no node", i, p);
	return 0;
}

static int validate_devices(const struct oci_device *d, size_t n, struct cv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (check_device_path(d[i].path, i, err) < 0)
			return -1;
		const char *t = d[i].type;
		unsigned ifmt;
		if (strcmp(t, "c") == 0 || strcmp(t, "u") == 0)
			ifmt = S_IFCHR;
		else if (strcmp(t, "b") == 0)
			ifmt = S_IFBLK;
		else if (strcmp(t, "p") == 0)
			ifmt = S_IFIFO;
		else
			return cv_errf(err, 0, "spec.linux.devices[%zu].type: \"%s\" is not one of c, b, u, p",
				       i, t);
		if (ifmt != S_IFIFO) {
			if (!d[i].has_major || !d[i].has_minor)
				return cv_errf(err, 0, "spec.linux.devices[%zu]: major and minor are required "
						       "for type \"%s\"", i, t);
			/* mknod(2) takes 12 bits of major and 20 of minor: more
			 * would silently name another device. */
			if (check_dev_number(d[i].major, 4095, false, "spec.linux.devices", i, "major",
					     err) < 0 ||
			    check_dev_number(d[i].minor, 1048575, false, "spec.linux.devices", i, "minor",
					     err) < 0)
				return -1;
		}
		/* Some engines pass the type bits too (S_IFCHR|0666): those must
		 * agree with the type; anything else beyond 07777 is refused. */
		uint32_t fm = d[i].file_mode;
		if (d[i].has_file_mode && (fm & ~07777u) && (fm & ~07777u) != ifmt)
			return cv_errf(err, 0, "spec.linux.devices[%zu].fileMode: 0%o is not a permission "
					       "mode for type \"%s\"", i, fm, t);
		for (size_t j = 0; j < i; j++)
			if (strcmp(d[j].path, d[i].path) == 0)
				return cv_errf(err, 0, "spec.linux.devices[%zu].path: \"%s\" is listed twice",
					       i, d[i].path);
	}
	return 0;
}

static int validate_process(const struct oci_process *p, struct cv_error *err)
{
	if (p->n_args == 0)
		return cv_errf(err, 0, "spec.process.args: must not be empty");
	if (p->cwd && p->cwd[0] != '/')
		return cv_errf(err, 0, "spec.process.cwd: must be an absolute path");
	for (size_t i = 0; i < p->n_rlimits; i++) {
		if (oci_rlimit_resource(p->rlimits[i].type) < 0)
			return cv_errf(err, 0, "spec.process.rlimits[%zu].type: unknown rlimit \"%s\"", i,
				       p->rlimits[i].type);
	}
	return 0;
}

/* Whether a field that is present asks for anything: null, an empty map
 * and an empty array ask for nothing (engines send them as defaults). */
static bool asks_for_something(const msgpack_object *o)
{
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return false;
	if (o->type == MSGPACK_OBJECT_MAP)
		return o->via.map.size > 0;
	if (o->type == MSGPACK_OBJECT_ARRAY)
		return o->via.array.size > 0;
	return true;
}

static int refuse_unsupported(const struct oci_linux *l, struct cv_error *err)
{
	if (asks_for_something(l->intel_rdt))
		return cv_errf(err, 0, "spec.linux.intelRdt: Intel RDT (resctrl) is not supported");
	if (asks_for_something(l->time_offsets))
		return cv_errf(err, 0, "spec.linux.timeOffsets: the time namespace's clock offsets are not supported");
	if (asks_for_something(l->net_devices))
		return cv_errf(err, 0, "spec.linux.netDevices: moving network devices into the container is not supported");
	return 0;
}

static int validate_linux(const struct oci_linux *l, struct cv_error *err)
{
	if (refuse_unsupported(l, err) < 0)
		return -1;
	int seen = 0;
	for (size_t i = 0; i < l->n_namespaces; i++) {
		const char *t = l->namespaces[i].type;
		int flag = oci_namespace_flag(t);
		if (!flag)
			return cv_errf(err, 0, "spec.linux.namespaces[%zu].type: unknown namespace type \"%s\"",
				       i, t);
		if (seen & flag)
			return cv_errf(err, 0, "spec.linux.namespaces[%zu].type: namespace \"%s\" is listed twice",
				       i, t);
		seen |= flag;
	}
	/* devices */
	if (validate_devices(l->devices, l->n_devices, err) < 0 ||
	    (l->has_resources &&
	     oci_device_rules_validate(l->resources.devices, l->resources.n_devices,
				       "spec.linux.resources.devices", err) < 0))
		return -1;
	if (l->has_resources && validate_resources(&l->resources, "spec.linux.resources", err) < 0)
		return -1; /* h-cgres */
	return check_string_map(l->sysctl, "spec.linux.sysctl", err);
}

/* A SemVer 2.0.0 numeric identifier: digits, no leading zero. */
static const char *semver_num(const char *p)
{
	if (*p < '0' || *p > '9')
		return NULL;
	if (*p == '0' && p[1] >= '0' && p[1] <= '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

/* Dot-separated identifiers of [0-9A-Za-z-], none empty; in a pre-release
 * a numeric one has no leading zero. Returns the end or NULL. */
static const char *semver_idents(const char *p, bool pre)
{
	for (;;) {
		const char *b = p;
		bool digits = true;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		       (*p >= 'A' && *p <= 'Z') || *p == '-') {
			if (*p < '0' || *p > '9')
				digits = false;
			p++;
		}
		if (p == b || (pre && digits && *b == '0' && p - b > 1))
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

/* spec.ociVersion "MUST be in SemVer v2.0.0 format" and a runtime MUST
 * reject values it does not support (runtime-tools' misc_props gives
 * "invalid"): a version of spec 1.x is taken, as crun takes it. Absent is
 * taken too, as runc and crun take it. */
static int validate_oci_version(const char *v, struct cv_error *err)
{
	if (!v)
		return 0;
	const char *p = semver_num(v);
	if (p && *p == '.')
		p = semver_num(p + 1);
	else
		p = NULL;
	if (p && *p == '.')
		p = semver_num(p + 1);
	else
		p = NULL;
	if (p && *p == '-')
		p = semver_idents(p + 1, true);
	if (p && *p == '+')
		p = semver_idents(p + 1, false);
	if (!p || *p)
		return cv_errf(err, 0, "spec.ociVersion: \"%s\" is not a SemVer 2.0.0 version", v);
	if (strncmp(v, "1.", 2) != 0)
		return cv_errf(err, 0, "spec.ociVersion: \"%s\" is not supported (only runtime-spec 1.x is)",
			       v);
	return 0;
}

int oci_spec_decode(const msgpack_object *obj, msgpack_zone *zone, struct oci_spec *out,
		    struct cv_error *err)
{
	if (mpk_decode(obj, &spec_schema, out, zone, err) < 0)
		return -1;
	if (validate_oci_version(out->oci_version, err) < 0)
		return -1;
	if (!out->has_process)
		return cv_errf(err, 0, "spec.process: missing");
	if (validate_process(&out->process, err) < 0)
		return -1;
	if (!out->has_root || !out->root.path)
		return cv_errf(err, 0, "spec.root.path: missing");
	for (size_t i = 0; i < out->n_mounts; i++)
		if (out->mounts[i].destination[0] != '/')
			return cv_errf(err, 0, "spec.mounts[%zu].destination: must be an absolute path, got \"%s\"",
				       i, out->mounts[i].destination);
	if (out->has_linux && validate_linux(&out->linux_, err) < 0)
		return -1;
	if (out->has_hooks && validate_hooks(&out->hooks, err) < 0) /* OCI hooks */
		return -1;
	return check_string_map(out->annotations, "spec.annotations", err);
}

int oci_resources_decode(const msgpack_object *obj, msgpack_zone *zone, struct oci_resources *out,
			 struct cv_error *err)
{
	if (mpk_decode(obj, &resources_schema, out, zone, err) < 0)
		return -1;
	if (validate_resources(out, "resources", err) < 0) /* h-cgres */
		return -1;
	/* devices */
	return oci_device_rules_validate(out->devices, out->n_devices, "resources.devices", err);
}

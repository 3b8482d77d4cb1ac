#pragma once
/* The OCI runtime spec model (the subset cvisor honours), decoded from the
 * msgpack form of config.json (the CLI converts JSON to msgpack key for key;
 * keys are the OCI JSON names). All memory lives in the caller's zone. */
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct oci_user {
	uint32_t uid, gid;
	uint32_t *additional_gids;
	size_t n_additional_gids;
	uint32_t umask;
	bool has_umask;
	char *username;
};

struct oci_capabilities {
	char **bounding, **effective, **inheritable, **permitted, **ambient;
	size_t n_bounding, n_effective, n_inheritable, n_permitted, n_ambient;
};

struct oci_rlimit {
	char *type; /* "RLIMIT_NOFILE" */
	uint64_t hard, soft;
};

struct oci_console_size {
	uint32_t height, width;
};

/* Process fields: ioPriority, scheduler, personality (h-mounts). */
struct oci_io_priority {
	char *class_; /* IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE */
	int32_t priority;
};

struct oci_scheduler {
	char *policy; /* SCHED_OTHER ... SCHED_DEADLINE */
	int32_t nice, priority;
	char **flags; /* SCHED_FLAG_* */
	size_t n_flags;
	uint64_t runtime, deadline, period;
};

struct oci_personality {
	char *domain; /* LINUX, LINUX32 */
	char **flags;
	size_t n_flags;
};
/* End of the process fields block (h-mounts). */

struct oci_process {
	bool terminal;
	struct oci_console_size console_size; /* the pty's size (process.terminal) */
	bool has_console_size;
	struct oci_user user;
	char **args;
	size_t n_args;
	char **env;
	size_t n_env;
	char *cwd;
	struct oci_capabilities capabilities;
	bool has_capabilities;
	struct oci_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	int32_t oom_score_adj;
	bool has_oom_score_adj;
	char *apparmor_profile;
	/* Process fields (h-mounts). */
	struct oci_io_priority io_priority;
	bool has_io_priority;
	struct oci_scheduler scheduler;
	bool has_scheduler;
	char *selinux_label;
};

struct oci_root {
	char *path;
	bool readonly;
};

struct oci_mount {
	char *destination;
	char *type;
	char *source;
	char **options;
	size_t n_options;
};

struct oci_namespace {
	char *type; /* pid, network, mount, ipc, uts, user, cgroup, time */
	char *path;
};

struct oci_id_mapping {
	uint32_t container_id, host_id, size;
};

struct oci_seccomp_arg {
	uint32_t index;
	uint64_t value, value_two;
	char *op; /* SCMP_CMP_EQ ... */
};

struct oci_seccomp_syscall {
	char **names;
	size_t n_names;
	char *action; /* SCMP_ACT_* */
	uint32_t errno_ret;
	bool has_errno_ret;
	struct oci_seccomp_arg *args;
	size_t n_args;
};

struct oci_seccomp {
	char *default_action;
	uint32_t default_errno_ret;
	bool has_default_errno_ret;
	char **architectures;
	size_t n_architectures;
	char **flags;
	size_t n_flags;
	struct oci_seccomp_syscall *syscalls;
	size_t n_syscalls;
};

/* ---- linux.resources (h-cgres): every LinuxResources field but devices
 * (below, h-devices). 0 means "not set" where runc reads it so (memory
 * limits, shares, quota, period, weights); the has_* flags say a key was
 * present. Where written: kernel/cgroup_res.c. */
struct oci_memory {
	int64_t limit, reservation, swap;
	bool has_limit, has_reservation, has_swap;
	int64_t kernel, kernel_tcp; /* ignored with a warning, as runc does */
	bool has_kernel, has_kernel_tcp;
	uint64_t swappiness; /* 0..100 */
	bool has_swappiness;
	bool disable_oom_killer, has_disable_oom_killer;
	bool use_hierarchy, has_use_hierarchy;
	bool check_before_update;
};

struct oci_cpu {
	uint64_t shares, period;
	int64_t quota;
	bool has_shares, has_quota, has_period;
	char *cpus, *mems;
	uint64_t burst, realtime_period;
	int64_t realtime_runtime, idle;
	bool has_burst, has_realtime_period, has_realtime_runtime, has_idle;
};

struct oci_pids {
	int64_t limit;
	bool has_limit;
};

/* blkio.weightDevice[i] */
struct oci_blkio_weight_device {
	int64_t major, minor;
	uint32_t weight, leaf_weight;
	bool has_weight, has_leaf_weight;
};

/* blkio.throttle*Device[i] */
struct oci_blkio_throttle {
	int64_t major, minor;
	uint64_t rate;
};

struct oci_blkio {
	uint32_t weight, leaf_weight; /* 10..1000; 0 = unset */
	bool has_weight, has_leaf_weight;
	struct oci_blkio_weight_device *weight_device;
	size_t n_weight_device;
	/* throttleReadBps, throttleWriteBps, throttleReadIOPS, throttleWriteIOPS */
	struct oci_blkio_throttle *throttle[4];
	size_t n_throttle[4];
};

/* hugepageLimits[i]: pageSize "2MB", "1GB", "64KB" */
struct oci_hugepage_limit {
	char *page_size;
	uint64_t limit;
};

struct oci_net_priority {
	char *name;
	uint32_t priority;
};

struct oci_network {
	uint32_t class_id;
	bool has_class_id;
	struct oci_net_priority *priorities;
	size_t n_priorities;
};
/* ---- end of linux.resources (h-cgres) ---- */

/* devices: one rule of linux.resources.devices (the devices cgroup) */
struct oci_device_cgroup {
	bool allow;
	char *type;           /* "a", "c" or "b"; NULL means "a" */
	int64_t major, minor; /* -1 or absent (has_* false) means any */
	bool has_major, has_minor;
	char *access; /* a subset of "rwm"; NULL or "" means "rwm" */
};

/* devices: one node of linux.devices */
struct oci_device {
	char *path; /* absolute, under /dev */
	char *type; /* "c", "b", "u" (unbuffered c) or "p" (fifo) */
	int64_t major, minor;
	bool has_major, has_minor;
	uint32_t file_mode, uid, gid;
	bool has_file_mode, has_uid, has_gid;
};

struct oci_resources {
	/* devices: linux.resources.devices, in the spec's order */
	struct oci_device_cgroup *devices;
	size_t n_devices;
	struct oci_memory memory;
	bool has_memory;
	struct oci_cpu cpu;
	bool has_cpu;
	struct oci_pids pids;
	bool has_pids;
	/* h-cgres */
	struct oci_blkio blkio;
	bool has_blkio;
	struct oci_hugepage_limit *hugepage_limits;
	size_t n_hugepage_limits;
	struct oci_network network;
	bool has_network;
	const msgpack_object *rdma;    /* map name → {hcaHandles, hcaObjects}, validated; or NULL */
	const msgpack_object *unified; /* map file → string value, validated; or NULL */
};

struct oci_linux {
	/* devices: linux.devices */
	struct oci_device *devices;
	size_t n_devices;
	struct oci_namespace *namespaces;
	size_t n_namespaces;
	struct oci_id_mapping *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_resources resources;
	bool has_resources;
	char *cgroups_path;
	char **masked_paths;
	size_t n_masked_paths;
	char **readonly_paths;
	size_t n_readonly_paths;
	struct oci_seccomp seccomp;
	bool has_seccomp;
	const msgpack_object *sysctl; /* map string → string, or NULL */
	/* Spec fields cvisor does not implement, kept only to refuse them by
	 * name when they ask for something (never a silent skip). */
	const msgpack_object *intel_rdt, *time_offsets, *net_devices;
	char *rootfs_propagation;
	char *mount_label;
	/* Process fields (h-mounts). */
	struct oci_personality personality;
	bool has_personality;
};

/* --- OCI hooks (spec.hooks) --- */
struct oci_hook {
	char *path; /* absolute */
	char **args;
	size_t n_args;
	char **env;
	size_t n_env;
	bool has_env; /* absent: the runtime's own environment, as runc */
	int64_t timeout; /* seconds, > 0 */
	bool has_timeout;
};

struct oci_hooks {
	struct oci_hook *prestart, *create_runtime, *create_container, *start_container,
		*poststart, *poststop;
	size_t n_prestart, n_create_runtime, n_create_container, n_start_container,
		n_poststart, n_poststop;
};
/* --- end OCI hooks --- */

struct oci_spec {
	char *oci_version;
	struct oci_process process;
	bool has_process;
	struct oci_root root;
	bool has_root;
	char *hostname;
	char *domainname;
	struct oci_mount *mounts;
	size_t n_mounts;
	struct oci_linux linux_; /* "linux" is a predefined macro in GNU C */
	bool has_linux;
	const msgpack_object *annotations; /* map string → string, or NULL */
	/* OCI hooks */
	struct oci_hooks hooks;
	bool has_hooks;
	/* Session keyring (h-mounts): not an OCI key. `cvisor create` sets
	 * "cvisor.sessionKeyring" to the container id, or to "" with
	 * --no-new-keyring (overwriting any value in config.json); absent (a
	 * spec sent over the RPC) means a new anonymous session keyring. */
	char *session_keyring;
	/* The container's cgroup, relative to each hierarchy's root: `create`
	 * resolves linux.cgroupsPath (kernel/cgroup.h, cgroup_resolve_path)
	 * and always sets "cvisor.cgroupPath", overwriting config.json's. */
	char *cgroup_path;
	/* --systemd-cgroup (h-sysd): the scope unit ("libpod-ID.scope") and
	 * its slice that boot asks systemd for (kernel/cgroup_systemd.h);
	 * `create` always sets both ("" without the flag), overwriting
	 * config.json's. */
	char *systemd_unit, *systemd_slice;
};

/* Decodes and validates (process.args non-empty, cwd absolute, root.path
 * present, namespace types known). Errors name the field:
 * "spec.process.args: expected array of strings". */
int oci_spec_decode(const msgpack_object *obj, msgpack_zone *zone, struct oci_spec *out,
		    struct cv_error *err);

/* Resources alone (for `cvisor update --resources F`: the
 * LinuxResources JSON object). */
int oci_resources_decode(const msgpack_object *obj, msgpack_zone *zone,
			 struct oci_resources *out, struct cv_error *err);

/* OCI hooks alone (the CLI's copy from state.json, for poststart and
 * poststop): the same checks as in oci_spec_decode, errors named
 * "spec.hooks.<kind>[i].<field>". */
int oci_hooks_decode(const msgpack_object *obj, msgpack_zone *zone, struct oci_hooks *out,
		     struct cv_error *err);

/* devices: checks linux.resources.devices rules (type a/c/b, access a
 * subset of rwm, major/minor -1 or in 0..2^32-1); `what` prefixes errors
 * ("spec.linux.resources.devices"). */
int oci_device_rules_validate(const struct oci_device_cgroup *rules, size_t n, const char *what,
			      struct cv_error *err);

/* CLONE_NEW* flag for an OCI namespace type, 0 if unknown (or NULL): the
 * one table of namespace types, used by validation and by kernel/. */
int oci_namespace_flag(const char *type);
/* The i-th namespace type of that table, NULL past the end (features). */
const char *oci_namespace_name(size_t i);

/* RLIMIT_* for an OCI rlimit type ("RLIMIT_NOFILE"), -1 if unknown (or
 * NULL): validation and the child's setrlimit share it. */
int oci_rlimit_resource(const char *name);

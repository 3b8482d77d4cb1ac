#pragma once
/* Shared between the cgroup files only (kernel/cgroup.c: placement, removal,
 * kill, freeze; kernel/cgroup_layout.c: the host's hierarchies and node file
 * access; kernel/cgroup_res.c: the resource writers). Not for other modules:
 * they use kernel/cgroup.h.
 *
 * The short names below were file-local before the split; the macros give
 * the linked symbols the module prefix while the code keeps reading as it
 * did (so the split stayed a pure move). */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/spec.h"
#include "kernel/cgroup.h"

#define CG_PATH_MAX 4096
#define CG_MAX_HIER 16

/* The controllers cvisor knows; a v1 hierarchy carrying any of them is
 * joined by every container. C_IO is v2's name for blkio: where(C_BLKIO)
 * answers with the v2 node when the unified hierarchy lists "io". */
enum cg_ctrl {
	C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_CPUSET, C_FREEZER, C_BLKIO, C_DEVICES,
	C_HUGETLB, C_NET_CLS, C_NET_PRIO, C_PERF_EVENT, C_RDMA, C_MISC, C_IO, C_N
};

#define ctrl_names cgroup_ctrl_names
extern const char *const ctrl_names[C_N];

struct v1_hier {
	char mnt[256];
	unsigned ctrls; /* bit per enum cg_ctrl */
};

struct layout {
	bool detected;
	char v2[256]; /* "" when no unified hierarchy */
	unsigned v2_ctrls; /* controllers the v2 root lists */
	struct v1_hier v1[CG_MAX_HIER];
	int n_v1;
};

/* The host's layout, filled by detect(). */
#define lay cgroup_lay
extern struct layout lay;

/* Where a controller lives: index of a v1 hierarchy, WHERE_V2 or WHERE_NONE. */
#define WHERE_V2 (-1)
#define WHERE_NONE (-2)

/* ---- kernel/cgroup_layout.c ---- */

/* Bit mask (per enum cg_ctrl) of the controllers named in a comma, space or
 * newline separated list. */
#define parse_ctrls cgroup_layout_parse_ctrls
unsigned parse_ctrls(const char *list);
/* Reads /proc/self/mountinfo once into lay. */
#define detect cgroup_layout_detect
void detect(void);
/* Where controller c lives (a v1 hierarchy wins over v2). */
#define where cgroup_layout_where
int where(enum cg_ctrl c);

#define write_str cgroup_write_str
int write_str(const char *dir, const char *file, const char *val, struct cv_error *err);
#define write_i64 cgroup_write_i64
int write_i64(const char *dir, const char *file, int64_t v, struct cv_error *err);
/* Reads a small file at dir/file; returns bytes read (NUL-terminated, trailing
 * newline kept) or -errno. */
#define read_small cgroup_read_small
ssize_t read_small(const char *dir, const char *file, char *buf, size_t n);
#define file_exists cgroup_file_exists
bool file_exists(const char *dir, const char *file);
/* out = root/rel (leading slashes of rel dropped). */
#define node_dir cgroup_node_dir
void node_dir(char *out, size_t n, const char *root, const char *rel);

/* ---- kernel/cgroup_res.c ---- */

struct cg_ops;
/* The node directory for controller c and the ops of its hierarchy (ops
 * may be NULL); an error naming `why` when the host lacks c. */
#define ctrl_dir cgroup_res_ctrl_dir
int ctrl_dir(enum cg_ctrl c, const char *rel, char *dir, size_t n, const struct cg_ops **ops,
	     const char *why, struct cv_error *err);
/* Whether res asks for cpus or mems (a cpuset node). */
#define wants_cpuset cgroup_res_wants_cpuset
bool wants_cpuset(const struct oci_resources *res);
/* Writes res (may be NULL) into the node rel of every hierarchy concerned. */
#define apply cgroup_res_apply
int apply(const char *rel, const struct oci_resources *res, struct cv_error *err);
/* linux.resources.devices (kernel/cgroup_devices.h). */
#define apply_devices cgroup_res_apply_devices
int apply_devices(const struct cgroup *cg, const struct oci_resources *res, struct cv_error *err);
/* Pure v2: enables the controllers resources go to in every ancestor of rel. */
#define v2_enable cgroup_res_v2_enable
void v2_enable(const char *rel, const struct oci_resources *res);

/* Conversions, as runc does them (exposed for test/unit/test_cgroup_res.c):
 * cpu.shares → cpu.weight, blkio weight → io.weight, and one io.max line
 * ("8:0 rbps=1048576") for throttle kind 0..3 (read bps, write bps, read
 * iops, write iops). 0 stays 0 ("unset"). */
uint64_t cgroup_res_shares_to_weight(uint64_t shares);
uint64_t cgroup_res_blkio_weight_to_io(uint64_t weight);
int cgroup_res_io_max_line(char *out, size_t n, int kind, const struct oci_blkio_throttle *t);

/* `cvisor update [-r|--resources F] [runc's limit flags] ID`: change the
 * root container's cgroup limits directly (the cgroup belongs to the host;
 * boot need not be involved). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/verbs.h"
#include "core/spec.h"
#include "kernel/cgroup.h"
#include "kernel/cgroup_systemd.h"

/* "512m", "1G", "1048576" → bytes (runc's RAMInBytes); -1 stays -1
 * (unlimited). */
static int parse_bytes(const char *flag, const char *s, int64_t *out, struct cv_error *err)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s)
		return cv_errf(err, 0, "%s: invalid size \"%s\"", flag, s);
	int64_t mul = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		mul = 1LL << 10;
		break;
	case 'm':
		mul = 1LL << 20;
		break;
	case 'g':
		mul = 1LL << 30;
		break;
	case 't':
		mul = 1LL << 40;
		break;
	default:
		return cv_errf(err, 0, "%s: invalid size \"%s\"", flag, s);
	}
	if (*end) {
		end++;
		if (tolower((unsigned char)*end) == 'i')
			end++;
		if (tolower((unsigned char)*end) == 'b')
			end++;
		if (*end)
			return cv_errf(err, 0, "%s: invalid size \"%s\"", flag, s);
	}
	if (v > 0 && v > INT64_MAX / mul)
		return cv_errf(err, 0, "%s: size \"%s\" is too large", flag, s);
	*out = v < 0 ? v : v * mul;
	return 0;
}

static int parse_int(const char *flag, const char *s, int64_t *out, struct cv_error *err)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return cv_errf(err, 0, "%s: invalid number \"%s\"", flag, s);
	*out = v;
	return 0;
}

enum {
	OPT_MEMORY = 256,
	OPT_MEMORY_RES,
	OPT_MEMORY_SWAP,
	OPT_CPU_SHARE,
	OPT_CPU_PERIOD,
	OPT_CPU_QUOTA,
	OPT_CPUSET_CPUS,
	OPT_CPUSET_MEMS,
	OPT_PIDS_LIMIT,
	OPT_CPU_RT_PERIOD,
	OPT_CPU_RT_RUNTIME,
	OPT_BLKIO_WEIGHT,
	OPT_KERNEL_MEMORY, /* the flags before this one set a limit */
	OPT_KERNEL_MEMORY_TCP,
	OPT_INTEL_RDT,
};

int cmd_update(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resources", required_argument, 0, 'r' },
		{ "memory", required_argument, 0, OPT_MEMORY },
		{ "memory-reservation", required_argument, 0, OPT_MEMORY_RES },
		{ "memory-swap", required_argument, 0, OPT_MEMORY_SWAP },
		{ "cpu-share", required_argument, 0, OPT_CPU_SHARE },
		{ "cpu-shares", required_argument, 0, OPT_CPU_SHARE },
		{ "cpu-period", required_argument, 0, OPT_CPU_PERIOD },
		{ "cpu-quota", required_argument, 0, OPT_CPU_QUOTA },
		{ "cpuset-cpus", required_argument, 0, OPT_CPUSET_CPUS },
		{ "cpuset-mems", required_argument, 0, OPT_CPUSET_MEMS },
		{ "pids-limit", required_argument, 0, OPT_PIDS_LIMIT },
		{ "blkio-weight", required_argument, 0, OPT_BLKIO_WEIGHT },
		{ "cpu-rt-period", required_argument, 0, OPT_CPU_RT_PERIOD },
		{ "cpu-rt-runtime", required_argument, 0, OPT_CPU_RT_RUNTIME },
		/* Ignored with a warning, as runc does: kernel memory limits are
		 * deprecated. */
		{ "kernel-memory", required_argument, 0, OPT_KERNEL_MEMORY },
		{ "kernel-memory-tcp", required_argument, 0, OPT_KERNEL_MEMORY_TCP },
		/* Intel RDT (resctrl) is not cgroups and cvisor has none: refused. */
		{ "l3-cache-schema", required_argument, 0, OPT_INTEL_RDT },
		{ "mem-bw-schema", required_argument, 0, OPT_INTEL_RDT },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	struct cv_error err = { 0 };
	struct oci_resources flags = { 0 };
	bool any_flag = false;
	const char *file = NULL;
	int c, r = 0;
	optind = 1;
	opterr = 0;
	while (r == 0 && (c = getopt_long(argc, argv, "+:r:h", opts, NULL)) != -1) {
		int64_t v = 0;
		switch (c) {
		case 'r':
			file = optarg;
			break;
		case OPT_MEMORY:
			r = parse_bytes("--memory", optarg, &v, &err);
			flags.memory.limit = v, flags.memory.has_limit = true, flags.has_memory = true;
			break;
		case OPT_MEMORY_RES:
			r = parse_bytes("--memory-reservation", optarg, &v, &err);
			flags.memory.reservation = v, flags.memory.has_reservation = true;
			flags.has_memory = true;
			break;
		case OPT_MEMORY_SWAP:
			r = parse_bytes("--memory-swap", optarg, &v, &err);
			flags.memory.swap = v, flags.memory.has_swap = true, flags.has_memory = true;
			break;
		case OPT_CPU_SHARE:
			r = parse_int("--cpu-share", optarg, &v, &err);
			if (r == 0 && v < 0)
				r = cv_errf(&err, 0, "--cpu-share must not be negative");
			flags.cpu.shares = (uint64_t)v, flags.cpu.has_shares = true, flags.has_cpu = true;
			break;
		case OPT_CPU_PERIOD:
			r = parse_int("--cpu-period", optarg, &v, &err);
			if (r == 0 && v < 0)
				r = cv_errf(&err, 0, "--cpu-period must not be negative");
			flags.cpu.period = (uint64_t)v, flags.cpu.has_period = true, flags.has_cpu = true;
			break;
		case OPT_CPU_QUOTA:
			r = parse_int("--cpu-quota", optarg, &v, &err);
			flags.cpu.quota = v, flags.cpu.has_quota = true, flags.has_cpu = true;
			break;
		case OPT_CPUSET_CPUS:
			flags.cpu.cpus = optarg, flags.has_cpu = true;
			break;
		case OPT_CPUSET_MEMS:
			flags.cpu.mems = optarg, flags.has_cpu = true;
			break;
		case OPT_PIDS_LIMIT:
			r = parse_int("--pids-limit", optarg, &v, &err);
			flags.pids.limit = v, flags.pids.has_limit = true, flags.has_pids = true;
			break;
		case OPT_CPU_RT_PERIOD:
			r = parse_int("--cpu-rt-period", optarg, &v, &err);
			if (r == 0 && v < 0)
				r = cv_errf(&err, 0, "--cpu-rt-period must not be negative");
			flags.cpu.realtime_period = (uint64_t)v, flags.cpu.has_realtime_period = true;
			flags.has_cpu = true;
			break;
		case OPT_CPU_RT_RUNTIME:
			r = parse_int("--cpu-rt-runtime", optarg, &v, &err);
			flags.cpu.realtime_runtime = v, flags.cpu.has_realtime_runtime = true;
			flags.has_cpu = true;
			break;
		case OPT_BLKIO_WEIGHT:
			r = parse_int("--blkio-weight", optarg, &v, &err);
			if (r == 0 && v != 0 && (v < 10 || v > 1000))
				r = cv_errf(&err, 0, "--blkio-weight: %s is out of range (10-1000)", optarg);
			flags.blkio.weight = (uint32_t)v, flags.blkio.has_weight = true, flags.has_blkio = true;
			break;
		case OPT_KERNEL_MEMORY:
		case OPT_KERNEL_MEMORY_TCP:
			r = parse_bytes(c == OPT_KERNEL_MEMORY ? "--kernel-memory" : "--kernel-memory-tcp",
					optarg, &v, &err);
			if (r == 0)
				fprintf(stderr, "cvisor: warning: %s is ignored: kernel memory limits are "
						"deprecated (as in runc)\n",
					c == OPT_KERNEL_MEMORY ? "--kernel-memory" : "--kernel-memory-tcp");
			break;
		case OPT_INTEL_RDT:
			r = cv_errf(&err, 0, "--l3-cache-schema/--mem-bw-schema: Intel RDT (linux.intelRdt) is "
					     "not supported by cvisor");
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
		if (c >= OPT_MEMORY && c <= OPT_KERNEL_MEMORY_TCP)
			any_flag = true;
	}
	if (r < 0)
		return cli_fail(&err);
	if (optind + 1 != argc)
		return cli_failf("update needs exactly one container ID");
	if (!file && !any_flag)
		return cli_failf("update needs --resources FILE or a limit flag (see cvisor update --help)");
	const char *id = argv[optind];
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);

	struct oci_resources res = { 0 };
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	char *text = NULL;
	size_t len = 0;
	struct cli_state st = { 0 };
	if (!zone) {
		r = cv_errf(&err, ENOMEM, "update");
		goto out;
	}
	if (file) {
		msgpack_object obj;
		size_t off = 0;
		if (cli_read_file(file, &text, &len, &err) < 0 ||
		    json_mp_convert(text, len, &sb, &err) < 0) {
			r = -1;
			goto out;
		}
		if (msgpack_unpack(sb.data, sb.size, &off, zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
			r = cv_errf(&err, 0, "%s: converting the resources failed", file);
			goto out;
		}
		if (oci_resources_decode(&obj, zone, &res, &err) < 0) {
			r = cv_error_wrap(&err, "%s", file);
			goto out;
		}
	}
	/* Flags override the file, field by field. */
	if (flags.memory.has_limit)
		res.memory.limit = flags.memory.limit, res.memory.has_limit = true;
	if (flags.memory.has_reservation)
		res.memory.reservation = flags.memory.reservation, res.memory.has_reservation = true;
	if (flags.memory.has_swap)
		res.memory.swap = flags.memory.swap, res.memory.has_swap = true;
	if (flags.cpu.has_shares)
		res.cpu.shares = flags.cpu.shares, res.cpu.has_shares = true;
	if (flags.cpu.has_period)
		res.cpu.period = flags.cpu.period, res.cpu.has_period = true;
	if (flags.cpu.has_quota)
		res.cpu.quota = flags.cpu.quota, res.cpu.has_quota = true;
	if (flags.cpu.cpus)
		res.cpu.cpus = flags.cpu.cpus;
	if (flags.cpu.mems)
		res.cpu.mems = flags.cpu.mems;
	if (flags.cpu.has_realtime_period)
		res.cpu.realtime_period = flags.cpu.realtime_period, res.cpu.has_realtime_period = true;
	if (flags.cpu.has_realtime_runtime)
		res.cpu.realtime_runtime = flags.cpu.realtime_runtime, res.cpu.has_realtime_runtime = true;
	if (flags.pids.has_limit)
		res.pids.limit = flags.pids.limit, res.pids.has_limit = true;
	if (flags.blkio.has_weight)
		res.blkio.weight = flags.blkio.weight, res.blkio.has_weight = true;
	res.has_memory |= flags.has_memory;
	res.has_cpu |= flags.has_cpu;
	res.has_pids |= flags.has_pids;
	res.has_blkio |= flags.has_blkio;

	if (cli_state_load(id, &st, &err) < 0) {
		r = -1;
		goto out;
	}
	if (!st.cgroup_path || !st.cgroup_path[0]) {
		r = cv_errf(&err, 0, "container \"%s\" has no cgroup path in its state", id);
		goto out;
	}
	char path[PATH_MAX];
	/* state.json's cgroupPath is the container's own cgroup. */
	snprintf(path, sizeof(path), "%s", st.cgroup_path);
	/* --systemd-cgroup: systemd is told first, as runc's driver does, so
	 * that it does not put back the old limits; then the files. */
	if (st.systemd_unit && st.systemd_unit[0] &&
	    cgroup_systemd_set(st.systemd_unit, &res, &err) < 0) {
		r = cv_error_wrap(&err, "updating container \"%s\"", id);
		goto out;
	}
	struct cgroup cg;
	if (cgroup_open(&cg, path, &err) < 0) {
		r = cv_error_wrap(&err, "container \"%s\"", id);
		goto out;
	}
	r = cgroup_update(&cg, &res, &err);
	cgroup_close(&cg);
	if (r < 0)
		cv_error_wrap(&err, "updating container \"%s\"", id);
out:
	cli_state_free(&st);
	free(text);
	msgpack_sbuffer_destroy(&sb);
	if (zone)
		msgpack_zone_free(zone);
	return r < 0 ? cli_fail(&err) : 0;
}

/* `cvisor spec` (a default config.json, as `runc spec` writes) and
 * `cvisor features` (what this runtime supports, as `runc features`). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/verbs.h"
#include "core/spec.h"
#include "kernel/caps.h"
#include "kernel/mount_opts.h"
#include "kernel/seccomp_spec.h"

/* runc's example spec (runc >= 1.1.2): bounding, effective and permitted
 * only. An ambient set without the same inheritable set cannot be raised
 * (the kernel refuses it), so a spec listing ambient caps did not run. */
static const char default_spec[] =
	"{\n"
	"\t\"ociVersion\": \"" CLI_OCI_VERSION "\",\n"
	"\t\"process\": {\n"
	"\t\t\"terminal\": true,\n"
	"\t\t\"user\": {\n\t\t\t\"uid\": 0,\n\t\t\t\"gid\": 0\n\t\t},\n"
	"\t\t\"args\": [\n\t\t\t\"sh\"\n\t\t],\n"
	"\t\t\"env\": [\n"
	"\t\t\t\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
	"\t\t\t\"TERM=xterm\"\n"
	"\t\t],\n"
	"\t\t\"cwd\": \"/\",\n"
	"\t\t\"capabilities\": {\n"
	"\t\t\t\"bounding\": [\n\t\t\t\t\"CAP_AUDIT_WRITE\",\n\t\t\t\t\"CAP_KILL\",\n\t\t\t\t\"CAP_NET_BIND_SERVICE\"\n\t\t\t],\n"
	"\t\t\t\"effective\": [\n\t\t\t\t\"CAP_AUDIT_WRITE\",\n\t\t\t\t\"CAP_KILL\",\n\t\t\t\t\"CAP_NET_BIND_SERVICE\"\n\t\t\t],\n"
	"\t\t\t\"permitted\": [\n\t\t\t\t\"CAP_AUDIT_WRITE\",\n\t\t\t\t\"CAP_KILL\",\n\t\t\t\t\"CAP_NET_BIND_SERVICE\"\n\t\t\t]\n"
	"\t\t},\n"
	"\t\t\"rlimits\": [\n\t\t\t{\n\t\t\t\t\"type\": \"RLIMIT_NOFILE\",\n\t\t\t\t\"hard\": 1024,\n\t\t\t\t\"soft\": 1024\n\t\t\t}\n\t\t],\n"
	"\t\t\"noNewPrivileges\": true\n"
	"\t},\n"
	"\t\"root\": {\n\t\t\"path\": \"rootfs\",\n\t\t\"readonly\": true\n\t},\n"
	"\t\"hostname\": \"cvisor\",\n"
	"\t\"mounts\": [\n"
	"\t\t{\n\t\t\t\"destination\": \"/proc\",\n\t\t\t\"type\": \"proc\",\n\t\t\t\"source\": \"proc\"\n\t\t},\n"
	"\t\t{\n\t\t\t\"destination\": \"/dev\",\n\t\t\t\"type\": \"tmpfs\",\n\t\t\t\"source\": \"tmpfs\",\n"
	"\t\t\t\"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]\n\t\t},\n"
	"\t\t{\n\t\t\t\"destination\": \"/dev/pts\",\n\t\t\t\"type\": \"devpts\",\n\t\t\t\"source\": \"devpts\",\n"
	"\t\t\t\"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\"]\n\t\t},\n"
	"\t\t{\n\t\t\t\"destination\": \"/dev/shm\",\n\t\t\t\"type\": \"tmpfs\",\n\t\t\t\"source\": \"shm\",\n"
	"\t\t\t\"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]\n\t\t},\n"
	"\t\t{\n\t\t\t\"destination\": \"/dev/mqueue\",\n\t\t\t\"type\": \"mqueue\",\n\t\t\t\"source\": \"mqueue\",\n"
	"\t\t\t\"options\": [\"nosuid\", \"noexec\", \"nodev\"]\n\t\t},\n"
	"\t\t{\n\t\t\t\"destination\": \"/sys\",\n\t\t\t\"type\": \"sysfs\",\n\t\t\t\"source\": \"sysfs\",\n"
	"\t\t\t\"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]\n\t\t}\n"
	"\t],\n"
	"\t\"linux\": {\n"
	"\t\t\"resources\": {\n\t\t\t\"devices\": [\n\t\t\t\t{\n\t\t\t\t\t\"allow\": false,\n\t\t\t\t\t\"access\": \"rwm\"\n\t\t\t\t}\n\t\t\t]\n\t\t},\n"
	"\t\t\"namespaces\": [\n"
	"\t\t\t{\n\t\t\t\t\"type\": \"pid\"\n\t\t\t},\n"
	"\t\t\t{\n\t\t\t\t\"type\": \"network\"\n\t\t\t},\n"
	"\t\t\t{\n\t\t\t\t\"type\": \"ipc\"\n\t\t\t},\n"
	"\t\t\t{\n\t\t\t\t\"type\": \"uts\"\n\t\t\t},\n"
	"\t\t\t{\n\t\t\t\t\"type\": \"mount\"\n\t\t\t}\n"
	"\t\t],\n"
	"\t\t\"maskedPaths\": [\n"
	"\t\t\t\"/proc/acpi\",\n\t\t\t\"/proc/asound\",\n\t\t\t\"/proc/kcore\",\n\t\t\t\"/proc/keys\",\n"
	"\t\t\t\"/proc/latency_stats\",\n\t\t\t\"/proc/timer_list\",\n\t\t\t\"/proc/timer_stats\",\n"
	"\t\t\t\"/proc/sched_debug\",\n\t\t\t\"/sys/firmware\",\n\t\t\t\"/proc/scsi\"\n"
	"\t\t],\n"
	"\t\t\"readonlyPaths\": [\n"
	"\t\t\t\"/proc/bus\",\n\t\t\t\"/proc/fs\",\n\t\t\t\"/proc/irq\",\n\t\t\t\"/proc/sys\",\n"
	"\t\t\t\"/proc/sysrq-trigger\"\n"
	"\t\t]\n"
	"\t}\n"
	"}\n";

int cmd_spec(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, 0, 'b' },
		{ "rootless", no_argument, 0, 'R' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	const char *bundle = NULL;
	bool rootless = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bundle = optarg;
			break;
		case 'R':
			rootless = true;
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind != argc)
		return cli_failf("spec takes no arguments");
	if (rootless)
		return cli_failf("--rootless is not supported: cvisor runs as root");
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", bundle ? bundle : ".");
	/* O_EXCL: never overwrite an existing spec. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			return cli_failf("File config.json exists. Remove it first");
		return cli_failf("creating %s: %s", path, strerror(errno));
	}
	size_t n = sizeof(default_spec) - 1, off = 0;
	while (off < n) {
		ssize_t k = write(fd, default_spec + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			close(fd);
			unlink(path);
			return cli_failf("writing %s: %s", path, strerror(e));
		}
		off += (size_t)k;
	}
	if (close(fd) < 0)
		return cli_failf("writing %s: %s", path, strerror(errno));
	return 0;
}

/* `features` is printed from the tables the code uses to accept a spec,
 * so a listed item is one the runtime takes and an unlisted one is refused
 * (or, for a mount option, handed to the filesystem as data, as runc). */
typedef const char *(*name_at)(size_t i);

static void print_names(const char *indent, name_at at)
{
	fputs("[", stdout);
	for (size_t i = 0; at(i); i++)
		printf("%s\n%s    \"%s\"", i ? "," : "", indent, at(i));
	printf("\n%s]", indent);
}

static const char *const hooks[] = {
	"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

static const char *hook_name(size_t i)
{
	return i < sizeof(hooks) / sizeof(hooks[0]) ? hooks[i] : NULL;
}

/* The architectures a filter on this host can take (the byte order of the
 * native one), numbered without gaps for print_names. */
static const char *usable_arch(size_t n)
{
	for (size_t i = 0; seccomp_spec_arch_name(i); i++)
		if (seccomp_spec_arch_usable(i) && n-- == 0)
			return seccomp_spec_arch_name(i);
	return NULL;
}

static const char *cap_name(size_t i)
{
	return i <= (size_t)INT_MAX ? caps_name((int)i) : NULL;
}

static void print_features(void)
{
	printf("{\n    \"ociVersionMin\": \"1.0.0\",\n    \"ociVersionMax\": \"%s\",\n", CLI_OCI_VERSION);
	fputs("    \"hooks\": ", stdout);
	print_names("    ", hook_name);
	fputs(",\n    \"mountOptions\": ", stdout);
	print_names("    ", mount_opts_name);
	fputs(",\n    \"linux\": {\n        \"namespaces\": ", stdout);
	print_names("        ", oci_namespace_name);
	fputs(",\n        \"capabilities\": ", stdout);
	print_names("        ", cap_name);
	fputs(",\n        \"cgroup\": {\n"
	      "            \"v1\": true,\n"
	      "            \"v2\": true,\n"
	      /* --systemd-cgroup: kernel/cgroup_systemd.h (the system
	       * manager's bus; no per-user systemd). */
	      "            \"systemd\": true,\n"
	      "            \"systemdUser\": false\n"
	      "        },\n"
	      "        \"seccomp\": {\n"
	      "            \"enabled\": true,\n"
	      "            \"actions\": ",
	      stdout);
	print_names("            ", seccomp_spec_action_name);
	fputs(",\n            \"operators\": ", stdout);
	print_names("            ", seccomp_spec_op_name);
	fputs(",\n            \"archs\": ", stdout);
	print_names("            ", usable_arch);
	fputs(",\n            \"knownFlags\": ", stdout);
	print_names("            ", seccomp_spec_flag_name);
	fputs(",\n            \"supportedFlags\": ", stdout);
	print_names("            ", seccomp_spec_flag_name);
	/* Applied when the host has the LSM enabled, else a logged warning. */
	printf("\n"
	       "        },\n"
	       "        \"apparmor\": {\n            \"enabled\": true\n        },\n"
	       "        \"selinux\": {\n            \"enabled\": true\n        },\n"
	       "        \"mountExtensions\": {\n"
	       "            \"idmap\": {\n                \"enabled\": false\n            }\n"
	       "        }\n"
	       "    },\n"
	       "    \"annotations\": {\n"
	       "        \"org.opencontainers.runtime-spec.features.cvisor.version\": \"%s\"\n"
	       "    }\n"
	       "}\n",
	       CLI_VERSION);
}

int cmd_features(const struct cli_command *cmd, int argc, char **argv)
{
	int done = cli_no_flags(cmd, argc, argv);
	if (done >= 0)
		return done;
	if (optind != argc)
		return cli_failf("features takes no arguments");
	print_features();
	return 0;
}

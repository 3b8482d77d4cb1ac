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

static const char features_json[] =
	"{\n"
	"    \"ociVersionMin\": \"1.0.0\",\n"
	"    \"ociVersionMax\": \"" CLI_OCI_VERSION "\",\n"
	"    \"hooks\": [\"prestart\", \"createRuntime\", \"createContainer\", \"startContainer\",\n"
	"              \"poststart\", \"poststop\"],\n"
	"    \"mountOptions\": [\n"
	"        \"async\", \"atime\", \"bind\", \"defaults\", \"dev\", \"diratime\", \"exec\",\n"
	"        \"noatime\", \"nodev\", \"nodiratime\", \"noexec\", \"norelatime\", \"nosuid\",\n"
	"        \"private\", \"rbind\", \"relatime\", \"remount\", \"ro\", \"rprivate\", \"rshared\",\n"
	"        \"rslave\", \"rw\", \"shared\", \"slave\", \"strictatime\", \"suid\", \"sync\"\n"
	"    ],\n"
	"    \"linux\": {\n"
	"        \"namespaces\": [\"cgroup\", \"ipc\", \"mount\", \"network\", \"pid\", \"user\", \"uts\"],\n"
	"        \"capabilities\": [\n"
	"            \"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_DAC_READ_SEARCH\", \"CAP_FOWNER\",\n"
	"            \"CAP_FSETID\", \"CAP_KILL\", \"CAP_SETGID\", \"CAP_SETUID\", \"CAP_SETPCAP\",\n"
	"            \"CAP_LINUX_IMMUTABLE\", \"CAP_NET_BIND_SERVICE\", \"CAP_NET_BROADCAST\",\n"
	"            \"CAP_NET_ADMIN\", \"CAP_NET_RAW\", \"CAP_IPC_LOCK\", \"CAP_IPC_OWNER\",\n"
	"            \"CAP_SYS_MODULE\", \"CAP_SYS_RAWIO\", \"CAP_SYS_CHROOT\", \"CAP_SYS_PTRACE\",\n"
	"            \"CAP_SYS_PACCT\", \"CAP_SYS_ADMIN\", \"CAP_SYS_BOOT\", \"CAP_SYS_NICE\",\n"
	"            \"CAP_SYS_RESOURCE\", \"CAP_SYS_TIME\", \"CAP_SYS_TTY_CONFIG\", \"CAP_MKNOD\",\n"
	"            \"CAP_LEASE\", \"CAP_AUDIT_WRITE\", \"CAP_AUDIT_CONTROL\", \"CAP_SETFCAP\",\n"
	"            \"CAP_MAC_OVERRIDE\", \"CAP_MAC_ADMIN\", \"CAP_SYSLOG\", \"CAP_WAKE_ALARM\",\n"
	"            \"CAP_BLOCK_SUSPEND\", \"CAP_AUDIT_READ\", \"CAP_PERFMON\", \"CAP_BPF\",\n"
	"            \"CAP_CHECKPOINT_RESTORE\"\n"
	"        ],\n"
	"        \"cgroup\": {\n"
	"            \"v1\": true,\n"
	"            \"v2\": true,\n"
	"            \"systemd\": false,\n"
	"            \"systemdUser\": false\n"
	"        },\n"
	"        \"seccomp\": {\n"
	"            \"enabled\": true,\n"
	"            \"actions\": [\n"
	"                \"SCMP_ACT_ALLOW\", \"SCMP_ACT_ERRNO\", \"SCMP_ACT_KILL\",\n"
	"                \"SCMP_ACT_KILL_PROCESS\", \"SCMP_ACT_KILL_THREAD\", \"SCMP_ACT_LOG\",\n"
	"                \"SCMP_ACT_NOTIFY\", \"SCMP_ACT_TRACE\", \"SCMP_ACT_TRAP\"\n"
	"            ],\n"
	"            \"operators\": [\n"
	"                \"SCMP_CMP_EQ\", \"SCMP_CMP_GE\", \"SCMP_CMP_GT\", \"SCMP_CMP_LE\",\n"
	"                \"SCMP_CMP_LT\", \"SCMP_CMP_MASKED_EQ\", \"SCMP_CMP_NE\"\n"
	"            ],\n"
	"            \"archs\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X32\"]\n"
	"        }\n"
	"    },\n"
	"    \"annotations\": {\n"
	"        \"org.opencontainers.runtime-spec.features.cvisor.version\": \"" CLI_VERSION "\"\n"
	"    }\n"
	"}\n";

int cmd_features(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP, { 0, 0, 0, 0 } };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return cli_usage(cmd);
		return cli_bad_flag(cmd, argc, argv);
	}
	if (optind != argc)
		return cli_failf("features takes no arguments");
	fputs(features_json, stdout);
	return 0;
}

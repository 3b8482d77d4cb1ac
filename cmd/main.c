/* cvisor's entry point: global flags, then one verb from commands[]. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/verbs.h"
#include "core/util.h"
#include "kernel/trace_arm.h"
#include "kernel/network_mode.h"

static const struct cli_command commands[] = {
	{ "create", cmd_create,
	  "create [--bundle B] [--pid-file F] [--console-socket S] ID\n"
	  "  Create a sandbox whose root container is ID, ready to start." },
	{ "start", cmd_start, "start ID\n  Start the created container ID." },
	{ "run", cmd_run,
	  "run [-d|--detach] [--keep] [--bundle B] [--pid-file F] [--console-socket S] ID\n"
	  "  Create and start; unless detached, wait for the container and delete it." },
	{ "exec", cmd_exec,
	  "exec [-d] [-t] [--console-socket S] [--cwd D] [-e K=V]... [-u UID[:GID]]\n"
	  "     [--additional-gids G]... [--cap CAP]... [--process P.json] [--pid-file F]\n"
	  "     [--no-new-privs] ID [CMD...]\n"
	  "  Run a new process in the running container ID." },
	{ "kill", cmd_kill, "kill [--all|-a] [--pid N] ID [SIGNAL]\n  Send a signal (default TERM)." },
	{ "delete", cmd_delete, "delete [--force|-f] ID\n  Delete the sandbox ID." },
	{ "state", cmd_state, "state ID\n  Print the OCI state of ID as JSON." },
	{ "list", cmd_list, "list [--format table|json] [-q]\n  List the sandboxes under --root." },
	{ "ps", cmd_ps, "ps [--format table|json] ID\n  List the processes of ID." },
	{ "wait", cmd_wait, "wait [--pid N] ID\n  Wait for the container (or PID) and print its exit status." },
	{ "pause", cmd_pause, "pause ID\n  Freeze every process of ID." },
	{ "resume", cmd_resume, "resume ID\n  Thaw a paused ID." },
	{ "update", cmd_update,
	  "update [-r|--resources F] [--memory N] [--pids-limit N] [--cpu-share N] ... ID\n"
	  "  Change the resource limits of ID (F is LinuxResources JSON, - for stdin)." },
	{ "spec", cmd_spec, "spec [--bundle B]\n  Write a default config.json." },
	{ "features", cmd_features, "features\n  Print the runtime's features as JSON." },
	{ "export-metrics", cmd_export_metrics,
	  "export-metrics [--only-metrics REGEX] ID\n"
	  "  Print the sandbox's metrics in Prometheus text format." },
	{ "debug", cmd_debug,
	  "debug [--stacks] [--log-level L] [--profile-heap F] [--profile-cpu F] [--trace F]\n"
	  "      [--duration D] [--strace all|off|a,b,c] ID\n"
	  "  Dump the sandbox's state, change its log level, or profile it (D defaults to 1s)." },
	{ "trace", cmd_trace,
	  "trace procfs ID\n"
	  "  Print what /proc says of every process of ID, one JSON object per line.\n"
	  "trace create --config FILE [--force] ID | trace delete ID | trace list ID\n"
	  "  Create (replace with --force), delete or list the trace session of ID." },
	{ "read-control", cmd_read_control,
	  "read-control ID CONTROLLER PATH NAME\n"
	  "  Print a control file of a container's cgroup (PATH \"/\" or \"/<container id>\")." },
	{ "write-control", cmd_write_control,
	  "write-control ID CONTROLLER PATH NAME VALUE\n"
	  "  Write VALUE to a control file of a container's cgroup." },
	{ "usage", cmd_usage,
	  "usage [--full] [--fd] ID\n"
	  "  Print the sandbox's memory usage as JSON (--fd: the values of the usage memfd)." },
	{ "events", cmd_events,
	  "events [--stats] [--interval D] ID\n"
	  "  Print the container's stats as one JSON line per interval (default 5s) until it\n"
	  "  stops; --stats prints one and exits." },
	{ "statefile", cmd_statefile,
	  "statefile --list|--get KEY|--verify FILE\n"
	  "  Print a state file's metadata as JSON (--get: one key), or read and check all of it\n"
	  "  (--verify: checksums, records, counts) and print what it holds." },
	{ "port-forward", cmd_port_forward,
	  "port-forward ID LOCAL:REMOTE | port-forward --stream UDS ID PORT\n"
	  "  Forward 127.0.0.1:LOCAL to port REMOTE in the container (until SIGINT/SIGTERM\n"
	  "  or the container stops), or hand the unix socket UDS's connection to PORT once." },
	{ "checkpoint", cmd_checkpoint,
	  "checkpoint --image-path DIR [--leave-running] [--work-path DIR] ID\n"
	  "  Save the sandbox to DIR/checkpoint.img; it ends (status 0) unless --leave-running." },
	{ "restore", cmd_restore,
	  "restore --image-path DIR [--bundle B] [--detach] [--pid-file F] [--console-socket S] ID\n"
	  "  Create ID from the bundle and restore DIR/checkpoint.img into it." },
	/* Hidden: started by create through /proc/self/exe. */
	{ "boot", cmd_boot, NULL },
	/* Hidden: a subcontainer's gofer, started by create (cmd/gofer.c). */
	{ "gofer", cmd_gofer, NULL },
};

static void usage_all(FILE *f)
{
	fprintf(f, "cvisor: a sandbox runtime (containers as native processes, one reactor per sandbox)\n\n"
		   "usage: cvisor [global flags] COMMAND [flags] [args]\n\n"
		   "global flags:\n"
		   "  --root DIR           state directory (default " CLI_DEFAULT_ROOT ")\n"
		   "  --log FILE           log file\n"
		   "  --log-format FORMAT  text or json\n"
		   "  --debug              debug logging\n"
		   "  --systemd-cgroup     the cgroup is a transient scope made by systemd over\n"
		   "                       D-Bus; cgroupsPath is slice:prefix:name (default\n"
		   "                       :cvisor:ID); an error where systemd does not run\n"
		   "  --cgroup-manager X   systemd (as --systemd-cgroup) or cgroupfs (crun's flag)\n"
		   "  --trace-syscalls L   arm syscalls for trace sessions and strace: none (default),\n"
		   "                       default (" TRACE_ARM_DEFAULT "),\n"
		   "                       or a comma list\n"
		   "  --network MODE       sandbox (default: the spec's network namespace, set up\n"
		   "                       by Network.CreateLinksAndRoutes), none (a new one with\n"
		   "                       only loopback) or host (the host's)\n"
		   "  -v, --version        print the version\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].usage)
			fprintf(f, "  %s\n", commands[i].name);
	fprintf(f, "\nRun 'cvisor COMMAND --help' for a command's flags.\n");
}

/* Makes a relative path absolute against the cwd: boot runs in the bundle
 * directory and must still find --root and --log. The result lives until
 * exit. */
static const char *absolute(const char *p)
{
	if (p[0] == '/')
		return p;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return p;
	char *out = NULL;
	if (asprintf(&out, "%s/%s", cwd, p) < 0)
		return p;
	return out;
}

/* Matches "--name value" and "--name=value"; advances *i past the value. */
static bool flag_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return false;
	if (a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	if (a[n] != '\0')
		return false;
	if (*i + 1 >= argc) {
		*val = NULL;
		return true;
	}
	*val = argv[++*i];
	return true;
}

int main(int argc, char **argv)
{
	/* A closed 0-2 (some supervisors do that) must not make our own opens
	 * land there: boot would then hand them to the container as stdio. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return 1;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
			printf("cvisor version " CLI_VERSION "\nspec: " CLI_OCI_VERSION "\n");
			return 0;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage_all(stdout);
			return 0;
		}
		if (strcmp(a, "--debug") == 0 || strcmp(a, "--systemd-cgroup") == 0 ||
		    strcmp(a, "--rootless") == 0) {
			if (strcmp(a, "--debug") == 0)
				cli_g.debug = true;
			if (strcmp(a, "--systemd-cgroup") == 0)
				cli_g.systemd_cgroup = true;
			continue;
		}
		if (strncmp(a, "--debug=", 8) == 0 || strncmp(a, "--systemd-cgroup=", 17) == 0 ||
		    strncmp(a, "--rootless=", 11) == 0) {
			if (strncmp(a, "--debug=", 8) == 0)
				cli_g.debug = strcmp(a + 8, "true") == 0 || strcmp(a + 8, "1") == 0;
			if (strncmp(a, "--systemd-cgroup=", 17) == 0)
				cli_g.systemd_cgroup = strcmp(a + 17, "true") == 0 || strcmp(a + 17, "1") == 0;
			continue;
		}
		if (flag_value(argc, argv, &i, "--root", &v)) {
			if (!v || !*v)
				return cli_failf("flag --root needs a directory");
			cli_g.root = absolute(v);
			continue;
		}
		if (flag_value(argc, argv, &i, "--network", &v)) {
			struct cv_error err;
			enum net_mode mode;
			if (!v || net_mode_parse(v, &mode, &err) < 0)
				return cli_failf("flag --network must be none, sandbox or host");
			cli_g.network = v;
			continue;
		}
		if (flag_value(argc, argv, &i, "--log-format", &v)) {
			if (!v || (strcmp(v, "text") != 0 && strcmp(v, "json") != 0))
				return cli_failf("flag --log-format must be text or json");
			cli_g.log_format = v;
			continue;
		}
		if (flag_value(argc, argv, &i, "--log", &v)) {
			if (!v)
				return cli_failf("flag --log needs a file");
			cli_g.log = *v ? absolute(v) : NULL;
			continue;
		}
		if (flag_value(argc, argv, &i, "--trace-syscalls", &v)) {
			struct cv_error err = { 0 };
			if (!v)
				return cli_failf("flag --trace-syscalls needs default, none or a list");
			/* Checked here, before anything is created; boot, started
			 * with the same flag, arms its containers with it. */
			if (trace_arm_configure(v, &err) < 0)
				return cli_fail(&err);
			cli_g.trace_syscalls = v;
			continue;
		}
		/* crun's spelling of the driver choice. "disabled" (no cgroup
		 * at all) is refused: cvisor's kill, freeze and ps go through
		 * the container's cgroup. */
		if (flag_value(argc, argv, &i, "--cgroup-manager", &v)) {
			if (v && strcmp(v, "systemd") == 0)
				cli_g.systemd_cgroup = true;
			else if (v && strcmp(v, "cgroupfs") == 0)
				cli_g.systemd_cgroup = false;
			else
				return cli_failf("flag --cgroup-manager must be systemd or cgroupfs");
			continue;
		}
		/* Accepted for podman/containerd; they have no effect here. */
		if (flag_value(argc, argv, &i, "--criu", &v) ||
		    flag_value(argc, argv, &i, "--log-level", &v)) {
			if (!v)
				return cli_failf("flag %s needs a value", a);
			continue;
		}
		return cli_failf("unknown global flag \"%s\" (see cvisor --help)", a);
	}
	if (i >= argc) {
		usage_all(stderr);
		return 1;
	}
	const char *verb = argv[i];
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++) {
		if (strcmp(commands[k].name, verb) == 0)
			return commands[k].fn(&commands[k], argc - i, argv + i);
	}
	return cli_failf("unknown command \"%s\"", verb);
}

/* `cvisor boot` (hidden): the sandbox process, started by create through
 * /proc/self/exe with the bound control socket, the sync pipe, the spec
 * and, for process.terminal, the connected console socket as inherited
 * fds. It serves the sandbox until the root container ends and
 * then dies the way the root init died. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cmd/hooks.h"
#include "cmd/verbs.h"
#include "kernel/metrics.h"
#include "kernel/network_mode.h"
#include "core/log.h"
#include "kernel/sandbox.h"

#define SPEC_MAX (16u << 20)

static bool parse_fd(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

/* Reads the whole spec memfd from offset 0 (create's write moved the shared
 * offset to the end). The caller frees *data. */
static int read_spec(int fd, char **data, size_t *len, struct cv_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return cv_errf(err, errno, "reading the spec fd %d", fd);
	if (st.st_size <= 0 || (uint64_t)st.st_size > SPEC_MAX)
		return cv_errf(err, 0, "the spec fd %d holds %lld bytes (expected 1..%u)", fd,
			       (long long)st.st_size, SPEC_MAX);
	size_t n = (size_t)st.st_size, off = 0;
	char *buf = malloc(n);
	if (!buf)
		return cv_errf(err, ENOMEM, "reading the spec");
	while (off < n) {
		ssize_t k = pread(fd, buf + off, n - off, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;
			free(buf);
			return cv_errf(err, e, "reading the spec fd %d", fd);
		}
		off += (size_t)k;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* Leaves the root init's wait status next to state.json: once boot is gone,
 * `cvisor wait` reads it from there. */
static void record_exit_status(const char *id, int status)
{
	char path[PATH_MAX], text[32];
	struct cv_error err;
	if (cli_sandbox_file(id, CLI_EXIT_STATUS_FILE, path, sizeof(path), &err) < 0)
		return;
	int n = snprintf(text, sizeof(text), "%d", status);
	if (cli_write_file_atomic(path, text, (size_t)n, 0600, &err) < 0)
		LOG(LL_WARN, "%s", err.msg);
}

/* Dies of the same signal as the root init, so whoever waits for boot sees
 * the same death; exit(128+sig) if the signal cannot kill us. */
static void die_like(int sig)
{
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core); /* the init already dumped, if it was going to */
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig);
}

int cmd_boot(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ctl-fd", required_argument, 0, 'c' },
		{ "sync-fd", required_argument, 0, 's' },
		{ "spec-fd", required_argument, 0, 'p' },
		{ "bundle", required_argument, 0, 'b' },
		{ "console-fd", required_argument, 0, 't' },
		{ "created", required_argument, 0, 'C' },
		{ "root-fd", required_argument, 0, 'r' },
		{ "bind-fds", required_argument, 0, 'B' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	int ctl = -1, sync_fd = -1, spec_fd = -1, console_fd = -1, root_fd = -1, nbinds = 0, c;
	const char *bundle = NULL, *created = "";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (!parse_fd(optarg, &ctl))
				return cli_failf("boot: bad --ctl-fd \"%s\"", optarg);
			break;
		case 's':
			if (!parse_fd(optarg, &sync_fd))
				return cli_failf("boot: bad --sync-fd \"%s\"", optarg);
			break;
		case 'p':
			if (!parse_fd(optarg, &spec_fd))
				return cli_failf("boot: bad --spec-fd \"%s\"", optarg);
			break;
		case 'b':
			bundle = optarg;
			break;
		case 't':
			if (!parse_fd(optarg, &console_fd) || console_fd <= STDERR_FILENO)
				return cli_failf("boot: bad --console-fd \"%s\"", optarg);
			break;
		case 'C':
			created = optarg; /* state.json's, for the hooks' state */
			break;
		case 'r':
			if (!parse_fd(optarg, &root_fd) || root_fd <= STDERR_FILENO)
				return cli_failf("boot: bad --root-fd \"%s\"", optarg);
			break;
		case 'B':
			if (!parse_fd(optarg, &nbinds) || nbinds > 252)
				return cli_failf("boot: bad --bind-fds \"%s\"", optarg);
			break;
		case 'h':
			printf("boot is started by create; it is not meant to be run by hand\n");
			return 0;
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc || ctl < 0 || sync_fd < 0 || spec_fd < 0 || !bundle)
		return cli_failf("boot needs --ctl-fd, --sync-fd, --spec-fd, --bundle and an ID");
	const char *id = argv[optind];

	struct cv_error err = { 0 };
	char log_path[PATH_MAX];
	const char *lp = cli_g.log;
	if (!lp && cli_sandbox_file(id, "log", log_path, sizeof(log_path), &err) == 0)
		lp = log_path;
	if (log_open(lp, strcmp(cli_g.log_format, "json") == 0, cli_g.debug ? LL_DEBUG : LL_INFO,
		     &err) < 0) {
		/* Without a log, report on the sync pipe: create prints it. */
		ssize_t w = write(sync_fd, err.msg, strlen(err.msg));
		(void)w;
		return 1;
	}

	char *spec = NULL;
	size_t spec_len = 0;
	if (read_spec(spec_fd, &spec, &spec_len, &err) < 0) {
		LOG(LL_ERROR, "%s", err.msg);
		ssize_t w = write(sync_fd, err.msg, strlen(err.msg));
		(void)w;
		return 1;
	}
	close(spec_fd);

	struct cli_hook_point hook_point = { .id = id, .bundle = bundle, .created = created };
	struct boot_args a = {
		.id = id,
		.bundle = bundle,
		.ctl_fd = ctl,     /* taken by sandbox_boot */
		.sync_fd = sync_fd, /* taken by sandbox_boot */
		.spec = spec,
		.spec_len = spec_len,
		.stdio = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO },
		.console_fd = console_fd, /* taken by sandbox_boot */
		.root_tree = root_fd,     /* taken by sandbox_boot, with the binds after it */
		.n_bind_fds = root_fd >= 0 ? (size_t)nbinds : 0,
		.hook_point = cli_hooks_boot_point,
		.hook_ctx = &hook_point,
	};
	enum net_mode mode;
	if (net_mode_parse(cli_g.network, &mode, &err) < 0) {
		LOG(LL_ERROR, "%s", err.msg);
		ssize_t w = write(sync_fd, err.msg, strlen(err.msg));
		(void)w;
		return 1;
	}
	a.net_mode = mode;
	/* Started through /proc/self/exe, the process would be called "exe"
	 * in ps and top; name it for what it is. */
	prctl(PR_SET_NAME, "cvisor-boot", 0, 0, 0);
	/* Metrics are on unless CVISOR_METRICS=0 (the benchmark measures their
	 * cost that way); decided before the loop exists (core/loop.h). */
	const char *mv = getenv("CVISOR_METRICS");
	metrics_init(!(mv && strcmp(mv, "0") == 0));
	int status = sandbox_boot(&a, &err);
	free(spec);
	if (status < 0)
		return 1; /* sandbox_boot wrote the error on the sync pipe */
	record_exit_status(id, status);
	LOG(LL_INFO, "sandbox %s ends with wait status 0x%x", id, status);
	log_close();
	if (WIFSIGNALED(status))
		die_like(WTERMSIG(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

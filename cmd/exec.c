/* `cvisor exec`: run a new process in a running container
 * (containerManager.ExecuteAsync, then WaitPID). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"
#include "core/spec.h"
#include "core/util.h"
#include "kernel/caps.h"

#define EXEC_MAX_LIST 1024

/* The process to run, gathered from the spec, --process and the flags.
 * Strings point into json objects owned by `struct exec_ctx` or into argv. */
struct exec_proc {
	const char *argv[EXEC_MAX_LIST];
	size_t argc;
	const char *envv[EXEC_MAX_LIST];
	size_t envc;
	const char *cwd;
	uint32_t uid, gid;
	uint32_t gids[EXEC_MAX_LIST];
	size_t n_gids;
	struct cap_sets caps;
	bool has_caps;
	bool no_new_privs;
	bool terminal;
};

struct exec_flags {
	bool detach, tty, no_new_privs;
	const char *console_socket, *cwd, *user, *process, *pid_file;
	const char *env[EXEC_MAX_LIST];
	size_t n_env;
	uint32_t add_gids[EXEC_MAX_LIST];
	size_t n_add_gids;
	const char *caps[EXEC_MAX_LIST];
	size_t n_caps;
};

static int parse_u32(const char *what, const char *s, uint32_t *out, struct cv_error *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > UINT32_MAX)
		return cv_errf(err, 0, "%s: \"%s\" is not a number", what, s);
	*out = (uint32_t)v;
	return 0;
}

/* A JSON array of strings into out[]; what names it in errors. */
static int json_strv(json_object *a, const char *what, const char **out, size_t *n,
		     struct cv_error *err)
{
	size_t len = json_object_array_length(a);
	if (*n + len > EXEC_MAX_LIST)
		return cv_errf(err, 0, "%s: more than %d entries", what, EXEC_MAX_LIST);
	for (size_t i = 0; i < len; i++) {
		json_object *s = json_object_array_get_idx(a, i);
		if (!json_object_is_type(s, json_type_string))
			return cv_errf(err, 0, "%s: expected array of strings", what);
		out[(*n)++] = json_object_get_string(s);
	}
	return 0;
}

/* The five capability sets of an OCI process object, as bitmasks. */
static int json_caps(json_object *c, struct cap_sets *out, struct cv_error *err)
{
	static const char *const keys[] = { "bounding", "effective", "inheritable", "permitted",
					    "ambient" };
	/* Names live in the json object; the arrays only for this call. */
	const char *names[5][EXEC_MAX_LIST];
	size_t counts[5] = { 0 };
	for (int k = 0; k < 5; k++) {
		json_object *a = cli_json_get(c, keys[k], json_type_array);
		char what[64];
		snprintf(what, sizeof(what), "process.capabilities.%s", keys[k]);
		if (a && json_strv(a, what, names[k], &counts[k], err) < 0)
			return -1;
	}
	struct oci_capabilities oc = {
		.bounding = (char **)names[0],
		.effective = (char **)names[1],
		.inheritable = (char **)names[2],
		.permitted = (char **)names[3],
		.ambient = (char **)names[4],
		.n_bounding = counts[0],
		.n_effective = counts[1],
		.n_inheritable = counts[2],
		.n_permitted = counts[3],
		.n_ambient = counts[4],
	};
	return caps_from_spec(&oc, out, err);
}

/* Fills p from an OCI process object (the spec's or --process's). */
static int from_process_json(json_object *proc, struct exec_proc *p, struct cv_error *err)
{
	json_object *a;
	if ((a = cli_json_get(proc, "args", json_type_array)) &&
	    json_strv(a, "process.args", p->argv, &p->argc, err) < 0)
		return -1;
	if ((a = cli_json_get(proc, "env", json_type_array)) &&
	    json_strv(a, "process.env", p->envv, &p->envc, err) < 0)
		return -1;
	p->cwd = cli_json_str(proc, "cwd");
	json_object *user = cli_json_get(proc, "user", json_type_object);
	p->uid = (uint32_t)cli_json_int(user, "uid", 0);
	p->gid = (uint32_t)cli_json_int(user, "gid", 0);
	if ((a = cli_json_get(user, "additionalGids", json_type_array))) {
		size_t n = json_object_array_length(a);
		if (n > EXEC_MAX_LIST)
			return cv_errf(err, 0, "process.user.additionalGids: more than %d entries",
				       EXEC_MAX_LIST);
		for (size_t i = 0; i < n; i++) {
			json_object *g = json_object_array_get_idx(a, i);
			if (!json_object_is_type(g, json_type_int) || json_object_get_int64(g) < 0 ||
			    json_object_get_int64(g) > UINT32_MAX)
				return cv_errf(err, 0, "process.user.additionalGids: expected array of gids");
			p->gids[p->n_gids++] = (uint32_t)json_object_get_int64(g);
		}
	}
	json_object *caps = cli_json_get(proc, "capabilities", json_type_object);
	if (caps) {
		if (json_caps(caps, &p->caps, err) < 0)
			return -1;
		p->has_caps = true;
	}
	p->no_new_privs = cli_json_bool(proc, "noNewPrivileges", false);
	p->terminal = cli_json_bool(proc, "terminal", false);
	return 0;
}

/* Builds the process: --process as a whole, or the spec's process with the
 * command line and flags applied over it (runc's semantics). */
static int build_proc(const struct exec_flags *f, json_object *spec, json_object *pfile, int argc,
		      char **argv, struct exec_proc *p, struct cv_error *err)
{
	memset(p, 0, sizeof(*p));
	if (pfile) {
		if (from_process_json(pfile, p, err) < 0)
			return cv_error_wrap(err, "%s", f->process);
		if (p->argc == 0)
			return cv_errf(err, 0, "process.args must not be empty");
		if (!p->cwd || p->cwd[0] != '/')
			return cv_errf(err, 0, "process.cwd must be an absolute path");
	} else {
		json_object *sp = cli_json_get(spec, "process", json_type_object);
		if (sp && from_process_json(sp, p, err) < 0)
			return cv_error_wrap(err, "the container's config.json");
		/* The command line replaces the spec's args and terminal. */
		p->argc = 0;
		p->terminal = false;
		if (argc == 0)
			return cv_errf(err, 0, "exec needs a command to run (or --process)");
		if (argc > EXEC_MAX_LIST)
			return cv_errf(err, 0, "exec: more than %d arguments", EXEC_MAX_LIST);
		for (int i = 0; i < argc; i++)
			p->argv[p->argc++] = argv[i];
	}
	if (f->cwd) {
		if (f->cwd[0] != '/')
			return cv_errf(err, 0, "--cwd must be an absolute path");
		p->cwd = f->cwd;
	}
	if (!p->cwd || !*p->cwd)
		p->cwd = "/";
	if (p->envc + f->n_env > EXEC_MAX_LIST)
		return cv_errf(err, 0, "exec: more than %d environment entries", EXEC_MAX_LIST);
	for (size_t i = 0; i < f->n_env; i++)
		p->envv[p->envc++] = f->env[i];
	if (f->user) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%s", f->user);
		char *colon = strchr(buf, ':');
		if (colon)
			*colon = '\0';
		if (parse_u32("--user", buf, &p->uid, err) < 0)
			return cv_errf(err, 0, "--user must be UID[:GID] with numeric ids, got \"%s\"",
				       f->user);
		p->gid = 0;
		if (colon && parse_u32("--user", colon + 1, &p->gid, err) < 0)
			return cv_errf(err, 0, "--user must be UID[:GID] with numeric ids, got \"%s\"",
				       f->user);
	}
	if (p->n_gids + f->n_add_gids > EXEC_MAX_LIST)
		return cv_errf(err, 0, "exec: more than %d additional gids", EXEC_MAX_LIST);
	for (size_t i = 0; i < f->n_add_gids; i++)
		p->gids[p->n_gids++] = f->add_gids[i];
	for (size_t i = 0; i < f->n_caps; i++) {
		char name[64];
		const char *c = f->caps[i];
		snprintf(name, sizeof(name), "%s%s", strncasecmp(c, "CAP_", 4) == 0 ? "" : "CAP_", c);
		for (char *q = name; *q; q++)
			*q = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
		int cap;
		if (caps_from_name(name, &cap) < 0)
			return cv_errf(err, 0, "--cap: unknown capability \"%s\"", c);
		uint64_t bit = 1ull << cap;
		p->caps.bounding |= bit;
		p->caps.effective |= bit;
		p->caps.permitted |= bit;
		p->has_caps = true;
	}
	/* Always sent, empty when neither config.json's process nor --process
	 * names any: the process gets exactly these sets (runc and crun), and
	 * the sandbox gives a request without Capabilities none either. */
	p->has_caps = true;
	if (f->no_new_privs)
		p->no_new_privs = true;
	if (f->tty)
		p->terminal = true;
	return 0;
}

static void pack_strv(msgpack_packer *pk, const char *const *v, size_t n)
{
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		mpk_pack_str(pk, v[i]);
}

static void pack_exec_args(msgpack_packer *pk, const struct exec_proc *p, const char *id)
{
	msgpack_pack_map(pk, 14);
	mpk_pack_str(pk, "filename");
	mpk_pack_str(pk, "");
	mpk_pack_str(pk, "argv");
	pack_strv(pk, p->argv, p->argc);
	mpk_pack_str(pk, "envv");
	pack_strv(pk, p->envv, p->envc);
	mpk_pack_str(pk, "wd");
	mpk_pack_str(pk, p->cwd);
	mpk_pack_str(pk, "KUID");
	msgpack_pack_uint32(pk, p->uid);
	mpk_pack_str(pk, "KGID");
	msgpack_pack_uint32(pk, p->gid);
	mpk_pack_str(pk, "ExtraKGIDs");
	msgpack_pack_array(pk, p->n_gids);
	for (size_t i = 0; i < p->n_gids; i++)
		msgpack_pack_uint32(pk, p->gids[i]);
	mpk_pack_str(pk, "Capabilities");
	if (!p->has_caps) {
		msgpack_pack_nil(pk);
	} else {
		msgpack_pack_map(pk, 5);
		mpk_pack_str(pk, "PermittedCaps");
		msgpack_pack_uint64(pk, p->caps.permitted);
		mpk_pack_str(pk, "InheritableCaps");
		msgpack_pack_uint64(pk, p->caps.inheritable);
		mpk_pack_str(pk, "EffectiveCaps");
		msgpack_pack_uint64(pk, p->caps.effective);
		mpk_pack_str(pk, "BoundingCaps");
		msgpack_pack_uint64(pk, p->caps.bounding);
		mpk_pack_str(pk, "AmbientCaps");
		msgpack_pack_uint64(pk, p->caps.ambient);
	}
	mpk_pack_str(pk, "NoNewPrivileges");
	if (p->no_new_privs)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	mpk_pack_str(pk, "StdioIsPty");
	if (p->terminal)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	mpk_pack_str(pk, "GuestFDs");
	msgpack_pack_array(pk, 3);
	for (int i = 0; i < 3; i++)
		msgpack_pack_int(pk, i);
	mpk_pack_str(pk, "ContainerID");
	mpk_pack_str(pk, id);
	mpk_pack_str(pk, "Files");
	msgpack_pack_int(pk, 3);
	mpk_pack_str(pk, "SupportTTYs");
	msgpack_pack_false(pk);
}

/* ExecuteAsync with stdio fds[0..2] → the new process's PID. */
static int execute_async(struct rpc_client *c, const struct exec_proc *p, const char *id,
			 const int fds[3], int32_t *pid, struct cv_error *err)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_exec_args(&pk, p, id);
	const msgpack_object *res;
	int r = rpc_client_call(c, "containerManager.ExecuteAsync", &sb, fds, 3, &res, NULL, NULL, 0,
				err);
	msgpack_sbuffer_destroy(&sb);
	int64_t v = 0;
	if (r == 0)
		r = cli_result_int(res, "containerManager.ExecuteAsync", &v, err);
	if (r == 0 && (v <= 0 || v > INT32_MAX))
		r = cv_errf(err, 0, "containerManager.ExecuteAsync returned an invalid PID %lld",
			    (long long)v);
	*pid = (int32_t)v;
	return r;
}

static int wait_pid(struct rpc_client *c, const char *id, int32_t pid, int *status,
		    struct cv_error *err)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mpk_pack_str(&pk, "PID");
	msgpack_pack_int32(&pk, pid);
	mpk_pack_str(&pk, "CID");
	mpk_pack_str(&pk, id);
	const msgpack_object *res;
	int r = rpc_client_call(c, "containerManager.WaitPID", &sb, NULL, 0, &res, NULL, NULL, 0, err);
	msgpack_sbuffer_destroy(&sb);
	int64_t v = 0;
	if (r == 0)
		r = cli_result_int(res, "containerManager.WaitPID", &v, err);
	*status = (int)v;
	return r;
}

/* Best effort: a forwarded signal that cannot be delivered (the process
 * just exited) is not worth failing the exec for. */
static void forward_signal(const char *id, int32_t pid, int signo, bool tty)
{
	struct cv_error err;
	struct rpc_client *c = cli_connect(id, &err);
	if (!c)
		return;
	cli_signal(c, id, signo, pid, tty ? SIGNAL_FOREGROUND : SIGNAL_PROCESS, &err);
	rpc_client_close(c);
}

/* A helper's report on a pipe: 'S' + int wait status, 'O' (started), or
 * 'E' + message. */
static void report(int fd, char tag, const void *body, size_t len)
{
	char buf[1 + CV_ERROR_MAX];
	buf[0] = tag;
	if (len > CV_ERROR_MAX)
		len = CV_ERROR_MAX;
	memcpy(buf + 1, body, len);
	cli_write_all(fd, buf, 1 + len);
}

static int read_report(int fd, char *tag, char *body, size_t cap, size_t *len)
{
	size_t n = 0;
	char buf[1 + CV_ERROR_MAX];
	for (;;) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == sizeof(buf))
			break;
	}
	if (n == 0)
		return -1;
	*tag = buf[0];
	*len = n - 1 < cap - 1 ? n - 1 : cap - 1;
	memcpy(body, buf + 1, *len);
	body[*len] = '\0';
	return 0;
}

static const int fwd_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/* Copies what is readable from `from` to `to`; false on EOF/error of
 * `from`. */
/* Attached exec: a forked helper does the blocking WaitPID on connection c
 * while this process forwards signals (and proxies the terminal when
 * master >= 0). Returns the exit code for the CLI. */
static int attach(struct rpc_client *c, const char *id, int32_t pid, int master)
{
	struct cv_error err = { 0 };
	sigset_t set, old;
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(fwd_signals); i++)
		sigaddset(&set, fwd_signals[i]);
	if (master >= 0)
		sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, &old);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	int pfd[2];
	if (sfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		cv_errf(&err, errno, "exec: setting up the wait");
		return cli_fail(&err);
	}
	pid_t helper = fork();
	if (helper < 0) {
		cv_errf(&err, errno, "exec: forking the waiter");
		return cli_fail(&err);
	}
	if (helper == 0) {
		/* The helper owns the connection from here on. */
		close(pfd[0]);
		int status = 0;
		if (wait_pid(c, id, pid, &status, &err) < 0)
			report(pfd[1], 'E', err.msg, strlen(err.msg));
		else
			report(pfd[1], 'S', &status, sizeof(status));
		_exit(0);
	}
	close(pfd[1]);

	struct termios saved;
	bool raw = false;
	if (master >= 0 && isatty(STDIN_FILENO)) {
		raw = tty_make_raw(&saved);
		tty_copy_winsize(master);
	}
	bool stdin_open = master >= 0, master_open = master >= 0;
	for (;;) {
		struct pollfd p[4] = {
			{ .fd = pfd[0], .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = master_open ? master : -1, .events = POLLIN },
		};
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[3].revents)
			master_open = tty_copy_some(master, STDOUT_FILENO) > 0;
		if (p[2].revents && tty_copy_some(STDIN_FILENO, master) <= 0)
			stdin_open = false;
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if ((int)si.ssi_signo == SIGWINCH) {
					tty_copy_winsize(master);
				} else {
					forward_signal(id, pid, (int)si.ssi_signo, master >= 0);
				}
			}
		}
		if (p[0].revents)
			break;
	}
	/* The process is gone: flush what it left in the pty. */
	if (master >= 0) {
		fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		char buf[16384];
		ssize_t n;
		while ((n = read(master, buf, sizeof(buf))) > 0)
			if (cli_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	char tag = 0, body[CV_ERROR_MAX];
	size_t len = 0;
	int rr = read_report(pfd[0], &tag, body, sizeof(body), &len);
	waitpid(helper, NULL, 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rr < 0)
		return cli_failf("exec: the waiter exited without reporting the process's status");
	if (tag == 'E')
		return cli_failf("%s", body);
	int status = 0;
	memcpy(&status, body, sizeof(status) <= len ? sizeof(status) : len);
	return cli_exit_code(status);
}

/* --detach with --pid-file: a setsid'd waiter does ExecuteAsync and WaitPID
 * and exits with the process's status (runsc's model; conmon reaps it). */
static int detach_with_waiter(struct rpc_client *c, const struct exec_proc *p, const char *id,
			      const int fds[3], const char *pid_file)
{
	struct cv_error err = { 0 };
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		cv_errf(&err, errno, "exec: creating a pipe");
		return cli_fail(&err);
	}
	pid_t w = fork();
	if (w < 0) {
		cv_errf(&err, errno, "exec: forking the waiter");
		return cli_fail(&err);
	}
	if (w == 0) {
		close(pfd[0]);
		setsid();
		int32_t pid;
		if (execute_async(c, p, id, fds, &pid, &err) < 0 ||
		    cli_write_pid_file(pid_file, getpid(), &err) < 0) {
			report(pfd[1], 'E', err.msg, strlen(err.msg));
			_exit(1);
		}
		report(pfd[1], 'O', "", 0);
		close(pfd[1]);
		/* Let go of the caller's stdio: whoever reads it must see EOF
		 * when the process closes its copies. */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (int i = 0; null >= 0 && i < 3; i++)
			dup2(null, i);
		for (int i = 0; i < 3; i++)
			if (fds[i] > 2)
				close(fds[i]);
		int status = 0;
		if (wait_pid(c, id, pid, &status, &err) < 0)
			_exit(255);
		_exit(cli_exit_code(status));
	}
	close(pfd[1]);
	char tag = 0, body[CV_ERROR_MAX];
	size_t len = 0;
	if (read_report(pfd[0], &tag, body, sizeof(body), &len) < 0)
		return cli_failf("exec: the waiter exited before starting the process");
	if (tag == 'E')
		return cli_failf("%s", body);
	return 0;
}

enum {
	OPT_CONSOLE = 256,
	OPT_CWD,
	OPT_GIDS,
	OPT_CAP,
	OPT_PROCESS,
	OPT_PIDFILE,
	OPT_NNP,
	OPT_IGNORED_ARG,
	OPT_IGNORED,
};

int cmd_exec(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "detach", no_argument, 0, 'd' },
		{ "tty", no_argument, 0, 't' },
		{ "console-socket", required_argument, 0, OPT_CONSOLE },
		{ "cwd", required_argument, 0, OPT_CWD },
		{ "env", required_argument, 0, 'e' },
		{ "user", required_argument, 0, 'u' },
		{ "additional-gids", required_argument, 0, OPT_GIDS },
		{ "cap", required_argument, 0, OPT_CAP },
		{ "process", required_argument, 0, OPT_PROCESS },
		{ "pid-file", required_argument, 0, OPT_PIDFILE },
		{ "no-new-privs", no_argument, 0, OPT_NNP },
		/* runc flags for features cvisor does not have (AppArmor,
		 * SELinux labels, cgroup sub-paths); accepted, no effect. */
		{ "apparmor", required_argument, 0, OPT_IGNORED_ARG },
		{ "process-label", required_argument, 0, OPT_IGNORED_ARG },
		{ "cgroup", required_argument, 0, OPT_IGNORED_ARG },
		{ "preserve-fds", required_argument, 0, 'P' },
		{ "ignore-paused", no_argument, 0, OPT_IGNORED },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	static struct exec_flags f; /* large; static keeps it off the stack */
	memset(&f, 0, sizeof(f));
	struct cv_error err = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:dte:u:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			f.detach = true;
			break;
		case 't':
			f.tty = true;
			break;
		case OPT_CONSOLE:
			f.console_socket = optarg;
			break;
		case OPT_CWD:
			f.cwd = optarg;
			break;
		case 'e':
			if (f.n_env >= EXEC_MAX_LIST)
				return cli_failf("exec: too many --env flags");
			if (!strchr(optarg, '='))
				return cli_failf("--env \"%s\": expected KEY=VALUE", optarg);
			f.env[f.n_env++] = optarg;
			break;
		case 'u':
			f.user = optarg;
			break;
		case OPT_GIDS: {
			/* Repeatable, and each may hold a comma-separated list. */
			char *list = optarg, *save = NULL;
			for (char *g = strtok_r(list, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
				if (f.n_add_gids >= EXEC_MAX_LIST)
					return cli_failf("exec: too many --additional-gids");
				if (parse_u32("--additional-gids", g, &f.add_gids[f.n_add_gids++], &err) < 0)
					return cli_fail(&err);
			}
			break;
		}
		case OPT_CAP:
			if (f.n_caps >= EXEC_MAX_LIST)
				return cli_failf("exec: too many --cap flags");
			f.caps[f.n_caps++] = optarg;
			break;
		case OPT_PROCESS:
			f.process = optarg;
			break;
		case OPT_PIDFILE:
			f.pid_file = optarg;
			break;
		case OPT_NNP:
			f.no_new_privs = true;
			break;
		case 'P':
			if (strcmp(optarg, "0") != 0)
				return cli_failf("--preserve-fds is not supported by cvisor");
			break;
		case OPT_IGNORED_ARG:
		case OPT_IGNORED:
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind >= argc)
		return cli_failf("exec needs a container ID (see cvisor exec --help)");
	const char *id = argv[optind];
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);

	struct cli_state st;
	json_object *spec = NULL, *pfile = NULL;
	static struct exec_proc p;
	int code = 1, master = -1, slave = -1;
	struct rpc_client *cl = NULL;
	if (cli_state_load(id, &st, &err) < 0)
		return cli_fail(&err);
	char cfg[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "%s/config.json", st.bundle);
	if ((!f.process && cli_json_read(cfg, &spec, &err) < 0) ||
	    (f.process && cli_json_read(f.process, &pfile, &err) < 0))
		goto fail;
	if (f.process && (!pfile || !json_object_is_type(pfile, json_type_object))) {
		cv_errf(&err, 0, "%s: expected an OCI process object", f.process);
		goto fail;
	}
	if (build_proc(&f, spec, pfile, argc - optind - 1, argv + optind + 1, &p, &err) < 0)
		goto fail;
	if (cli_paused(&st)) {
		cv_errf(&err, 0, "cannot exec in container \"%s\": it is paused", id);
		goto fail;
	}

	cl = cli_connect(id, &err);
	if (!cl) {
		if (!cli_boot_alive(st.boot_pid, id))
			cv_errf(&err, 0, "cannot exec in container \"%s\": status is stopped", id);
		goto fail;
	}
	int64_t state = 0;
	if (cli_runtime_state(cl, id, &state, &err) < 0)
		goto fail;
	if (state != RUNTIME_STATE_RUNNING) {
		cv_errf(&err, 0, "cannot exec in container \"%s\": status is %s", id,
			cli_status_name(state, false));
		goto fail;
	}

	int fds[3] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO };
	bool proxy = false;
	if (p.terminal) {
		if (!f.console_socket && (f.detach || !isatty(STDIN_FILENO))) {
			cv_errf(&err, 0, "exec --tty needs --console-socket when %s",
				f.detach ? "detached" : "stdin is not a terminal");
			goto fail;
		}
		char name[128];
		if (tty_open_pair(&master, &slave, name, sizeof(name), &err) < 0)
			goto fail;
		if (f.console_socket) {
			if (tty_send_console(f.console_socket, master, name, &err) < 0)
				goto fail;
			close(master);
			master = -1;
		} else {
			proxy = true;
		}
		fds[0] = fds[1] = fds[2] = slave;
	}

	if (f.detach && f.pid_file) {
		code = detach_with_waiter(cl, &p, id, fds, f.pid_file);
		goto out;
	}
	int32_t pid;
	if (execute_async(cl, &p, id, fds, &pid, &err) < 0)
		goto fail;
	if (slave >= 0) {
		/* The process has its own copies; ours would keep the pty open. */
		close(slave);
		slave = -1;
	}
	if (f.detach) {
		code = 0;
		goto out;
	}
	code = attach(cl, id, pid, proxy ? master : -1);
	goto out;
fail:
	code = cli_fail(&err);
out:
	if (cl)
		rpc_client_close(cl);
	if (master >= 0)
		close(master);
	if (slave >= 0)
		close(slave);
	json_object_put(spec);
	json_object_put(pfile);
	cli_state_free(&st);
	return code;
}

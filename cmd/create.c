/* `cvisor create`: bind the control socket, start `cvisor boot`, wait for
 * its sync byte, record state.json. Also used by `run`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mount.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/hooks.h"
#include "cmd/verbs.h"
#include "core/util.h"
#include "kernel/cgroup.h"
#include "kernel/cgroup_systemd.h"

/* mkdir -p with the given mode for the components we create. */
static int mkdir_p(const char *path, mode_t mode, struct cv_error *err)
{
	char buf[PATH_MAX];
	if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf))
		return cv_errf(err, ENAMETOOLONG, "creating %s", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return cv_errf(err, errno, "creating %s", buf);
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* The bound control socket in dirfd (mode 0600). Binds through
 * /proc/self/fd/<dirfd> so long --root paths still fit in sun_path. */
static int bind_control_socket(int dirfd, const char *dir, struct cv_error *err)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cv_errf(err, errno, "creating the control socket");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/control.sock", dirfd);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "binding %s/control.sock", dir);
	}
	if (fchmodat(dirfd, "control.sock", 0600, 0) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "chmod %s/control.sock", dir);
	}
	return fd; /* the caller owns it */
}

/* Execs this binary from a read-only, detached bind mount of itself. Boot
 * and every process it forks (container inits, exec helpers) then map a
 * file whose /proc/<pid>/exe can be opened but never written: a container
 * process that gets hold of it (for instance by making an exec run a
 * `#!/proc/self/exe` script) cannot overwrite the host's binary, the
 * CVE-2019-5736 pattern. Costs one open_tree and one mount_setattr, no copy.
 * Reports failures on fd report (boot's sync pipe). Never returns. */
__attribute__((noreturn)) static void exec_self_readonly(char *const *argv, int report)
{
	const char *what = "cloning a mount of /proc/self/exe";
	int mfd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe",
			       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (mfd >= 0) {
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
						       MOUNT_ATTR_NODEV };
		what = "making the mount of the cvisor binary read-only";
		if (syscall(SYS_mount_setattr, mfd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0) {
			what = "executing the read-only cvisor binary";
			syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
		}
	}
	char msg[256];
	int len = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	if (len > 0 && write(report, msg, (size_t)len) < 0)
		_exit(127);
	_exit(127);
}

/* In the forked child: put the fds where boot expects them and exec it.
 * console is -1 or the connected console socket (becomes fd 6). Touches
 * only the stack; never returns. */
static void exec_boot(int ctl, int sync_w, int spec, int console, const int *trees,
		      int ntrees, const char *bundle, const char *created, const char *id)
{
	if (setsid() < 0)
		_exit(127);
	/* Move everything above 9 first so the dup2s below cannot clobber a
	 * source that happens to sit on 3 to 6. */
	int a = fcntl(ctl, F_DUPFD, 10), b = fcntl(sync_w, F_DUPFD, 10),
	    c = fcntl(spec, F_DUPFD, 10);
	int t = console >= 0 ? fcntl(console, F_DUPFD, 10) : -1;
	if (a < 0 || b < 0 || c < 0 || (console >= 0 && t < 0))
		_exit(127);
	if (dup2(a, 3) < 0 || dup2(b, 4) < 0 || dup2(c, 5) < 0 || (t >= 0 && dup2(t, 6) < 0))
		_exit(127);
	unsigned first = t >= 0 ? 7u : 6u;
	/* The root and its bind mounts as detached trees, right after: moved
	 * above every target first, as above. */
	int high[1 + 253];
	for (int i = 0; i < ntrees; i++)
		if ((high[i] = fcntl(trees[i], F_DUPFD, (int)first + ntrees + 10)) < 0)
			_exit(127);
	for (int i = 0; i < ntrees; i++)
		if (dup2(high[i], (int)first + i) < 0)
			_exit(127);
	unsigned tree0 = first;
	first += (unsigned)ntrees;
	if (syscall(SYS_close_range, first, ~0u, 0u) < 0)
		for (int fd = (int)first; fd < 1024; fd++)
			close(fd);
	/* The spec's root.path may be relative to the bundle. */
	if (chdir(bundle) < 0)
		_exit(127);
	const char *argv[32];
	int n = 0;
	argv[n++] = "cvisor";
	argv[n++] = "--root";
	argv[n++] = cli_g.root;
	if (cli_g.log) {
		argv[n++] = "--log";
		argv[n++] = cli_g.log;
	}
	argv[n++] = "--log-format";
	argv[n++] = cli_g.log_format;
	if (cli_g.debug)
		argv[n++] = "--debug";
	if (cli_g.trace_syscalls) {
		argv[n++] = "--trace-syscalls";
		argv[n++] = cli_g.trace_syscalls;
	}
	argv[n++] = "--network";
	argv[n++] = cli_g.network;
	argv[n++] = "boot";
	argv[n++] = "--ctl-fd";
	argv[n++] = "3";
	argv[n++] = "--sync-fd";
	argv[n++] = "4";
	argv[n++] = "--spec-fd";
	argv[n++] = "5";
	argv[n++] = "--bundle";
	argv[n++] = bundle;
	argv[n++] = "--created";
	argv[n++] = created;
	if (t >= 0) {
		argv[n++] = "--console-fd";
		argv[n++] = "6";
	}
	char tree_fd[16], binds[16];
	if (ntrees > 0) {
		snprintf(tree_fd, sizeof(tree_fd), "%u", tree0);
		snprintf(binds, sizeof(binds), "%d", ntrees - 1);
		argv[n++] = "--root-fd";
		argv[n++] = tree_fd;
		argv[n++] = "--bind-fds";
		argv[n++] = binds;
	}
	argv[n++] = id;
	argv[n] = NULL;
	exec_self_readonly((char *const *)argv, 4);
}

/* Reads boot's verdict: a 0 byte and the init's host pid = created, text =
 * its error, EOF = it died. The init holds a copy of the pipe until its
 * execve, so success cannot wait for EOF. */
static int read_sync(int fd, const char *id, pid_t *init_pid, struct cv_error *err)
{
	char buf[CV_ERROR_MAX];
	size_t n = 0;
	for (;;) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return cv_errf(err, errno, "reading the sandbox's sync pipe");
		if (k == 0)
			break;
		n += (size_t)k;
		if (buf[0] == '\0' && n >= 1 + sizeof(pid_t)) {
			memcpy(init_pid, buf + 1, sizeof(pid_t));
			if (*init_pid <= 0)
				return cv_errf(err, 0, "the sandbox reported an invalid init pid %d",
					       (int)*init_pid);
			return 0;
		}
		if (n == sizeof(buf) - 1)
			break;
	}
	if (n > 0 && buf[0] == '\0')
		return cv_errf(err, 0, "the sandbox's sync message was cut short (%zu bytes)", n);
	if (n == 0) {
		char log[PATH_MAX];
		if (cli_g.log)
			snprintf(log, sizeof(log), "%s", cli_g.log);
		else
			snprintf(log, sizeof(log), "%s/%s/log", cli_g.root, id);
		return cv_errf(err, 0, "sandbox process exited during boot; see %s", log);
	}
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return cv_errf(err, 0, "%s", buf);
}

static int write_state(const char *id, const char *bundle, const char *rootfs, pid_t pid,
		       pid_t boot_pid, const char *created, const char *cgroup_path,
		       const char *systemd_unit, json_object *annotations, json_object *hooks,
		       struct cv_error *err)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "id", json_object_new_string(id));
	json_object_object_add(j, "bundle", json_object_new_string(bundle));
	json_object_object_add(j, "rootfs", json_object_new_string(rootfs));
	json_object_object_add(j, "pid", json_object_new_int64(pid));
	json_object_object_add(j, "bootPid", json_object_new_int64(boot_pid));
	json_object_object_add(j, "created", json_object_new_string(created));
	json_object_object_add(j, "cgroupPath", json_object_new_string(cgroup_path));
	/* --systemd-cgroup: the scope that update and delete talk to systemd
	 * about. */
	if (systemd_unit[0])
		json_object_object_add(j, "systemdUnit", json_object_new_string(systemd_unit));
	json_object_object_add(j, "paused", json_object_new_boolean(0));
	if (annotations)
		json_object_object_add(j, "annotations", json_object_get(annotations));
	/* config.json's hooks: poststart (start) and poststop (delete) run
	 * from this copy, whatever the bundle holds by then (runc keeps its
	 * config in its state too). */
	if (hooks)
		json_object_object_add(j, "hooks", json_object_get(hooks));
	int r = cli_state_save(id, j, err);
	json_object_put(j);
	return r;
}

int create_sandbox(const char *id, const struct create_opts *o, pid_t *boot_pid,
		   pid_t *init_pid, struct cv_error *err)
{
	if (cli_validate_id(id, err) < 0)
		return -1;
	char dir[PATH_MAX];
	if (cli_sandbox_dir(id, dir, sizeof(dir), err) < 0)
		return -1;
	struct stat sb;
	if (lstat(dir, &sb) == 0)
		return cv_errf(err, 0, "container \"%s\" already exists", id);

	char bundle[PATH_MAX];
	const char *b = o->bundle && *o->bundle ? o->bundle : ".";
	if (!realpath(b, bundle))
		return cv_errf(err, errno, "bundle %s", b);
	char cfg_path[PATH_MAX + 16];
	snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", bundle);

	int r = -1, memfd = -1, dirfd = -1, ctl = -1, pipefd[2] = { -1, -1 };
	int console = -1, peer = -1;
	bool made_dir = false;
	pid_t pid = -1, init = -1;
	char cg_path[512] = "";
	char sd_unit[512] = "", sd_slice[256] = "";
	json_object *spec = NULL;
	struct cli_hooks hooks = { 0 };
	struct gofer_bind *gbinds = NULL;
	char *gpaths = NULL;
	size_t ngb = 0;
	int trees[1 + 253], ntrees = 0;
	/* runc's "created": before the container's processes exist; boot's
	 * hooks see it too. */
	char created[64];
	cli_now_rfc3339nano(created, sizeof(created));
	msgpack_sbuffer sbuf;
	msgpack_sbuffer_init(&sbuf);

	if (cli_json_read(cfg_path, &spec, err) < 0)
		goto out;
	if (!spec || !json_object_is_type(spec, json_type_object)) {
		cv_errf(err, 0, "%s: expected a JSON object", cfg_path);
		goto out;
	}
	/* The init joins a new session keyring named after the container, as
	 * runc's does; "" keeps the caller's (--no-new-keyring). Always set
	 * here, so a config.json cannot choose (core/spec.h). */
	json_object_object_add(spec, "cvisor.sessionKeyring",
			       json_object_new_string(o->no_new_keyring ? "" : id));
	/* The container's cgroup is resolved here, once: a relative path
	 * depends on this process's cgroup and the systemd form on
	 * --systemd-cgroup. Boot, which stays in the cgroup it was started in
	 * (as a runc shim or conmon does), makes it at that path; set
	 * whatever config.json holds, so a bundle cannot choose. */
	json_object *linux_ = cli_json_get(spec, "linux", json_type_object);
	const char *cgp = cli_json_str(linux_, "cgroupsPath");
	if (cgroup_resolve_path(cgp, id, cli_g.systemd_cgroup, cg_path, sizeof(cg_path), err) < 0)
		goto out;
	/* --systemd-cgroup: boot asks systemd for the scope once the init
	 * exists; whether systemd answers is checked here, before anything
	 * is made. */
	if (cli_g.systemd_cgroup &&
	    (cgroup_systemd_names(cgp, id, sd_slice, sizeof(sd_slice), sd_unit, sizeof(sd_unit),
				  err) < 0 ||
	     cgroup_systemd_check(err) < 0)) {
		sd_unit[0] = '\0';
		goto out;
	}
	json_object_object_add(spec, "cvisor.cgroupPath", json_object_new_string(cg_path));
	json_object_object_add(spec, "cvisor.systemdUnit", json_object_new_string(sd_unit));
	json_object_object_add(spec, "cvisor.systemdSlice", json_object_new_string(sd_slice));
	/* A pod's container: inside its sandbox, not a sandbox of its own. */
	const char *pod = sub_sandbox_of_spec(spec);
	if (pod && strcmp(pod, id) != 0) {
		/* The pod's sandbox makes its containers' cgroups (h-pods);
		 * it has no systemd driver yet, so say so rather than act as
		 * if the scope existed. */
		if (sd_unit[0])
			fprintf(stderr,
				"cvisor: warning: --systemd-cgroup: pod container \"%s\" gets no systemd scope (%s); its cgroup %s is made through cgroupfs\n",
				id, sd_unit, cg_path);
		r = sub_create(id, pod, spec, bundle, cg_path, o->pid_file, o->console_socket,
			       created, boot_pid, init_pid, err);
		goto out;
	}
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	if (json_mp_pack(spec, &pk, err) < 0) {
		cv_error_wrap(err, "converting %s", cfg_path);
		goto out;
	}
	json_object *process = cli_json_get(spec, "process", json_type_object);
	json_object *root = cli_json_get(spec, "root", json_type_object);
	json_object *hooks_json = json_object_object_get(spec, "hooks");
	/* Checked here, so a bad hook is refused before anything exists. */
	if (hooks_json && cli_hooks_load(hooks_json, &hooks, err) < 0)
		goto out;
	bool terminal = cli_json_bool(process, "terminal", false);
	if (terminal && !o->console_socket && !o->console_peer) {
		cv_errf(err, 0, "--console-socket is required when process.terminal is true");
		goto out;
	}
	char rootfs[PATH_MAX * 2];
	const char *rp = cli_json_str(root, "path");
	if (!rp)
		rp = "rootfs";
	if (rp[0] == '/')
		snprintf(rootfs, sizeof(rootfs), "%s", rp);
	else
		snprintf(rootfs, sizeof(rootfs), "%s/%s", bundle, rp);

	memfd = memfd_create("cvisor-spec", MFD_CLOEXEC);
	if (memfd < 0 || cli_write_all(memfd, sbuf.data, sbuf.size) < 0) {
		cv_errf(err, errno, "writing the spec to a memfd");
		goto out;
	}

	if (mkdir_p(cli_g.root, 0711, err) < 0)
		goto out;
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			cv_errf(err, 0, "container \"%s\" already exists", id);
		else
			cv_errf(err, errno, "creating %s", dir);
		goto out;
	}
	made_dir = true;
	dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		cv_errf(err, errno, "opening %s", dir);
		goto out;
	}
	ctl = bind_control_socket(dirfd, dir, err);
	if (ctl < 0)
		goto out;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		cv_errf(err, errno, "creating the sync pipe");
		goto out;
	}
	/* The pty is made by the init in the container's devpts (runc's
	 * model); it sends the master on this socket, connected here because
	 * the path is the host's. `run` keeps the other end of a socketpair. */
	if (terminal && o->console_socket) {
		console = tty_console_connect(o->console_socket, err);
		if (console < 0)
			goto out;
	} else if (terminal) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			cv_errf(err, errno, "creating the console socket pair");
			goto out;
		}
		peer = sv[0];
		console = sv[1];
	}

	/* The container's root and bind mounts, cloned here in the caller's
	 * mount namespace (what a gofer does for a pod container): boot
	 * resolves no host path of the container. */
	if (gofer_binds_of_spec(spec, bundle, &gbinds, &gpaths, &ngb, err) < 0)
		goto out;
	ntrees = gofer_clone(rootfs, false, gbinds, ngb, trees, err);
	if (ntrees < 0) {
		ntrees = 0;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		cv_errf(err, errno, "starting the sandbox process");
		goto out;
	}
	if (pid == 0)
		exec_boot(ctl, pipefd[1], memfd, console, trees, ntrees, bundle, created, id);
	for (int i = 0; i < ntrees; i++)
		close(trees[i]);
	ntrees = 0;
	/* boot has its copies; ours would keep the pipe from reaching EOF. */
	close(pipefd[1]);
	pipefd[1] = -1;
	close(ctl);
	ctl = -1;
	if (console >= 0) {
		/* Only the init's copy may stay: a receiver then sees EOF once
		 * the init has sent the master or died. */
		close(console);
		console = -1;
	}
	if (read_sync(pipefd[0], id, &init, err) < 0)
		goto out;
	if (write_state(id, bundle, rootfs, init, pid, created, cg_path, sd_unit,
			cli_json_get(spec, "annotations", json_type_object), hooks_json, err) < 0)
		goto out;
	if (o->pid_file && cli_write_pid_file(o->pid_file, init, err) < 0)
		goto out;
	*boot_pid = pid;
	*init_pid = init;
	if (o->console_peer) {
		*o->console_peer = peer; /* the caller's now (-1 without a terminal) */
		peer = -1;
	}
	r = 0;
out:
	if (r < 0 && pid > 0) {
		/* boot reported its failure (or died); make sure it is gone
		 * before its directory is removed. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		/* An init that boot started before failing is our child too. */
		if (init > 0)
			kill(init, SIGKILL);
		while (waitpid(-1, NULL, __WALL | WNOHANG) > 0)
			;
	}
	if (r < 0 && made_dir) {
		struct cv_error e2;
		/* A systemd scope boot started was stopped by boot itself: only
		 * it knows whether the unit of that name is the container's. */
		if (cg_path[0])
			cgroup_remove_path(cg_path, &e2);
		cli_remove_tree(dir, &e2);
	}
	/* The runtime spec's lifecycle goes on to poststop once a failed
	 * create has been undone (runc's destroy runs them too). */
	if (r < 0 && pid > 0) {
		struct cli_hook_state hs = { .id = id, .status = "stopped", .bundle = bundle,
					     .rootfs = rootfs, .created = created,
					     .annotations = cli_json_get(spec, "annotations",
									 json_type_object) };
		cli_hooks_run_warn(hooks.h.poststop, hooks.h.n_poststop, "poststop", &hs);
	}
	cli_hooks_free(&hooks);
	for (int i = 0; i < ntrees; i++)
		close(trees[i]);
	free(gbinds);
	free(gpaths);
	const int fds[] = { memfd, dirfd, ctl, pipefd[0], pipefd[1], console, peer };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	json_object_put(spec);
	msgpack_sbuffer_destroy(&sbuf);
	return r;
}

int create_parse_flag(int c, const char *arg, struct create_opts *o, int *rc)
{
	switch (c) {
	case 'b':
		o->bundle = arg;
		return 1;
	case 'p':
		o->pid_file = arg;
		return 1;
	case 'c':
		o->console_socket = arg;
		return 1;
	case 'N':
		return 1; /* accepted for runc compatibility; nothing to do */
	case 'K':
		o->no_new_keyring = true;
		return 1;
	case 'P':
		if (strcmp(arg, "0") != 0)
			*rc = cli_failf("--preserve-fds is not supported by cvisor");
		return 1;
	default:
		return 0;
	}
}

int cmd_create(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		CREATE_OPTS,
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	struct create_opts o = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:b:h", opts, NULL)) != -1) {
		int rc = 0;
		if (create_parse_flag(c, optarg, &o, &rc)) {
			if (rc != 0)
				return rc;
			continue;
		}
		switch (c) {
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("create needs exactly one container ID (see cvisor create --help)");
	struct cv_error err = { 0 };
	pid_t pid, init;
	if (create_sandbox(argv[optind], &o, &pid, &init, &err) < 0)
		return cli_fail(&err);
	return 0;
}

/* `cvisor delete`: kill the container processes and the sandbox process,
 * remove its cgroups and its directory under --root. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/hooks.h"
#include "cmd/verbs.h"
#include "kernel/cgroup.h"
#include "kernel/cgroup_systemd.h"

#define KILL_WAIT_MS 5000

/* SIGKILLs boot through a pidfd (no pid-reuse race once it is open) and
 * waits up to KILL_WAIT_MS for it to die. */
static int kill_boot(pid_t pid, const char *id, struct cv_error *err)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0) {
		if (errno == ESRCH)
			return 0;
		return cv_errf(err, errno, "opening sandbox process %d", (int)pid);
	}
	/* Re-check after the pidfd pins the process: it is still our boot. */
	if (!cli_boot_alive(pid, id)) {
		close(pfd);
		return 0;
	}
	if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		int e = errno;
		close(pfd);
		return cv_errf(err, e, "killing sandbox process %d", (int)pid);
	}
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, KILL_WAIT_MS);
	while (r < 0 && errno == EINTR);
	close(pfd);
	if (r == 0)
		return cv_errf(err, 0, "sandbox process %d did not exit within %d s of SIGKILL",
			       (int)pid, KILL_WAIT_MS / 1000);
	return 0;
}

/* SIGKILLs every process of the container's cgroup (cgroup.kill on the v2
 * node; else each pid of cgroup.procs, in rounds until it is empty). Needs
 * nothing from boot, so it works when boot is stopped or wedged. A node
 * that is already gone is fine. */
static int kill_cgroup(const char *path, struct cv_error *err)
{
	struct cgroup cg;
	struct cv_error oerr = { 0 };
	if (cgroup_open(&cg, path, &oerr) < 0) {
		if (oerr.code == ENOENT)
			return 0;
		*err = oerr;
		return -1;
	}
	int r = cgroup_kill(&cg, err);
	cgroup_close(&cg);
	/* Removed between the open and the kill: boot tidies the cgroup up as
	 * the container ends (a restore that failed after the release ends it
	 * while `restore` deletes the sandbox). Nothing is left to kill: the
	 * write finds no file (ENOENT) or a node being torn down (ENODEV). */
	if (r < 0 && (err->code == ENOENT || err->code == ENODEV)) {
		cv_error_reset(err);
		return 0;
	}
	return r;
}

/* poststop, once the container is gone (runc's order: after its cgroups
 * and state), from the hooks create kept in state.json. */
static void run_poststop(const struct cli_state *st)
{
	struct cli_hooks hooks;
	struct cv_error err = { 0 };
	json_object *j = st->j ? cli_json_get(st->j, "hooks", json_type_object) : NULL;
	if (cli_hooks_load(j, &hooks, &err) < 0)
		fprintf(stderr, "cvisor: warning: poststop hooks: %s\n", err.msg);
	struct cli_hook_state hs = { .id = st->id, .status = "stopped", .bundle = st->bundle,
				     .rootfs = st->rootfs, .created = st->created,
				     .annotations = st->annotations };
	cli_hooks_run_warn(hooks.h.poststop, hooks.h.n_poststop, "poststop", &hs);
	cli_hooks_free(&hooks);
}

int delete_sandbox(const char *id, bool force, struct cv_error *err)
{
	if (cli_validate_id(id, err) < 0)
		return -1;
	char dir[PATH_MAX];
	if (cli_sandbox_dir(id, dir, sizeof(dir), err) < 0)
		return -1;
	struct stat sb;
	if (lstat(dir, &sb) < 0) {
		if (errno == ENOENT) {
			if (force)
				return 0;
			return cv_errf(err, 0, "container \"%s\" does not exist", id);
		}
		return cv_errf(err, errno, "container \"%s\": %s", id, dir);
	}

	struct cli_state st;
	struct cv_error serr = { 0 };
	if (force) {
		/* --force does not ask the sandbox anything: its boot may be
		 * stopped or wedged, and what follows works in any state. A
		 * directory without a readable state.json is a create that died
		 * half-way. */
		if (cli_state_load(id, &st, &serr) < 0)
			memset(&st, 0, sizeof(st));
	} else {
		int64_t state = RUNTIME_STATE_STOPPED;
		const char *status = "stopped";
		if (cli_status(id, &st, &state, &status, &serr) < 0) {
			if (serr.code != ENOENT)
				return cv_errf(err, 0, "%s", serr.msg);
			memset(&st, 0, sizeof(st));
		} else if (state == RUNTIME_STATE_RUNNING) {
			cv_errf(err, 0, "cannot delete container \"%s\" that is not stopped: status is %s",
				id, status);
			cli_state_free(&st);
			return -1;
		}
	}

	char sid[CLI_ID_MAX + 1];
	if (sub_sandbox_of(id, sid, sizeof(sid))) {
		int sr = sub_delete(id, sid, st.j ? &st : NULL, err);
		if (st.j)
			cli_state_free(&st);
		return sr;
	}
	/* Deleting a pod's root ends the pod: its subcontainers first, while
	 * the sandbox can still destroy them. */
	sub_delete_all_of(id);

	/* The container processes first, through the container's cgroup
	 * (linux.cgroupsPath, which holds the init and every exec'd process):
	 * with boot stopped, nothing else is sure to reach them. An exec'd
	 * process is boot's child with PR_SET_PDEATHSIG(SIGKILL), but the
	 * kernel clears that when it switches uid/gid or executes a
	 * set-user-ID or file-capability binary, and without a pid namespace
	 * the init's death does not take it along. Then boot, which is in no
	 * container cgroup and reaps them (its spawner and intermediates die
	 * with it, PR_SET_PDEATHSIG); then the empty cgroup. */
	int r = 0;
	bool has_cg = st.cgroup_path && st.cgroup_path[0];
	if (has_cg && kill_cgroup(st.cgroup_path, err) < 0)
		r = cv_error_wrap(err, "killing the processes of container \"%s\"", id);
	if (r == 0 && st.boot_pid > 0 && kill_boot(st.boot_pid, id, err) < 0)
		r = -1;
	/* --systemd-cgroup: systemd owns the scope and removes its nodes; a
	 * systemd that cannot be reached must not keep the container forever,
	 * so that is a warning, and the nodes go below as any others. */
	if (r == 0 && st.systemd_unit && st.systemd_unit[0]) {
		struct cv_error serr2 = { 0 };
		if (cgroup_systemd_stop(st.systemd_unit, &serr2) < 0)
			fprintf(stderr, "cvisor: warning: container \"%s\": %s\n", id, serr2.msg);
	}
	if (r == 0 && has_cg && cgroup_remove_path(st.cgroup_path, err) < 0)
		r = cv_error_wrap(err, "removing the cgroups of container \"%s\"", id);
	if (r < 0) {
		cli_state_free(&st);
		return -1; /* keep the directory: a retry needs state.json */
	}
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", dir);
	unlink(sock);
	r = cli_remove_tree(dir, err);
	if (r == 0)
		run_poststop(&st);
	cli_state_free(&st);
	return r;
}

int cmd_delete(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, 0, 'f' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	bool force = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("delete needs exactly one container ID");
	struct cv_error err = { 0 };
	if (delete_sandbox(argv[optind], force, &err) < 0)
		return cli_fail(&err);
	return 0;
}

/* Subcontainers through the CLI, placed the way containerd's CRI plugin
 * asks runsc (docs/DESIGN.md, "Pods"): a bundle whose annotations say
 * io.kubernetes.cri.container-type "container" and
 * io.kubernetes.cri.sandbox-id <root id> is created inside that sandbox.
 *
 * $ROOT/<sub id>/ holds state.json (pid: the sub init's host pid; bootPid:
 * the sandbox's boot) and control.sock, a symlink to the sandbox's socket,
 * so every verb that talks to "the container's sandbox" reaches the right
 * one by the sub's own id; the symlink also says whose sub it is. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <linux/mount.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"
#include "core/util.h"
#include "kernel/cgroup.h"

#define ANN_TYPE "io.kubernetes.cri.container-type"
#define ANN_SANDBOX "io.kubernetes.cri.sandbox-id"
/* cvisor's own: the rootfs overlay medium ("memory": writes vanish with
 * the container), as runsc's --overlay2 root:memory. */
#define ANN_OVERLAY "dev.cvisor.overlay"

const char *sub_sandbox_of_spec(json_object *spec)
{
	json_object *ann = cli_json_get(spec, "annotations", json_type_object);
	const char *type = cli_json_str(ann, ANN_TYPE);
	const char *sid = cli_json_str(ann, ANN_SANDBOX);
	if (!type || strcmp(type, "container") != 0 || !sid || !*sid)
		return NULL;
	return sid;
}

/* Starts the container's gofer (cmd/gofer.c) on one end of a
 * SOCK_SEQPACKET pair; returns the other end, for the sandbox. The gofer
 * gets the root and every bind mount's source (relative ones made
 * absolute from the bundle), in the spec's order. It is in its own
 * session with /dev/null as stdio: it outlives this process and is reaped
 * by whoever reaps the container (the engine's subreaper). */
static int start_gofer(json_object *spec, const char *bundle, const char *rootfs, bool readonly,
		       pid_t *pid, struct cv_error *err)
{
	struct gofer_bind *binds = NULL;
	char *paths = NULL;
	size_t nb = 0;
	if (gofer_binds_of_spec(spec, bundle, &binds, &paths, &nb, err) < 0)
		return -1;
	/* argv: 5 fixed, 2 per bind, NULL. */
	const char **argv = calloc(6 + 2 * nb, sizeof(*argv));
	if (!argv) {
		free(binds);
		free(paths);
		return cv_errf(err, ENOMEM, "starting the gofer");
	}
	size_t n = 0;
	argv[n++] = "cvisor";
	argv[n++] = "gofer";
	argv[n++] = "--rootfs";
	argv[n++] = rootfs;
	if (readonly)
		argv[n++] = "--readonly";
	for (size_t i = 0; i < nb; i++) {
		argv[n++] = binds[i].recursive ? "--rbind" : "--bind";
		argv[n++] = binds[i].path;
	}
	argv[n] = NULL;
	int sv[2], r = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		cv_errf(err, errno, "creating the gofer's connection");
		goto out;
	}
	pid_t p = fork();
	if (p < 0) {
		cv_errf(err, errno, "starting the gofer");
		close(sv[0]);
		close(sv[1]);
		goto out;
	}
	if (p == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (setsid() < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 ||
		    dup2(nul, 2) < 0 || dup2(sv[1], 3) < 0)
			_exit(127);
		syscall(SYS_close_range, 4u, ~0u, 0u);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	close(sv[1]);
	*pid = p;
	r = sv[0];
out:
	free(argv);
	free(binds);
	free(paths);
	return r;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static int write_sub_state(const char *id, const char *sid, const char *bundle,
			   const char *rootfs, pid_t pid, pid_t boot, pid_t gofer,
			   const char *created, const char *cg_path, json_object *ann,
			   struct cv_error *err)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "id", json_object_new_string(id));
	json_object_object_add(j, "bundle", json_object_new_string(bundle));
	json_object_object_add(j, "rootfs", json_object_new_string(rootfs));
	json_object_object_add(j, "pid", json_object_new_int64(pid));
	json_object_object_add(j, "bootPid", json_object_new_int64(boot));
	json_object_object_add(j, "created", json_object_new_string(created));
	json_object_object_add(j, "cgroupPath", json_object_new_string(cg_path));
	json_object_object_add(j, "paused", json_object_new_boolean(0));
	json_object_object_add(j, "sandboxId", json_object_new_string(sid));
	json_object_object_add(j, "goferPid", json_object_new_int64(gofer));
	if (ann)
		json_object_object_add(j, "annotations", json_object_get(ann));
	int r = cli_state_save(id, j, err);
	json_object_put(j);
	return r;
}

int sub_create(const char *id, const char *sid, json_object *spec, const char *bundle,
	       const char *cg_path, const char *pid_file, const char *console_socket,
	       const char *created, pid_t *boot_pid, pid_t *init_pid, struct cv_error *err)
{
	json_object *process = cli_json_get(spec, "process", json_type_object);
	json_object *root = cli_json_get(spec, "root", json_type_object);
	json_object *ann = cli_json_get(spec, "annotations", json_type_object);
	bool terminal = cli_json_bool(process, "terminal", false);
	if (terminal && !console_socket)
		return cv_errf(err, 0, "--console-socket is required when process.terminal is true");
	if (json_object_object_get(spec, "hooks"))
		return cv_errf(err, 0, "hooks: OCI hooks are not supported for subcontainers");
	char rootfs[PATH_MAX * 2];
	const char *rp = cli_json_str(root, "path");
	if (!rp)
		rp = "rootfs";
	snprintf(rootfs, sizeof(rootfs), rp[0] == '/' ? "%s" : "%s/%s", rp[0] == '/' ? rp : bundle,
		 rp);
	const char *ov = cli_json_str(ann, ANN_OVERLAY);
	int upper = 0;
	if (ov && strcmp(ov, "memory") == 0)
		upper = 1;
	else if (ov && strcmp(ov, "self") == 0)
		upper = 2;
	else if (ov && *ov && strcmp(ov, "none") != 0)
		return cv_errf(err, 0, "annotations.%s: unknown medium \"%s\" (memory, self or none)",
			       ANN_OVERLAY, ov);

	/* A sandbox id that names a pod container means that container's pod. */
	char owner[CLI_ID_MAX + 1];
	if (sub_sandbox_of(sid, owner, sizeof(owner)))
		sid = owner;
	struct cli_state sst;
	if (cli_state_load(sid, &sst, err) < 0)
		return cv_error_wrap(err, "the pod sandbox named by %s", ANN_SANDBOX);
	pid_t boot = sst.boot_pid;
	cli_state_free(&sst);

	char dir[PATH_MAX], link[PATH_MAX];
	if (cli_sandbox_dir(id, dir, sizeof(dir), err) < 0)
		return -1;
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			return cv_errf(err, 0, "container \"%s\" already exists", id);
		return cv_errf(err, errno, "creating %s", dir);
	}
	snprintf(link, sizeof(link), "../%s/control.sock", sid);
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", dir);

	int r = -1, tree = -1, ptm = -1, pts = -1, self_upper = -1;
	pid_t gofer = -1;
	bool registered = false;
	struct rpc_client *c = NULL;
	msgpack_sbuffer buf;
	msgpack_sbuffer_init(&buf);
	if (symlink(link, sock) < 0) {
		cv_errf(err, errno, "linking %s to the sandbox's control socket", sock);
		goto out;
	}
	/* The self medium: the overlay's upper layer on disk, in the
	 * container's state directory (gone with `delete`), handed over as a
	 * detached mount. */
	if (upper == 2) {
		char up[PATH_MAX + 16];
		snprintf(up, sizeof(up), "%s/overlay", dir);
		if (mkdir(up, 0700) < 0) {
			cv_errf(err, errno, "creating %s", up);
			goto out;
		}
		self_upper = (int)syscall(SYS_open_tree, AT_FDCWD, up,
					  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (self_upper < 0) {
			cv_errf(err, errno, "cloning %s", up);
			goto out;
		}
	}
	tree = start_gofer(spec, bundle, rootfs, cli_json_bool(root, "readonly", false), &gofer, err);
	if (tree < 0)
		goto out;
	c = cli_connect(sid, err);
	if (!c) {
		cv_error_wrap(err, "the pod sandbox \"%s\"", sid);
		goto out;
	}
	const msgpack_object *res;
	/* With a terminal, runsc's way: the pty is made here (in this
	 * process's devpts), its master goes to the console socket and its
	 * replica to CreateSubcontainer, to be the init's fds 0-2. */
	if (terminal) {
		char name[64];
		if (tty_open_pair(&ptm, &pts, name, sizeof(name), err) < 0 ||
		    tty_send_console(console_socket, ptm, name, err) < 0)
			goto out;
	}
	/* CreateArgs {"CID"} */
	msgpack_packer pk;
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, terminal ? 2 : 1);
	pack_str(&pk, "CID");
	pack_str(&pk, id);
	if (terminal) {
		pack_str(&pk, "Files");
		msgpack_pack_int(&pk, 1);
	}
	cv_error_reset(err);
	if (rpc_client_call(c, "containerManager.CreateSubcontainer", &buf, terminal ? &pts : NULL,
			    terminal ? 1 : 0, &res, NULL, NULL, 0, err) < 0)
		goto out;
	registered = true;
	msgpack_sbuffer_clear(&buf);
	msgpack_pack_map(&pk, 8);
	pack_str(&pk, "Spec");
	if (json_mp_pack(spec, &pk, err) < 0)
		goto out;
	pack_str(&pk, "Conf");
	msgpack_pack_map(&pk, 0);
	pack_str(&pk, "CID");
	pack_str(&pk, id);
	pack_str(&pk, "NumGoferFilestoreFDs");
	msgpack_pack_int(&pk, upper == 2 ? 1 : 0);
	pack_str(&pk, "GoferMountConfs");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	pack_str(&pk, "lower");
	msgpack_pack_int(&pk, 1);
	pack_str(&pk, "upper");
	msgpack_pack_int(&pk, upper);
	pack_str(&pk, "IsDevIoFilePresent");
	msgpack_pack_false(&pk);
	pack_str(&pk, "Hold");
	msgpack_pack_true(&pk);
	/* The init's stdio is ours, as runc's init inherits create's (conmon
	 * and the shim hand pipes or /dev/null there); with a terminal, the
	 * pty given above. Then the self medium's filestore, then the gofer. */
	int fds[5], nfds = 0;
	if (!terminal) {
		fds[nfds++] = 0;
		fds[nfds++] = 1;
		fds[nfds++] = 2;
	}
	if (upper == 2)
		fds[nfds++] = self_upper;
	fds[nfds++] = tree;
	pack_str(&pk, "Files");
	msgpack_pack_int(&pk, nfds);
	if (rpc_client_call(c, "containerManager.StartSubcontainer", &buf, fds, (size_t)nfds, &res,
			    NULL, NULL, 0, err) < 0)
		goto out;
	int64_t pid = 0;
	if (cli_result_int(res, "containerManager.StartSubcontainer", &pid, err) < 0)
		goto out;
	if (write_sub_state(id, sid, bundle, rootfs, (pid_t)pid, boot, gofer, created, cg_path, ann,
			    err) <
	    0)
		goto out;
	if (pid_file && cli_write_pid_file(pid_file, (pid_t)pid, err) < 0)
		goto out;
	*boot_pid = boot;
	*init_pid = (pid_t)pid;
	r = 0;
out:
	if (r < 0 && registered && c) {
		struct cv_error e2;
		rpc_client_call_str(c, "containerManager.DestroySubcontainer", id, &res, &e2);
	}
	if (c)
		rpc_client_close(c);
	if (tree >= 0)
		close(tree);
	if (ptm >= 0)
		close(ptm);
	if (self_upper >= 0)
		close(self_upper);
	if (pts >= 0)
		close(pts);
	/* A gofer whose container does not exist: nothing will hang up on it
	 * but this kill (boot closed its end, or never got it). */
	if (r < 0 && gofer > 0)
		kill(gofer, SIGKILL);
	msgpack_sbuffer_destroy(&buf);
	if (r < 0) {
		struct cv_error e2;
		cli_remove_tree(dir, &e2);
	}
	return r;
}

int sub_delete(const char *id, const char *sid, const struct cli_state *st, struct cv_error *err)
{
	/* The sandbox destroys it (kill all, wait, cgroup, registry); a
	 * sandbox already gone left its cgroup to us. */
	struct cv_error cerr = { 0 };
	struct rpc_client *c = cli_connect(sid, &cerr);
	if (c) {
		const msgpack_object *res;
		int r = rpc_client_call_str(c, "containerManager.DestroySubcontainer", id, &res, err);
		rpc_client_close(c);
		if (r < 0 && !strstr(err->msg, "not found"))
			return -1;
		cv_error_reset(err);
	}
	if (st && st->cgroup_path && *st->cgroup_path &&
	    cgroup_remove_path(st->cgroup_path, err) < 0)
		return cv_error_wrap(err, "removing the cgroups of container \"%s\"", id);
	char dir[PATH_MAX];
	if (cli_sandbox_dir(id, dir, sizeof(dir), err) < 0)
		return -1;
	return cli_remove_tree(dir, err);
}

void sub_delete_all_of(const char *sid)
{
	DIR *d = opendir(cli_g.root);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char owner[CLI_ID_MAX + 1];
		if (e->d_name[0] == '.' || !sub_sandbox_of(e->d_name, owner, sizeof(owner)) ||
		    strcmp(owner, sid) != 0)
			continue;
		struct cli_state st;
		struct cv_error err = { 0 };
		bool has = cli_state_load(e->d_name, &st, &err) == 0;
		if (sub_delete(e->d_name, sid, has ? &st : NULL, &err) < 0)
			fprintf(stderr, "cvisor: warning: removing subcontainer \"%s\": %s\n",
				e->d_name, err.msg);
		if (has)
			cli_state_free(&st);
	}
	closedir(d);
}

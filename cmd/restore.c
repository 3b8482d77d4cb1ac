/* `cvisor restore --image-path DIR --bundle B [--detach] [--pid-file P] ID`:
 * creates the sandbox from the bundle as `create` does (the stdio of this
 * command becomes the container's, as runsc connects external stdio), then
 * containerManager.Restore with DIR/checkpoint.img. Attached, it waits for
 * the container and exits with its status. A restore that fails deletes
 * the sandbox again. The runc flags podman passes (--work-path,
 * --tcp-established, --file-locks, --manage-cgroups-mode, --ext-unix-sk,
 * --shell-job, --no-subreaper) are accepted and change nothing. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/progress.h"
#include "cmd/verbs.h"

#define RESTORE_RPC_TIMEOUT_MS (10 * 60 * 1000)

static int call_restore(const char *id, int fd, struct cv_error *err)
{
	struct rpc_client *cl = cli_connect(id, err);
	if (!cl)
		return -1;
	rpc_client_set_timeout(cl, RESTORE_RPC_TIMEOUT_MS, NULL);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mpk_pack_key(&pk, "SandboxID");
	mpk_pack_str(&pk, id);
	mpk_pack_key(&pk, "Files");
	msgpack_pack_uint32(&pk, 1);
	const msgpack_object *res;
	/* The helper's main reading moves the fd's offset (the records, then
	 * the pages of a large file once more); its checker thread reads with
	 * pread and leaves it alone. */
	pid_t prog = progress_start(fd, "restore", true);
	int r = rpc_client_call(cl, "containerManager.Restore", &sb, &fd, 1, &res, NULL, NULL, 0,
				err);
	progress_stop(prog);
	msgpack_sbuffer_destroy(&sb);
	rpc_client_close(cl);
	return r;
}

int cmd_restore(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		CREATE_OPTS,
		{ "image-path", required_argument, 0, 'i' },
		{ "work-path", required_argument, 0, 'w' },
		{ "detach", no_argument, 0, 'd' },
		{ "tcp-established", no_argument, 0, 't' },
		{ "file-locks", no_argument, 0, 'f' },
		{ "ext-unix-sk", no_argument, 0, 'x' },
		{ "shell-job", no_argument, 0, 's' },
		{ "no-subreaper", no_argument, 0, 'S' },
		{ "manage-cgroups-mode", required_argument, 0, 'm' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	struct create_opts o = { 0 };
	const char *dir = NULL;
	bool detach = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:b:dh", opts, NULL)) != -1) {
		int rc = 0;
		if (create_parse_flag(c, optarg, &o, &rc)) {
			if (rc != 0)
				return rc;
			continue;
		}
		switch (c) {
		case 'i':
			dir = optarg;
			break;
		case 'd':
			detach = true;
			break;
		case 'w':
		case 't':
		case 'f':
		case 'x':
		case 's':
		case 'S':
		case 'm':
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("restore needs exactly one container ID");
	if (!dir || !dir[0])
		return cli_failf("restore needs --image-path DIR");
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);
	char path[4096 + 32];
	snprintf(path, sizeof(path), "%s/checkpoint.img", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cv_errf(&err, errno, "opening %s", path);
		return cli_fail(&err);
	}
	pid_t boot, init;
	if (create_sandbox(id, &o, &boot, &init, &err) < 0) {
		close(fd);
		return cli_fail(&err);
	}
	int r = call_restore(id, fd, &err);
	close(fd);
	if (r < 0) {
		struct cv_error derr = { 0 };
		delete_sandbox(id, true, &derr);
		return cli_fail(&err);
	}
	if (detach)
		return 0;
	/* Attached: wait for the restored container as `run` does. */
	struct rpc_client *cl = cli_connect(id, &err);
	if (!cl)
		return cli_fail(&err);
	rpc_client_set_timeout(cl, -1, NULL);
	const msgpack_object *res;
	int64_t v = 0;
	r = rpc_client_call_str(cl, "containerManager.Wait", id, &res, &err);
	if (r == 0)
		r = cli_result_int(res, "containerManager.Wait", &v, &err);
	rpc_client_close(cl);
	struct cv_error derr = { 0 };
	delete_sandbox(id, true, &derr);
	if (r < 0)
		return cli_fail(&err);
	return cli_exit_code((int)v);
}

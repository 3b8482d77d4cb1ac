/* `cvisor checkpoint --image-path DIR [--leave-running] ID`: writes the
 * sandbox's state to DIR/checkpoint.img (created with O_EXCL, removed again
 * if the checkpoint fails) through containerManager.Checkpoint. The flags
 * podman passes to runc (--work-path, --tcp-established, --file-locks,
 * --manage-cgroups-mode, --ext-unix-sk, --shell-job) are accepted: the work
 * path holds nothing of ours, and the resources the others concern are
 * refused by the engine by name when a container holds them. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/conn.h"
#include "cmd/progress.h"
#include "cmd/verbs.h"

/* Large images take seconds; a sandbox that is alive answers at the end. */
#define CKPT_RPC_TIMEOUT_MS (10 * 60 * 1000)

static int mkdir_p(const char *dir, struct cv_error *err)
{
	char p[4096];
	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return cv_errf(err, 0, "--image-path: too long");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return cv_errf(err, errno, "--image-path: mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return cv_errf(err, errno, "--image-path: mkdir %s", p);
	return 0;
}

int cmd_checkpoint(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image-path", required_argument, 0, 'i' },
		{ "work-path", required_argument, 0, 'w' },
		{ "leave-running", no_argument, 0, 'l' },
		{ "tcp-established", no_argument, 0, 't' },
		{ "file-locks", no_argument, 0, 'f' },
		{ "ext-unix-sk", no_argument, 0, 'x' },
		{ "shell-job", no_argument, 0, 's' },
		{ "manage-cgroups-mode", required_argument, 0, 'm' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	const char *dir = NULL;
	bool leave = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			dir = optarg;
			break;
		case 'l':
			leave = true;
			break;
		case 'w':
		case 't':
		case 'f':
		case 'x':
		case 's':
		case 'm':
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("checkpoint needs exactly one container ID");
	if (!dir || !dir[0])
		return cli_failf("checkpoint needs --image-path DIR");
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0 || mkdir_p(dir, &err) < 0)
		return cli_fail(&err);
	char path[4096 + 32];
	snprintf(path, sizeof(path), "%s/checkpoint.img", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		cv_errf(&err, errno, "creating %s", path);
		return cli_fail(&err);
	}
	struct rpc_client *cl = cli_connect(id, &err);
	int r = cl ? 0 : -1;
	if (cl) {
		rpc_client_set_timeout(cl, CKPT_RPC_TIMEOUT_MS, NULL);
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 2);
		mpk_pack_key(&pk, "Resume");
		if (leave)
			msgpack_pack_true(&pk);
		else
			msgpack_pack_false(&pk);
		mpk_pack_key(&pk, "Files");
		msgpack_pack_uint32(&pk, 1);
		const msgpack_object *res;
		pid_t prog = progress_start(fd, "checkpoint", false);
		r = rpc_client_call(cl, "containerManager.Checkpoint", &sb, &fd, 1, &res, NULL, NULL,
				    0, &err);
		progress_stop(prog);
		msgpack_sbuffer_destroy(&sb);
		rpc_client_close(cl);
	}
	close(fd);
	if (r < 0) {
		unlink(path);
		return cli_fail(&err);
	}
	/* podman decides a checkpoint is complete when the image directory
	 * holds CRIU's inventory.img (it only stats it, and packs it into
	 * --export archives): a marker saying what this directory really is. */
	static const char marker[] = "cvisor checkpoint: the state is checkpoint.img (docs/STATEFILE.md); "
				     "this file is not a CRIU image\n";
	snprintf(path, sizeof(path), "%s/inventory.img", dir);
	int mfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (mfd < 0 || cli_write_all(mfd, marker, sizeof(marker) - 1) < 0) {
		cv_errf(&err, errno, "writing %s", path);
		if (mfd >= 0)
			close(mfd);
		return cli_fail(&err);
	}
	close(mfd);
	if (!leave) {
		/* The sandbox ends: wait for it so `state` says stopped next. */
		struct cli_state st;
		if (cli_state_load(id, &st, &err) == 0) {
			cli_wait_boot_gone(st.boot_pid, id, CLI_BOOT_EXIT_WAIT_MS);
			cli_state_free(&st);
		}
	}
	return 0;
}

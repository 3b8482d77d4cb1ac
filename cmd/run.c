/* `cvisor run`: create + start; attached, it stays the parent of boot and of
 * the container's init (CLONE_PARENT), forwards signals to the init as runc
 * does, reaps it, exits with its status and deletes the sandbox. With
 * process.terminal and no --console-socket it receives the pty the init
 * made in the container's devpts and proxies it to its own stdio. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/verbs.h"
#include "core/util.h"

static volatile sig_atomic_t run_init_pid;

/* Forwarded to the container's init, as runc does. */
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void forward(int sig)
{
	int saved = errno;
	if (run_init_pid > 0)
		kill((pid_t)run_init_pid, sig);
	errno = saved;
}

int cmd_run(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		CREATE_OPTS,
		{ "detach", no_argument, 0, 'd' },
		{ "keep", no_argument, 0, 'k' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	struct create_opts o = { 0 };
	bool detach = false, keep = false;
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
		case 'd':
			detach = true;
			break;
		case 'k':
			keep = true;
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_failf("run needs exactly one container ID (see cvisor run --help)");
	const char *id = argv[optind];
	/* Attached, a terminal needs no console socket: run is its receiver. */
	int peer = -1;
	if (!detach && !o.console_socket)
		o.console_peer = &peer;

	/* Forward from the moment boot exists; the handler ignores pid 0. */
	struct sigaction sa = { .sa_handler = forward };
	sigemptyset(&sa.sa_mask);
	if (!detach)
		for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
			sigaction(forwarded[i], &sa, NULL);

	struct cv_error err = { 0 };
	pid_t pid, init;
	if (create_sandbox(id, &o, &pid, &init, &err) < 0)
		return cli_fail(&err);
	run_init_pid = init;
	int master = -1;
	if (peer >= 0) {
		/* Sent by the init before it reported ready, so already here. */
		master = tty_recv_console(peer, &err);
		close(peer);
		if (master < 0) {
			struct cv_error e2;
			delete_sandbox(id, true, &e2);
			return cli_fail(&err);
		}
	}
	if (start_container(id, &err) < 0) {
		struct cv_error e2;
		if (master >= 0)
			close(master);
		delete_sandbox(id, true, &e2);
		return cli_fail(&err);
	}
	if (detach)
		return 0;

	/* The init is ours to reap; boot learns its status from the pidfd
	 * once it is reaped, then ends too. */
	int status = 0;
	if (master >= 0) {
		int r = tty_proxy_until_exit(master, init, &status, &err);
		close(master);
		if (r < 0)
			return cli_fail(&err);
	} else {
		while (waitpid(init, &status, __WALL) < 0) {
			if (errno != EINTR) {
				cv_errf(&err, errno, "waiting for the container's init %d", (int)init);
				return cli_fail(&err);
			}
		}
	}
	run_init_pid = 0;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	int code = cli_exit_code(status);
	if (!keep && delete_sandbox(id, true, &err) < 0)
		cli_fail(&err);
	return code;
}

/* The boot process: creates the root container, serves the control socket
 * on one libev loop, forwards host signals to the root container, and ends
 * with the root init's wait status (docs/DESIGN.md, "Processes and pids"). */
#include "kernel/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "kernel/cgroup_systemd.h"
#include "kernel/exit_source.h"
#include "kernel/hooks.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/seccheck.h"
#include "kernel/network_mode.h"
#include "kernel/spawn.h"
#include "kernel/userns.h"
#include "rpc/server.h"

/* Signals the sandbox forwards to the root container, as runsc does. */
static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
					 SIGWINCH, SIGCONT };

/* Seconds the root init may take to report that it is set up. */
#define INIT_SETUP_TIMEOUT_MS 30000
/* After the root init ends, how long replies may take to drain (10 ms ticks). */
#define DRAIN_TICKS_MAX 100

static void on_signal(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct sandbox *sb = container_of(w, struct sandbox, sig_w);
	struct signalfd_siginfo si;
	while (read(sb->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		struct task *init = sb->root ? sb->root->init : NULL;
		if (!init || init->pidfd < 0)
			continue;
		LOG(LL_INFO, "forwarding signal %u to the root container", si.ssi_signo);
		if (syscall(SYS_pidfd_send_signal, init->pidfd, (int)si.ssi_signo, NULL, 0) < 0)
			LOG(LL_WARN, "forwarding signal %u: %s", si.ssi_signo, strerror(errno));
	}
}

static int signals_setup(struct sandbox *sb, struct cv_error *err)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded_signals); i++)
		sigaddset(&set, forwarded_signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return cv_errf(err, errno, "blocking signals");
	sb->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sb->sigfd < 0)
		return cv_errf(err, errno, "signalfd");
	signal(SIGPIPE, SIG_IGN);
	ev_io_init(&sb->sig_w, on_signal, sb->sigfd, EV_READ);
	ev_io_start(core_loop(), &sb->sig_w);
	return 0;
}

static void on_drain(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct sandbox *sb = container_of(w, struct sandbox, drain_w);
	if (rpc_server_pending_output(sb->rpc) == 0 || ++sb->drain_ticks >= DRAIN_TICKS_MAX) {
		ev_timer_stop(loop, w);
		ev_break(loop, EVBREAK_ALL);
	}
}

/* Runs after the continuations woken by the root init's exit (Wait
 * replies) had their turn: they were scheduled first. Replies are written
 * at once when the socket takes them, so usually nothing is left. */
static void drain_first(struct cont *k, int err)
{
	(void)err;
	struct sandbox *sb = container_of(k, struct sandbox, drain_k);
	if (rpc_server_pending_output(sb->rpc) == 0) {
		ev_break(core_loop(), EVBREAK_ALL);
		return;
	}
	ev_timer_init(&sb->drain_w, on_drain, 0.01, 0.01);
	ev_timer_start(core_loop(), &sb->drain_w);
}

void sandbox_root_exited(struct sandbox *sb, int status)
{
	if (sb->ended)
		return;
	sb->ended = true;
	LOG(LL_INFO, "root container exited with status 0x%x; the sandbox ends", status);
	/* No new calls; replies already due (Wait) are flushed first. */
	rpc_server_stop_listening(sb->rpc);
	cont_init(&sb->drain_k, drain_first, "sandbox end: flush replies");
	cont_post(&sb->drain_k, 0);
}

/* The init is at its hook point: the runtime's hooks, then the go-ahead
 * with the state its own hooks read. Its createContainer hooks may then
 * take as long as their timeouts allow. */
static int run_hook_point(struct task *t, const struct boot_args *a, const struct oci_spec *spec,
			  int *timeout_ms, struct cv_error *err)
{
	if (!a->hook_point)
		return cv_errf(err, 0, "spec.hooks: this sandbox cannot run hooks");
	int fds[2] = { -1, -1 };
	int r = a->hook_point(a->hook_ctx, spec, t->host_pid, fds, err);
	if (r == 0)
		r = hooks_send_go(t->ctl_fd, fds, err);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	int more = hooks_budget_ms(spec->hooks.create_container, spec->hooks.n_create_container);
	*timeout_ms = more < 0 ? -1 : INIT_SETUP_TIMEOUT_MS + more;
	return r;
}

/* Blocks (before serving anything) until the root init reports that its
 * namespaces, cgroup and mounts are set up. */
static int wait_init_ready(struct task *t, const struct boot_args *a, const struct oci_spec *spec,
			   struct cv_error *err)
{
	/* The init's trace listener (kernel/child_trace.c) is answered here
	 * too: the init blocks in its next armed syscall until it is. */
	struct pollfd p[2];
	int timeout_ms = INIT_SETUP_TIMEOUT_MS;
	for (;;) {
		p[0] = (struct pollfd){ .fd = t->ctl_fd, .events = POLLIN };
		nfds_t n = 1 + seccheck_listener_pollfds(&p[1], 1);
		int r = poll(p, n, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cv_errf(err, errno, "waiting for the root container");
		if (r == 0)
			return cv_errf(err, 0, "the root container did not finish its set-up within %d s",
				       INIT_SETUP_TIMEOUT_MS / 1000);
		if (n > 1 && p[1].revents)
			seccheck_listener_drain_all();
		if (!p[0].revents)
			continue;
		int listener = -1;
		enum spawn_report_result rep = spawn_read_report(t->ctl_fd, &listener, err);
		if (rep == SPAWN_REPORT_AGAIN)
			continue;
		if (rep == SPAWN_REPORT_LISTENER) {
			seccheck_listener_add(t->c, listener);
			continue;
		}
		if (rep == SPAWN_REPORT_READY)
			return 0;
		if (rep == SPAWN_REPORT_HOOKS) {
			if (run_hook_point(t, a, spec, &timeout_ms, err) < 0)
				return -1;
			continue;
		}
		if (rep == SPAWN_REPORT_EXECED)
			return cv_errf(err, 0, "the root container's init exited during set-up");
		return -1;
	}
}

/* --systemd-cgroup (spawn_init_args.placed): systemd makes the scope with
 * the new init in it; cvisor then opens the scope's nodes as any container
 * cgroup (making those of the v1 hierarchies systemd leaves alone) and
 * writes every limit into them, those systemd has no property for too, as
 * runc's systemd driver does. A unit systemd accepted is stopped by
 * stop_scopes: on any later failure of create, or when the sandbox ends. */
static int start_scope(void *data, pid_t pid, struct cv_error *err)
{
	struct container *c = data;
	const struct oci_resources *res =
		(c->spec.has_linux && c->spec.linux_.has_resources) ? &c->spec.linux_.resources : NULL;
	char desc[256];
	snprintf(desc, sizeof(desc), "cvisor container %s", c->id);
	if (cgroup_systemd_start(c->spec.systemd_unit,
				 c->spec.systemd_slice && *c->spec.systemd_slice ? c->spec.systemd_slice :
										    "system.slice",
				 desc, pid, res, c->spec.annotations, &c->scope_started, err) < 0)
		return -1;
	if (cgroup_create(&c->cg, c->spec.cgroup_path, res, err) < 0)
		return cv_error_wrap(err, "the container's cgroup (systemd scope %s)",
				     c->spec.systemd_unit);
	c->cg_made = true;
	return cgroup_systemd_join_v2(&c->cg, pid, err);
}

static int create_root(struct sandbox *sb, const struct boot_args *a, struct cv_error *err)
{
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		return cv_errf(err, ENOMEM, "allocating the spec");
	msgpack_object obj;
	size_t off = 0;
	if (msgpack_unpack((const char *)a->spec, a->spec_len, &off, zone, &obj) !=
	    MSGPACK_UNPACK_SUCCESS) {
		msgpack_zone_free(zone);
		return cv_errf(err, 0, "the spec handed to boot is not valid msgpack");
	}
	struct container *c = container_new(sb, a->id, zone, err);
	if (!c) {
		msgpack_zone_free(zone);
		return -1;
	}
	sb->root = c;
	if (oci_spec_decode(&obj, zone, &c->spec, err) < 0)
		return -1;
	if (net_mode_apply_spec(&c->spec, (enum net_mode)sb->net_mode, zone, err) < 0)
		return -1;
	c->ns_flags = spawn_ns_flags(&c->spec);
	c->join_flags = spawn_ns_join_flags(&c->spec);
	if (pidns_init(sb, err) < 0)
		return -1;

	/* The container's cgroup is the path `create` resolved from
	 * linux.cgroupsPath; boot itself stays where it was started, so it
	 * and its spawner never count against the container's limits. */
	if (!c->spec.cgroup_path || !*c->spec.cgroup_path)
		return cv_errf(err, 0, "the spec handed to boot has no cvisor.cgroupPath");
	const struct oci_resources *res =
		(c->spec.has_linux && c->spec.linux_.has_resources) ? &c->spec.linux_.resources : NULL;
	/* With --systemd-cgroup systemd makes the node, given the init's pid
	 * (start_scope, once the init exists). */
	bool scope = c->spec.systemd_unit && *c->spec.systemd_unit;
	if (!scope) {
		if (cgroup_create(&c->cg, c->spec.cgroup_path, res, err) < 0)
			return cv_error_wrap(err, "the container's cgroup");
		c->cg_made = true;
	}

	struct spawn_init_args sa = {
		.spec = &c->spec,
		.bundle = a->bundle,
		.stdio = { a->stdio[0], a->stdio[1], a->stdio[2] },
		.cg = &c->cg,
		.console_fd = a->console_fd,
		.placed = scope ? start_scope : NULL,
		.placed_data = c,
		.has_root_tree = a->root_tree >= 0,
		.root_tree = a->root_tree,
	};
	/* The trees `create` cloned: boot resolves no host path of the
	 * container (docs/DESIGN.md, "Pods"). */
	int binds[253];
	for (size_t i = 0; i < a->n_bind_fds && i < 253; i++)
		binds[i] = a->root_tree + 1 + (int)i;
	int *mount_fds = NULL;
	int r = a->root_tree >= 0 ? spawn_bind_fds(&c->spec, binds, a->n_bind_fds, &mount_fds, err)
				  : 0;
	sa.mount_fds = mount_fds;
	struct spawned sp;
	if (r == 0)
		r = spawn_container_init(&sa, &sp, err);
	free(mount_fds);
	if (a->root_tree >= 0) {
		close(a->root_tree);
		for (size_t i = 0; i < a->n_bind_fds; i++)
			close(binds[i]);
	}
	/* The init has its own copy to send the pty master on; boot's would
	 * keep the receiver's end open for the sandbox's whole life. */
	if (a->console_fd >= 0)
		close(a->console_fd);
	if (r < 0)
		return -1;
	c->init = task_new(c, sp.pid, sp.pidfd, sp.ctl_fd, true);
	if (!c->init) {
		kill(sp.pid, SIGKILL);
		close(sp.pidfd);
		close(sp.ctl_fd);
		return cv_errf(err, ENOMEM, "tracking the root init");
	}
	c->init->foreign_parent = true;
	if (exit_source_watch(sp.pid, err) < 0)
		return -1;
	if (wait_init_ready(c->init, a, &c->spec, err) < 0)
		return -1;
	/* The sandbox's root pid namespace is the init's, however it got there
	 * (new, joined by path, or the host's). */
	if (pidns_init_from(sb, sp.pid, err) < 0)
		return -1;
	c->init->ns_pid = pidns_to_root(sb, sp.pid);
	/* A user namespace joined by path may be boot's own: not joined again. */
	c->join_flags = userns_exec_join_flags(c->join_flags, sp.pid);
	c->init->has_tty = c->spec.process.terminal;
	task_watch(c->init);
	/* Before anything of the workload runs: it finds lo up. */
	return net_mode_setup(sb, err);
}

static int release_caller_stdio(struct cv_error *err)
{
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0)
		return cv_errf(err, errno, "opening /dev/null");
	for (int fd = 0; fd <= 2; fd++)
		if (dup2(nul, fd) < 0) {
			int e = errno;
			close(nul);
			return cv_errf(err, e, "closing the caller's stdio");
		}
	close(nul);
	return 0;
}

/* Stops the systemd scopes boot started, blocking up to
 * CGROUP_SYSTEMD_TIMEOUT_MS each. An empty scope would be collected by
 * systemd too, but a failed one stays until reset. What is in the scope is
 * killed first: systemd's stop sends SIGTERM and waits TimeoutStopSec (90 s
 * by default) before SIGKILL, and an init of a new pid namespace ignores a
 * SIGTERM it has no handler for. */
static void stop_scopes(struct sandbox *sb)
{
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		struct cv_error err;
		if (!c->scope_started)
			continue;
		if (c->init && c->init->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, c->init->pidfd, SIGKILL, NULL, 0);
		if (c->cg_made)
			cgroup_kill(&c->cg, &err);
		if (cgroup_systemd_stop(c->spec.systemd_unit, &err) < 0)
			LOG(LL_WARN, "container %s: %s", c->id, err.msg);
		c->scope_started = false;
	}
}

static void sandbox_free(struct sandbox *sb)
{
	if (sb->rpc)
		rpc_server_free(sb->rpc);
	/* Whatever is left of the containers dies with the sandbox. */
	list_for_each(n, &sb->containers) {
		struct container *c = container_of(n, struct container, link);
		if (c->init && c->init->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, c->init->pidfd, SIGKILL, NULL, 0);
		if (c->cg_made) {
			struct cv_error err;
			cgroup_kill(&c->cg, &err);
		}
		/* The init is the engine's child: wait (bounded) until it has
		 * died, without reaping it. */
		if (c->init && c->init->pidfd >= 0) {
			struct pollfd p = { .fd = c->init->pidfd, .events = POLLIN };
			while (poll(&p, 1, 1000) < 0 && errno == EINTR)
				;
		}
	}
	stop_scopes(sb);
	usage_shutdown(); /* its timer reads sb->root */
	seccheck_shutdown(); /* its listeners and tracked tasks name the containers */
	port_forward_shutdown();
	while (!list_empty(&sb->containers))
		container_free(container_of(list_first(&sb->containers), struct container, link));
	if (sb->sigfd >= 0) {
		ev_io_stop(core_loop(), &sb->sig_w);
		close(sb->sigfd);
	}
	exit_source_close();
	if (sb->netns_fd >= 0)
		close(sb->netns_fd);
	free(sb->id);
	free(sb->bundle);
	free(sb);
}

static void report_failure(int sync_fd, const struct cv_error *err)
{
	/* Anything but a single 0 byte is an error message for `create`. */
	const char *msg = err->msg[0] ? err->msg : "sandbox creation failed";
	size_t len = strlen(msg);
	ssize_t w = write(sync_fd, msg, len);
	(void)w;
}

int sandbox_boot(const struct boot_args *a, struct cv_error *err)
{
	int status = -1;
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		cv_errf(err, ENOMEM, "allocating the sandbox");
		report_failure(a->sync_fd, err);
		close(a->sync_fd);
		close(a->ctl_fd);
		return -1;
	}
	sb->sigfd = -1;
	sb->netns_fd = -1;
	sb->net_mode = a->net_mode;
	list_init(&sb->containers);
	sb->id = strdup(a->id);
	sb->bundle = strdup(a->bundle);
	int ctl_fd = a->ctl_fd;

	if (!sb->id || !sb->bundle) {
		cv_errf(err, ENOMEM, "allocating the sandbox");
		goto fail;
	}
	/* Every process boot places in a container's namespaces is forked from
	 * it and, until its execve, still maps boot's binary: non-dumpable, a
	 * process of the container cannot open its /proc/<pid>/exe, mem or fds
	 * (the CVE-2019-5736 pattern; execve of the workload resets it). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		cv_errf(err, errno, "making the sandbox process non-dumpable");
		goto fail;
	}
	if (core_loop_init(err) < 0 || signals_setup(sb, err) < 0 || exit_source_init(err) < 0)
		goto fail;
	if (create_root(sb, a, err) < 0)
		goto fail;
	/* The init has its copies of the caller's stdio; boot's would keep a
	 * reader of `run -d`'s output from ever seeing EOF. */
	if (release_caller_stdio(err) < 0)
		goto fail;

	struct rpc_limits limits;
	rpc_limits_default(&limits);
	sb->rpc = rpc_server_new(core_loop(), ctl_fd, methods_table(), methods_count(), &limits, sb,
				 err);
	ctl_fd = -1; /* taken by rpc_server_new, even on failure */
	if (!sb->rpc)
		goto fail;

	/* A 0 byte then the init's host pid: create reports that pid to the
	 * engine (--pid-file, state.pid). One write, below PIPE_BUF: atomic. */
	char created[1 + sizeof(pid_t)] = { 0 };
	memcpy(created + 1, &sb->root->init->host_pid, sizeof(pid_t));
	if (write(a->sync_fd, created, sizeof(created)) != (ssize_t)sizeof(created))
		LOG(LL_WARN, "writing the sync message: %s", strerror(errno));
	close(a->sync_fd);
	LOG(LL_INFO, "sandbox %s created (root init host pid %d; exit statuses from %s)", sb->id,
	    sb->root->init->host_pid, exit_source_name());

	ev_run(core_loop(), 0);

	status = sb->root->init->state == TASK_EXITED ? sb->root->init->status : (SIGKILL);
	sandbox_free(sb);
	core_loop_destroy();
	return status;

fail:
	LOG(LL_ERROR, "creating sandbox %s: %s", a->id, err->msg);
	/* Before the report: create kills boot once it has read it. */
	stop_scopes(sb);
	report_failure(a->sync_fd, err);
	close(a->sync_fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	sandbox_free(sb);
	core_loop_destroy();
	return -1;
}

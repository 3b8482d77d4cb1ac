/* The exec spawner's processes and their protocol (kernel/spawner.h):
 * the spawner itself, the intermediates it forks, and boot's side of
 * both sockets. The queue on boot's loop is kernel/spawner_queue.c. */
#include "kernel/spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fdsend.h"
#include "core/util.h"
#include "kernel/spawn_internal.h"
#include "kernel/spawn_wire.h"

/* The spawner's answer to "one more": the intermediate's pid, or why
 * there is none. Its pidfd and request socket ride along (SCM_RIGHTS). */
struct spawner_answer {
	int32_t pid;
	int32_t err_no;
};

/* Boot's scheduling policy, saved by the spawner before it leaves it (see
 * spawner_main) so that each intermediate goes back to it. */
static struct {
	int policy;
	struct sched_param param;
} boot_sched;

/* A request carries the packed arguments, the report channel, exec_fd
 * and the guest fds. */
#define SPAWNER_REQ_MAX_FDS (3 + 128)

static void wait_gone(int pidfd)
{
	siginfo_t si;
	while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
		;
}

static void kill_and_reap(int pidfd)
{
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	wait_gone(pidfd);
}

/* The intermediate: waits for its exec, then does what
 * spawn_intermediate_main says. EOF means it will not be used. */
__attribute__((noreturn)) static void mid_main(int req_fd, const struct spawner_conf *conf)
{
	char b;
	int fds[SPAWNER_REQ_MAX_FDS];
	int nfds;
	ssize_t n = fd_recvmsg(req_fd, &b, 1, fds, ARRAY_SIZE(fds), &nfds, 0);
	if (n <= 0)
		_exit(0);
	/* Without a report channel there is nobody to tell: boot sees no pid
	 * and no report, and says so. */
	if (nfds < 2)
		_exit(1);
	int memfd = fds[0], ctl = fds[1];
	struct cv_error e;
	cv_error_reset(&e);
	struct spawn_exec_args a;
	memset(&a, 0, sizeof(a));
	void *storage = NULL;
	if (spawn_wire_unpack(memfd, &a, &storage, &e) < 0)
		spawn_child_fail(ctl, &e);
	close(memfd);
	size_t want = 2 + (a.exec_fd >= 0 ? 1 : 0) + a.nfds;
	if ((size_t)nfds != want) {
		cv_errf(&e, 0, "the exec request carried %d fds, expected %zu", nfds, want);
		spawn_child_fail(ctl, &e);
	}
	a.exec_fd = a.exec_fd >= 0 ? fds[2] : -1;
	a.fds = fds + 2 + (a.exec_fd >= 0 ? 1 : 0);
	a.init_pidfd = conf->init_pidfd;
	a.ns_flags = conf->ns_flags;
	a.cg = conf->cg;
	a.spec = conf->spec;
	spawn_intermediate_main(&a, ctl, req_fd);
}

/* Forks one intermediate (a child of boot) and answers with it. */
static void spawner_fork_one(int sock, const struct spawner_conf *conf, pid_t boot)
{
	struct spawner_answer ans = { .pid = -1, .err_no = 0 };
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		ans.err_no = errno;
		fd_sendmsg(sock, &ans, sizeof(ans), NULL, 0, 0);
		return;
	}
	int pidfd = -1;
	/* CLONE_PARENT: boot's child, so boot reaps it and, through the same
	 * flag once more, the target. exit_signal 0 takes ours (SIGCHLD). */
	pid_t pid = spawn_clone3(CLONE_PARENT | CLONE_PIDFD, &pidfd, -1, 0);
	if (pid == 0) {
		close(sock);
		close(sv[0]);
		prctl(PR_SET_NAME, "cvisor-exec", 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != boot)
			_exit(0);
		/* Back to boot's policy before anything else: the intermediate's
		 * work after a request is on the exec's critical path, and the
		 * target inherits its policy. Leaving SCHED_IDLE takes
		 * CAP_SYS_NICE, which it still has here; without it the exec
		 * would run with the wrong priority, so it refuses to serve. */
		if (sched_setscheduler(0, boot_sched.policy, &boot_sched.param) < 0)
			_exit(1);
		/* Ahead of need, so that serving the exec takes no faults. */
		spawn_prefault_text();
		mid_main(sv[1], conf);
	}
	close(sv[1]);
	if (pid < 0) {
		ans.err_no = errno;
		close(sv[0]);
		fd_sendmsg(sock, &ans, sizeof(ans), NULL, 0, 0);
		return;
	}
	ans.pid = pid;
	int out[2] = { pidfd, sv[0] };
	ssize_t n = fd_sendmsg(sock, &ans, sizeof(ans), out, 2, 0);
	close(pidfd);
	close(sv[0]);
	/* Boot is gone: the intermediate sees EOF and leaves too. */
	if (n < 0)
		_exit(0);
}

__attribute__((noreturn)) static void spawner_main(int sock, const struct spawner_conf *conf,
						   pid_t boot)
{
	prctl(PR_SET_NAME, "cvisor-spawner", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != boot)
		_exit(0);
	/* Boot's clients, listener, epoll and signalfd are not ours: a copy
	 * left open would keep a client from seeing its connection close. */
	int keep[4 + CGROUP_V1_MAX];
	size_t k = 0;
	keep[k++] = sock;
	keep[k++] = conf->init_pidfd;
	if (conf->cg) {
		keep[k++] = conf->cg->v2_dirfd;
		for (int i = 0; i < conf->cg->n_v1 && i < CGROUP_V1_MAX; i++)
			keep[k++] = conf->cg->v1_procs_fd[i];
	}
	child_close_fds_except(keep, k);
	/* Forking ahead of need is never urgent: at SCHED_IDLE the spawner
	 * takes a CPU only when boot, the clients and the containers do not
	 * want it, so that its forks do not delay boot's answers on a small
	 * machine. Each intermediate goes back to boot's policy at birth. */
	boot_sched.policy = sched_getscheduler(0);
	if (boot_sched.policy < 0 || sched_getparam(0, &boot_sched.param) < 0)
		_exit(1);
	const struct sched_param idle = { .sched_priority = 0 };
	if (sched_setscheduler(0, SCHED_IDLE, &idle) < 0)
		_exit(1);
	for (;;) {
		char b;
		ssize_t n = recv(sock, &b, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		spawner_fork_one(sock, conf, boot);
	}
}

int spawner_proc_start(const struct spawner_conf *conf, struct spawner_proc *out,
		       struct cv_error *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return cv_errf(err, errno, "creating the exec spawner's socket");
	cleanup_close int mine = sv[0];
	cleanup_close int theirs = sv[1];
	if (fcntl(mine, F_SETFL, O_NONBLOCK) < 0)
		return cv_errf(err, errno, "making the exec spawner's socket non-blocking");
	pid_t boot = getpid();
	int pidfd = -1;
	pid_t pid = spawn_clone3(CLONE_PIDFD, &pidfd, -1, SIGCHLD);
	if (pid < 0)
		return cv_errf(err, errno, "forking the exec spawner");
	if (pid == 0) {
		close(mine);
		spawner_main(theirs, conf, boot);
	}
	out->pid = pid;
	out->pidfd = pidfd;
	out->sock = steal_fd(&mine);
	return 0;
}

int spawner_proc_ask(struct spawner_proc *sp, struct cv_error *err)
{
	char b = 1;
	ssize_t n;
	do
		n = send(sp->sock, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return 0;
	return cv_errf(err, n < 0 ? errno : EIO, "asking the exec spawner for an intermediate");
}

int spawner_proc_recv(struct spawner_proc *sp, struct spawner_mid *mid, struct cv_error *err)
{
	struct spawner_answer ans;
	int fds[2];
	int nfds;
	ssize_t n = fd_recvmsg(sp->sock, &ans, sizeof(ans), fds, 2, &nfds, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return cv_errf(err, ECHILD, "the exec spawner (pid %d) has exited", sp->pid);
	if (n != (ssize_t)sizeof(ans) || (ans.err_no == 0 && nfds != 2)) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return cv_errf(err, EPROTO, "the exec spawner sent a malformed answer");
	}
	if (ans.err_no != 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return cv_errf(err, ans.err_no, "forking an exec intermediate");
	}
	/* Boot reads the target's pid from it without blocking. */
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(fds[1]);
		kill_and_reap(fds[0]);
		close(fds[0]);
		return cv_errf(err, e, "making the exec request socket non-blocking");
	}
	mid->pid = ans.pid;
	mid->pidfd = fds[0];
	mid->req_fd = fds[1];
	return 1;
}

void spawner_proc_stop(struct spawner_proc *sp)
{
	if (sp->pidfd >= 0) {
		kill_and_reap(sp->pidfd);
		close(sp->pidfd);
	}
	/* Answers it sent before it died name intermediates that are our
	 * children: reap them rather than leave zombies. */
	if (sp->sock >= 0) {
		struct spawner_mid mid;
		struct cv_error err;
		int r;
		while ((r = spawner_proc_recv(sp, &mid, &err)) != 0) {
			if (r == 1)
				spawner_mid_discard(&mid);
			else if (err.code == ECHILD)
				break;
		}
		close(sp->sock);
	}
	sp->sock = sp->pidfd = -1;
	sp->pid = -1;
}

void spawner_mid_discard(struct spawner_mid *mid)
{
	if (mid->req_fd >= 0)
		close(mid->req_fd);
	if (mid->pidfd >= 0) {
		kill_and_reap(mid->pidfd);
		close(mid->pidfd);
	}
	mid->req_fd = mid->pidfd = -1;
	mid->pid = -1;
}

int spawner_mid_send(struct spawner_mid *mid, const struct spawner_packed *pk,
		     struct spawn_pending *p, struct cv_error *err)
{
	if (pk->nfds > SPAWNER_REQ_MAX_FDS - 3) {
		spawner_mid_discard(mid);
		return cv_errf(err, EMFILE, "too many fds for one exec (%zu)", pk->nfds);
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		int e = errno;
		spawner_mid_discard(mid);
		return cv_errf(err, e, "creating the exec report socket");
	}
	cleanup_close int ctl = sv[0];
	cleanup_close int ctl_child = sv[1];
	if (fcntl(ctl, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		spawner_mid_discard(mid);
		return cv_errf(err, e, "making the exec report socket non-blocking");
	}
	int fds[SPAWNER_REQ_MAX_FDS];
	size_t n = 0;
	fds[n++] = pk->memfd;
	fds[n++] = ctl_child;
	if (pk->exec_fd >= 0)
		fds[n++] = pk->exec_fd;
	for (size_t i = 0; i < pk->nfds; i++)
		fds[n++] = pk->fds[i];
	char b = 1;
	/* The socket is empty (one request per intermediate): it never blocks. */
	if (fd_sendmsg(mid->req_fd, &b, 1, fds, n, MSG_DONTWAIT) != 1) {
		int e = errno;
		spawner_mid_discard(mid);
		return cv_errf(err, e, "handing the exec to its intermediate");
	}
	p->mid = mid->pid;
	p->mid_pidfd = mid->pidfd;
	p->pid_rfd = mid->req_fd;
	p->ctl_fd = steal_fd(&ctl);
	mid->pid = -1;
	mid->pidfd = mid->req_fd = -1;
	return 0;
}

int spawn_exec(const struct spawn_exec_args *a, struct spawned *out, struct cv_error *err)
{
	if (!a->argv || !a->argv[0])
		return cv_errf(err, 0, "argv must not be empty");
	const struct spawner_conf conf = { a->init_pidfd, a->ns_flags, a->cg, a->spec };
	struct spawner_proc sp;
	if (spawner_proc_start(&conf, &sp, err) < 0)
		return -1;
	struct spawner_mid mid;
	int r = spawner_proc_ask(&sp, err);
	while (r == 0) {
		struct pollfd pf = { .fd = sp.sock, .events = POLLIN };
		if (poll(&pf, 1, -1) < 0 && errno != EINTR) {
			r = cv_errf(err, errno, "waiting for the exec spawner");
			break;
		}
		r = spawner_proc_recv(&sp, &mid, err);
	}
	/* The intermediate is boot's (our) child: it outlives the spawner. */
	spawner_proc_stop(&sp);
	if (r < 0)
		return -1;
	int memfd;
	if (spawn_wire_pack(a, &memfd, err) < 0) {
		spawner_mid_discard(&mid);
		return -1;
	}
	const struct spawner_packed pk = { memfd, a->fds, a->nfds, a->exec_fd };
	struct spawn_pending p;
	r = spawner_mid_send(&mid, &pk, &p, err);
	close(memfd);
	if (r < 0)
		return -1;
	struct pollfd pf = { .fd = p.mid_pidfd, .events = POLLIN };
	while (poll(&pf, 1, -1) < 0 && errno == EINTR)
		;
	return spawn_exec_finish(&p, out, err);
}

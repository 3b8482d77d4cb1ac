/* Boot's short-lived helpers (kernel/helper_proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/helper_proc.h"
#include "kernel/spawn_internal.h" /* spawn_clone3 */

int helper_proc_start(helper_fn fn, void *arg, struct helper_proc *h, struct cv_error *err)
{
	h->pid = -1;
	h->pidfd = h->report_fd = -1;
	int rp[2];
	if (pipe2(rp, O_CLOEXEC) < 0)
		return cv_errf(err, errno, "creating the helper's report pipe");
	/* SIGCHLD as fork() would: boot reaps through the pidfd either way. */
	pid_t pid = spawn_clone3(CLONE_PIDFD, &h->pidfd, -1, SIGCHLD);
	if (pid == 0) {
		close(rp[0]);
		struct cv_error e = { 0 };
		int rc = fn(arg, rp[1], &e);
		if (rc < 0) {
			size_t len = strlen(e.msg);
			if (write(rp[1], e.msg, len) != (ssize_t)len)
				_exit(2);
		}
		_exit(rc < 0 ? 1 : 0);
	}
	int e = errno;
	close(rp[1]);
	if (pid < 0) {
		close(rp[0]);
		return cv_errf(err, e, "starting the helper");
	}
	fcntl(rp[0], F_SETFL, O_NONBLOCK);
	h->pid = pid;
	h->report_fd = rp[0];
	return 0;
}

int helper_proc_reap(const struct helper_proc *h, char skip, const char *what, char *msg,
		     size_t n)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int r = waitid((idtype_t)P_PIDFD, (id_t)h->pidfd, &si, WEXITED | WNOHANG);
	if ((r < 0 && errno == EINTR) || (r == 0 && si.si_pid == 0))
		return 1;
	char buf[CV_ERROR_MAX + 1];
	ssize_t k = read(h->report_fd, buf, sizeof(buf) - 1);
	buf[k > 0 ? k : 0] = '\0';
	const char *text = skip && buf[0] == skip ? buf + 1 : buf;
	snprintf(msg, n, "%s", text);
	bool ok = r == 0 && si.si_code == CLD_EXITED && si.si_status == 0;
	if (!ok && !msg[0])
		snprintf(msg, n, "the %s helper ended abnormally (code %d, status %d)", what,
			 si.si_code, si.si_status);
	return ok ? 0 : -1;
}

void helper_proc_close(struct helper_proc *h)
{
	if (h->pidfd >= 0)
		close(h->pidfd);
	if (h->report_fd >= 0)
		close(h->report_fd);
	h->pidfd = h->report_fd = -1;
}

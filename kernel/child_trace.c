/* The trace filter of a container process (kernel/trace_arm.h): a second
 * seccomp filter beside the spec's, SCMP_ACT_NOTIFY for each armed
 * syscall and ALLOW for the rest. The kernel runs every filter and the
 * most restrictive answer wins (KILL, TRAP, ERRNO outrank USER_NOTIF), so
 * what the spec denies stays denied and only what it lets through reaches
 * boot. Installed while CAP_SYS_ADMIN is still held (no_new_privs is the
 * spec's to choose, so libseccomp must not set it); the listener goes to
 * boot at once and our copy is closed: a dead boot then fails the armed
 * syscalls with ENOSYS instead of hanging them. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "core/fdsend.h"
#include "kernel/spawn_internal.h"
#include "kernel/trace_arm.h"

int child_trace_install(int ctl_fd, struct cv_error *err)
{
	size_t n = trace_arm_count();
	if (n == 0)
		return 0;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return cv_errf(err, ENOMEM, "building the trace filter");
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, trace_arm_list()[i], 0);
	if (r != 0) {
		seccomp_release(ctx);
		return cv_errf(err, -r, "building the trace filter");
	}
	/* From here until boot holds the listener nothing may make an armed
	 * syscall: the send below is not one. */
	r = seccomp_load(ctx);
	int fd = r == 0 ? seccomp_notify_fd(ctx) : -1;
	seccomp_release(ctx);
	if (r != 0)
		return cv_errf(err, -r, "loading the trace filter");
	if (fd < 0)
		return cv_errf(err, 0, "the trace filter gave no listener");
	struct spawn_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.type = SPAWN_LISTENER;
	ssize_t s = fd_sendmsg(ctl_fd, &rep, offsetof(struct spawn_report, text) + 1, &fd, 1, 0);
	int e = errno;
	close(fd);
	if (s < 0)
		return cv_errf(err, e, "handing the trace listener to the sandbox");
	return 0;
}

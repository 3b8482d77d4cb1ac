/* Exit statuses of processes boot did not fork as its own children
 * (kernel/exit_source.h): pidfd info with a zombie read, or the process
 * event connector. */
#include "kernel/exit_source.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "kernel/proc_connector.h"
#include "kernel/procfs.h"

/* Linux 6.15 UAPI (linux/pidfd.h); Debian 12's headers predate it. */
struct exit_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
	uint32_t coredump_mask;
	uint32_t spare1;
};
#define EXIT_PIDFD_GET_INFO _IOWR(0xFF, 11, struct exit_pidfd_info)
#define EXIT_PIDFD_INFO_EXIT (1ULL << 3)

/* Room for a burst of host-wide exits between two loop iterations. */
#define CONNECTOR_RCVBUF (4 << 20)

struct watched {
	pid_t pid;
	int status;
	bool exited;
};

static struct {
	enum exit_source_kind kind;
	int nl_fd;
	ev_io nl_w;
	bool lost; /* the connector's queue overflowed at least once */
	struct watched *w;
	size_t n, cap;
} xs = { .nl_fd = -1 };

enum exit_source_kind exit_source_kind(void)
{
	return xs.kind;
}

const char *exit_source_name(void)
{
	return xs.kind == EXIT_SOURCE_PIDFD ? "pidfd" : "proc-connector";
}

/* 1: the status is in *info; 0: not recorded yet; 2: reaped, the status
 * not published yet (ask again); -1: errno. */
static int pidfd_info_exit(int pidfd, int *wstatus)
{
	struct exit_pidfd_info info;
	memset(&info, 0, sizeof(info));
	info.mask = EXIT_PIDFD_INFO_EXIT;
	if (ioctl(pidfd, EXIT_PIDFD_GET_INFO, &info) < 0) {
		/* Reaped, its exit information not published yet: the ioctl
		 * says ESRCH for a moment (seen on 6.18 about once in 50
		 * inits). */
		return errno == ESRCH ? 2 : -1;
	}
	if (!(info.mask & EXIT_PIDFD_INFO_EXIT))
		return 0;
	*wstatus = info.exit_code;
	return 1;
}

/* PIDFD_GET_INFO exists since 6.13, PIDFD_INFO_EXIT since 6.15: an older
 * kernel answers the ioctl but never with an exit status. */
static bool kernel_has_pidfd_exit_info(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 6 || (major == 6 && minor >= 15);
}

static bool pidfd_info_supported(void)
{
	if (!kernel_has_pidfd_exit_info())
		return false;
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return false;
	int st;
	bool ok = pidfd_info_exit(fd, &st) >= 0;
	close(fd);
	return ok;
}

static struct watched *find_watched(pid_t pid)
{
	for (size_t i = 0; i < xs.n; i++)
		if (xs.w[i].pid == pid)
			return &xs.w[i];
	return NULL;
}

static void on_event(const struct proc_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->what != PROC_EVENT_EXIT)
		return;
	/* One event per thread: the leader's carries the process's status. */
	if (ev->event_data.exit.process_pid != ev->event_data.exit.process_tgid)
		return;
	struct watched *w = find_watched(ev->event_data.exit.process_pid);
	if (w && !w->exited) {
		w->exited = true;
		w->status = (int)ev->event_data.exit.exit_code;
	}
}

static void connector_drain(void)
{
	bool lost = false;
	proc_connector_drain(xs.nl_fd, 0, on_event, NULL, &lost);
	if (lost && !xs.lost)
		LOG(LL_WARN, "process events were lost (the connector's queue "
			     "overflowed); exit statuses may be unknown");
	xs.lost = xs.lost || lost;
}

static void on_connector(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	connector_drain();
}

static int connector_open(struct cv_error *err)
{
	int fd = proc_connector_open(CONNECTOR_RCVBUF, err);
	if (fd < 0)
		return -1;
	xs.nl_fd = fd;
	ev_io_init(&xs.nl_w, on_connector, fd, EV_READ);
	ev_io_start(core_loop(), &xs.nl_w);
	return 0;
}

int exit_source_init(struct cv_error *err)
{
	const char *force = getenv("CVISOR_EXIT_SOURCE");
	bool want_connector = force && strcmp(force, "proc-connector") == 0;
	if (force && !want_connector && strcmp(force, "pidfd") != 0)
		return cv_errf(err, 0, "CVISOR_EXIT_SOURCE=\"%s\": expected \"pidfd\" or "
				       "\"proc-connector\"", force);
	if (!want_connector && pidfd_info_supported()) {
		xs.kind = EXIT_SOURCE_PIDFD;
		return 0;
	}
	if (force && !want_connector)
		return cv_errf(err, 0, "CVISOR_EXIT_SOURCE=pidfd: this kernel has no PIDFD_GET_INFO "
				       "(Linux 6.15+)");
	xs.kind = EXIT_SOURCE_PROC_CONNECTOR;
	return connector_open(err);
}

void exit_source_close(void)
{
	if (xs.nl_fd >= 0) {
		ev_io_stop(core_loop(), &xs.nl_w);
		close(xs.nl_fd);
		xs.nl_fd = -1;
	}
	free(xs.w);
	xs.w = NULL;
	xs.n = xs.cap = 0;
	xs.lost = false;
}

int exit_source_watch(pid_t pid, struct cv_error *err)
{
	if (xs.kind != EXIT_SOURCE_PROC_CONNECTOR || find_watched(pid))
		return 0;
	if (xs.n == xs.cap) {
		size_t cap = xs.cap ? xs.cap * 2 : 8;
		struct watched *w = realloc(xs.w, cap * sizeof(*w));
		if (!w)
			return cv_errf(err, ENOMEM, "watching process %d", (int)pid);
		xs.w = w;
		xs.cap = cap;
	}
	xs.w[xs.n++] = (struct watched){ .pid = pid };
	return 0;
}

void exit_source_unwatch(pid_t pid)
{
	struct watched *w = find_watched(pid);
	if (w)
		*w = xs.w[--xs.n];
}

static int status_from_pidfd(int pidfd, pid_t pid, int *wstatus, struct cv_error *err)
{
	int r = pidfd_info_exit(pidfd, wstatus);
	if (r == 2)
		return 0; /* reaped, the status on its way: ask again */
	if (r != 0)
		return r > 0 ? 1 : cv_errf(err, errno, "reading the exit status of process %d",
					   (int)pid);
	/* Exited (the pidfd is readable) but not reaped yet: a zombie. */
	struct proc_stat st;
	bool zombie = procfs_read_stat(pid, &st) == 0 && (st.state == 'Z' || st.state == 'X') &&
		      st.exit_code >= 0;
	/* Reaped meanwhile: the read above may have been of a reused pid,
	 * but the pidfd now has the status. */
	r = pidfd_info_exit(pidfd, wstatus);
	if (r == 2)
		return 0; /* reaped meanwhile: the zombie read may be of a reused pid */
	if (r != 0)
		return r > 0 ? 1 : cv_errf(err, errno, "reading the exit status of process %d",
					   (int)pid);
	if (!zombie)
		return 0; /* still being torn down: ask again */
	*wstatus = st.exit_code;
	return 1;
}

int exit_source_status(int pidfd, pid_t pid, int *wstatus, struct cv_error *err)
{
	if (xs.kind == EXIT_SOURCE_PIDFD)
		return status_from_pidfd(pidfd, pid, wstatus, err);
	/* The exit event is queued before the pidfd turns readable. */
	connector_drain();
	struct watched *w = find_watched(pid);
	if (w && w->exited) {
		*wstatus = w->status;
		return 1;
	}
	if (xs.lost)
		return cv_errf(err, 0, "the exit status of process %d was lost: the kernel's "
				       "process-event queue overflowed", (int)pid);
	return 0;
}

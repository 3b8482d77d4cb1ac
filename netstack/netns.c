/* Entering a network namespace for as long as it takes to make one object
 * there (netstack/netns.h). */
#include "netstack/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

int netns_current(struct cv_error *err)
{
	/* Our own /proc entry: no path of a container is resolved. */
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "opening the current network namespace");
	return fd;
}

static void go_back(int home)
{
	if (setns(home, CLONE_NEWNET) < 0) {
		LOG(LL_ERROR, "returning to the sandbox's network namespace: %s; aborting",
		    strerror(errno));
		abort();
	}
	close(home);
}

/* Runs make() inside ns_fd's namespace; returns its fd or -1 with err. */
static int in_netns(int ns_fd, int (*make)(void *d, struct cv_error *err), void *d,
		    struct cv_error *err)
{
	int home = netns_current(err);
	if (home < 0)
		return -1;
	if (setns(ns_fd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(home);
		return cv_errf(err, e, "entering the network namespace");
	}
	int fd = make(d, err);
	go_back(home);
	return fd;
}

struct sock_args {
	int domain, type, proto;
};

static int make_socket(void *d, struct cv_error *err)
{
	struct sock_args *a = d;
	int fd = socket(a->domain, a->type | SOCK_CLOEXEC, a->proto);
	if (fd < 0)
		return cv_errf(err, errno, "creating a socket in the network namespace");
	return fd;
}

int netns_socket(int ns_fd, int domain, int type, int proto, struct cv_error *err)
{
	struct sock_args a = { domain, type, proto };
	return in_netns(ns_fd, make_socket, &a, err);
}

static int make_current(void *d, struct cv_error *err)
{
	(void)d;
	return netns_current(err);
}

int netns_of_pidfd(int pidfd, struct cv_error *err)
{
	return in_netns(pidfd, make_current, NULL, err);
}

int netns_enter(int ns_fd, int *home, struct cv_error *err)
{
	*home = netns_current(err);
	if (*home < 0)
		return -1;
	if (setns(ns_fd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(*home);
		*home = -1;
		return cv_errf(err, e, "entering the network namespace");
	}
	return 0;
}

void netns_leave(int home)
{
	go_back(home);
}

int netns_new(struct cv_error *err)
{
	int home = netns_current(err);
	if (home < 0)
		return -1;
	if (unshare(CLONE_NEWNET) < 0) {
		int e = errno;
		close(home);
		return cv_errf(err, e, "creating a network namespace");
	}
	int fd = netns_current(err);
	go_back(home);
	return fd;
}

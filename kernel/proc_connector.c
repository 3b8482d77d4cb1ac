/* Opening and reading the process-event connector (kernel/proc_connector.h). */
#include "kernel/proc_connector.h"

#include <errno.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTOR_MSG_MAX 4096

int proc_connector_open(int rcvbuf, struct cv_error *err)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (fd < 0)
		return cv_errf(err, errno, "opening the process-event connector");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "binding the process-event connector");
	}
	/* nlmsghdr, cn_msg, then the op: laid out by hand (cn_msg ends in a
	 * flexible array, so it cannot sit inside a struct). */
	char req[NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op))]
		__attribute__((aligned(NLMSG_ALIGNTO)));
	memset(req, 0, sizeof(req));
	struct nlmsghdr nl = { .nlmsg_len = sizeof(req), .nlmsg_type = NLMSG_DONE,
			       .nlmsg_pid = 0 };
	struct cn_msg cn = { .id = { .idx = CN_IDX_PROC, .val = CN_VAL_PROC },
			     .len = sizeof(enum proc_cn_mcast_op) };
	enum proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
	memcpy(req, &nl, sizeof(nl));
	memcpy(req + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(req + NLMSG_HDRLEN + sizeof(cn), &op, sizeof(op));
	if (send(fd, req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		int e = errno;
		close(fd);
		return cv_errf(err, e, "subscribing to process events");
	}
	return fd;
}

bool proc_connector_drain(int fd, size_t max, proc_event_fn fn, void *ctx, bool *lost)
{
	char buf[CONNECTOR_MSG_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (size_t k = 0; max == 0 || k < max; k++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				*lost = true;
				continue;
			}
			return false; /* EAGAIN: drained */
		}
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type != NLMSG_DONE ||
			    nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg)))
				continue;
			struct cn_msg *cm = NLMSG_DATA(nh);
			if (cm->id.idx != CN_IDX_PROC || cm->id.val != CN_VAL_PROC ||
			    cm->len < sizeof(struct proc_event) ||
			    nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(struct proc_event)))
				continue;
			/* cm->data sits 4 bytes off the event's 8-byte alignment:
			 * copy it out rather than read through a misaligned pointer. */
			struct proc_event ev;
			memcpy(&ev, cm->data, sizeof(ev));
			fn(&ev, ctx);
		}
	}
	return true;
}

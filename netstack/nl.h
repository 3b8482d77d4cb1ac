#pragma once
/* A small rtnetlink client (docs/DESIGN.md, "Network"): builds requests
 * into a fixed buffer, sends them with NLM_F_ACK and reads the answer.
 * Hand-written rather than libmnl: Debian's libmnl-dev ships no static
 * archive and the binary is linked statically; the handful of messages
 * the sandbox needs (links, addresses, neighbours, routes) fit in a
 * page of code.
 *
 * A netlink socket acts on the network namespace it was created in
 * (netstack/netns.h makes one in another namespace). Knows nothing about
 * containers. Calls are blocking but local to the kernel: microseconds. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "core/err.h"

/* One request: big enough for a link with a few attributes. */
#define NL_MSG_MAX 1024

struct nl_msg {
	union {
		uint32_t align_;
		char buf[NL_MSG_MAX];
	};
	size_t len;
	bool overflow; /* an attribute did not fit: the message is refused when sent */
};

/* Starts a request: a struct nlmsghdr of `type` with `flags` (NLM_F_REQUEST
 * and NLM_F_ACK are added) followed by the family header `hdr`. */
void nl_msg_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *hdr, size_t hdr_len);
/* Appends one attribute (padded to 4 bytes). */
void nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len);
void nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v);
void nl_put_str(struct nl_msg *m, uint16_t type, const char *s); /* with its NUL */
/* The family header of a message built by nl_msg_init. */
void *nl_msg_hdr(struct nl_msg *m);

/* An rtnetlink socket in the current network namespace; the caller closes it. */
int nl_open(struct cv_error *err);

/* The answer to request `seq` in buf[0..len): 0 when it is an ACK, the
 * positive errno of an error answer, -1 when buf holds no answer to seq
 * (more to read). Parsing alone, for the unit tests. */
int nl_parse_ack(const void *buf, size_t len, uint32_t seq, int *err_out);

/* Sends m and waits for its ACK. An error answer fails with its errno and
 * `what` in the message ("adding 10.0.0.2/24 to eth0: File exists"). */
int nl_request(int fd, struct nl_msg *m, const char *what, struct cv_error *err);

/* The index of the link called name, 0 when there is none. */
int nl_link_index(int fd, const char *name, int *index, struct cv_error *err);
/* The name of link index (name must hold IFNAMSIZ); ENODEV when there is none. */
int nl_link_name(int fd, int index, char *name, struct cv_error *err);
/* The link of an RTM_NEWLINK answer in buf[0..len) (one message):
 * its index and name. 0, or -1 when it is not one. For the unit tests. */
int nl_parse_link(const void *buf, size_t len, int *index, char *name);

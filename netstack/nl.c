/* rtnetlink requests and their answers (netstack/nl.h). */
#include "netstack/nl.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One read of answers: a link dump entry is well under a page, and the
 * kernel never splits a message across reads. */
#define NL_RECV_MAX 16384

static uint32_t next_seq = 1;

void nl_msg_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *hdr, size_t hdr_len)
{
	memset(m, 0, sizeof(*m));
	struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
	h->nlmsg_type = type;
	h->nlmsg_flags = (uint16_t)(flags | NLM_F_REQUEST | NLM_F_ACK);
	m->len = NLMSG_HDRLEN;
	if (hdr_len > sizeof(m->buf) - m->len) {
		m->overflow = true;
		return;
	}
	memcpy(m->buf + m->len, hdr, hdr_len);
	m->len += NLMSG_ALIGN(hdr_len);
	h->nlmsg_len = (uint32_t)m->len;
}

void *nl_msg_hdr(struct nl_msg *m)
{
	return m->buf + NLMSG_HDRLEN;
}

void nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
	size_t need = RTA_SPACE(len);
	if (m->overflow || need > sizeof(m->buf) - m->len || RTA_LENGTH(len) > UINT16_MAX) {
		m->overflow = true;
		return;
	}
	struct rtattr *a = (struct rtattr *)(m->buf + m->len);
	a->rta_type = type;
	a->rta_len = (uint16_t)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	memset((char *)RTA_DATA(a) + len, 0, need - RTA_LENGTH(len));
	m->len += need;
	((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
}

void nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v)
{
	nl_put(m, type, &v, sizeof(v));
}

void nl_put_str(struct nl_msg *m, uint16_t type, const char *s)
{
	nl_put(m, type, s, strlen(s) + 1);
}

int nl_open(struct cv_error *err)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return cv_errf(err, errno, "opening an rtnetlink socket");
	/* Errors come back as the answer to our request: no need for the
	 * kernel to echo whole requests in them. */
	int one = 1;
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return fd;
}

/* Calls fn for every message of buf; stops at the end or when fn returns
 * non-zero (its value is returned). -2 when buf is malformed. */
static int each_msg(const void *buf, size_t len, int (*fn)(const struct nlmsghdr *h, void *d),
		    void *d)
{
	const struct nlmsghdr *h = buf;
	size_t left = len;
	while (left >= sizeof(*h)) {
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > left)
			return -2;
		int r = fn(h, d);
		if (r)
			return r;
		size_t step = NLMSG_ALIGN(h->nlmsg_len);
		if (step >= left)
			break;
		left -= step;
		h = (const struct nlmsghdr *)((const char *)h + step);
	}
	return 0;
}

struct ack_scan {
	uint32_t seq;
	int err;
};

static int ack_of(const struct nlmsghdr *h, void *d)
{
	struct ack_scan *a = d;
	if (h->nlmsg_seq != a->seq || h->nlmsg_type != NLMSG_ERROR)
		return 0;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return -2;
	const struct nlmsgerr *e = NLMSG_DATA(h);
	a->err = e->error < 0 ? -e->error : e->error;
	return 1;
}

int nl_parse_ack(const void *buf, size_t len, uint32_t seq, int *err_out)
{
	struct ack_scan a = { .seq = seq, .err = 0 };
	int r = each_msg(buf, len, ack_of, &a);
	if (r == 1) {
		*err_out = a.err;
		return 0;
	}
	return r == -2 ? -2 : -1;
}

int nl_parse_link(const void *buf, size_t len, int *index, char *name)
{
	const struct nlmsghdr *h = buf;
	if (len < sizeof(*h) || h->nlmsg_len > len || h->nlmsg_type != RTM_NEWLINK ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		return -1;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	*index = ifi->ifi_index;
	name[0] = '\0';
	int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
		if (a->rta_type != IFLA_IFNAME)
			continue;
		size_t n = RTA_PAYLOAD(a);
		if (n == 0 || n > IFNAMSIZ)
			return -1;
		memcpy(name, RTA_DATA(a), n);
		name[n - 1] = '\0';
	}
	return 0;
}

struct link_scan {
	uint32_t seq;
	bool found;
	int index;
	char name[IFNAMSIZ];
};

static int link_of(const struct nlmsghdr *h, void *d)
{
	struct link_scan *s = d;
	if (h->nlmsg_seq != s->seq || h->nlmsg_type != RTM_NEWLINK)
		return 0;
	if (nl_parse_link(h, h->nlmsg_len, &s->index, s->name) == 0)
		s->found = true;
	return 0;
}

/* Sends m and reads until its ACK; answers of type RTM_NEWLINK land in ls
 * (when not NULL). Returns 0 or the positive errno of the answer, -1 with
 * err when the exchange itself failed. */
static int exchange(int fd, struct nl_msg *m, struct link_scan *ls, const char *what,
		    struct cv_error *err)
{
	if (m->overflow)
		return cv_errf(err, EMSGSIZE, "%s: the netlink request does not fit", what);
	struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
	h->nlmsg_seq = next_seq++;
	if (ls)
		ls->seq = h->nlmsg_seq;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	ssize_t w;
	do
		w = sendto(fd, m->buf, m->len, 0, (struct sockaddr *)&to, sizeof(to));
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)m->len)
		return cv_errf(err, w < 0 ? errno : EIO, "%s: sending the netlink request", what);
	static char buf[NL_RECV_MAX] __attribute__((aligned(4)));
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cv_errf(err, n < 0 ? errno : EIO, "%s: reading the netlink answer", what);
		if (ls)
			each_msg(buf, (size_t)n, link_of, ls);
		int e = 0;
		int r = nl_parse_ack(buf, (size_t)n, h->nlmsg_seq, &e);
		if (r == 0)
			return e;
		if (r == -2)
			return cv_errf(err, EBADMSG, "%s: malformed netlink answer", what);
	}
}

int nl_request(int fd, struct nl_msg *m, const char *what, struct cv_error *err)
{
	int r = exchange(fd, m, NULL, what, err);
	if (r > 0)
		return cv_errf(err, r, "%s", what);
	return r;
}

static int get_link(int fd, int index, const char *name, struct link_scan *ls,
		    struct cv_error *err)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	struct nl_msg m;
	nl_msg_init(&m, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	if (name)
		nl_put_str(&m, IFLA_IFNAME, name);
	memset(ls, 0, sizeof(*ls));
	int r = exchange(fd, &m, ls, "looking up a link", err);
	if (r < 0)
		return -1;
	if (r == ENODEV || !ls->found) {
		ls->found = false;
		return 0;
	}
	if (r > 0)
		return cv_errf(err, r, "looking up link %s", name ? name : "by index");
	return 0;
}

int nl_link_index(int fd, const char *name, int *index, struct cv_error *err)
{
	struct link_scan ls;
	if (strlen(name) >= IFNAMSIZ) {
		*index = 0;
		return 0;
	}
	if (get_link(fd, 0, name, &ls, err) < 0)
		return -1;
	*index = ls.found ? ls.index : 0;
	return 0;
}

int nl_link_name(int fd, int index, char *name, struct cv_error *err)
{
	struct link_scan ls;
	if (get_link(fd, index, NULL, &ls, err) < 0)
		return -1;
	if (!ls.found)
		return cv_errf(err, ENODEV, "no link with index %d", index);
	memcpy(name, ls.name, IFNAMSIZ);
	return 0;
}

/* Unit tests for netstack/: rtnetlink message building and parsing,
 * address text and masks, links configured in a new network namespace,
 * and the splice relay on the loop. */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/loop.h"
#include "netstack/ip.h"
#include "netstack/link.h"
#include "netstack/netns.h"
#include "netstack/nl.h"
#include "netstack/relay.h"
#include "test/unit/unit.h"

TEST(test_nl_msg_layout)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = 7 };
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	nl_put_u32(&m, IFLA_MTU, 1400);
	nl_put_str(&m, IFLA_IFNAME, "eth0"); /* 5 bytes: padded to 8 */
	const struct nlmsghdr *h = (const void *)m.buf;
	CHECK(!m.overflow);
	CHECK(h->nlmsg_type == RTM_NEWLINK);
	CHECK(h->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
	CHECK(h->nlmsg_len == m.len);
	CHECK(m.len == NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifi)) + RTA_SPACE(4) + RTA_SPACE(5));
	CHECK(((struct ifinfomsg *)nl_msg_hdr(&m))->ifi_index == 7);
	const struct rtattr *a = (const void *)(m.buf + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifi)));
	CHECK(a->rta_type == IFLA_MTU && a->rta_len == RTA_LENGTH(4));
	CHECK(*(const uint32_t *)RTA_DATA(a) == 1400);
	a = (const void *)((const char *)a + RTA_SPACE(4));
	CHECK(a->rta_type == IFLA_IFNAME && a->rta_len == RTA_LENGTH(5));
	CHECK(strcmp(RTA_DATA(a), "eth0") == 0);
	/* An attribute past the buffer marks the message, never writes past it. */
	char big[NL_MSG_MAX];
	memset(big, 'x', sizeof(big));
	nl_put(&m, IFLA_IFALIAS, big, sizeof(big));
	CHECK(m.overflow);
	CHECK(h->nlmsg_len == m.len);
}

/* An NLMSG_ERROR answer for seq with error e (negative errno, 0 = ACK). */
static size_t make_err(char *buf, uint32_t seq, int e)
{
	struct nlmsghdr *h = (void *)buf;
	memset(buf, 0, NLMSG_SPACE(sizeof(struct nlmsgerr)));
	h->nlmsg_len = NLMSG_LENGTH(sizeof(struct nlmsgerr));
	h->nlmsg_type = NLMSG_ERROR;
	h->nlmsg_seq = seq;
	((struct nlmsgerr *)NLMSG_DATA(h))->error = e;
	return NLMSG_SPACE(sizeof(struct nlmsgerr));
}

TEST(test_nl_parse_ack)
{
	char buf[256] __attribute__((aligned(4)));
	int e = -1;
	size_t n = make_err(buf, 5, 0);
	CHECK(nl_parse_ack(buf, n, 5, &e) == 0 && e == 0);
	n = make_err(buf, 6, -EEXIST);
	CHECK(nl_parse_ack(buf, n, 6, &e) == 0 && e == EEXIST);
	/* Another request's answer is not ours. */
	CHECK(nl_parse_ack(buf, n, 7, &e) == -1);
	/* Two messages: the second one is the answer. */
	size_t n2 = make_err(buf + n, 9, -ENODEV);
	CHECK(nl_parse_ack(buf, n + n2, 9, &e) == 0 && e == ENODEV);
	/* A length past the buffer is malformed, not read. */
	((struct nlmsghdr *)buf)->nlmsg_len = 4096;
	CHECK(nl_parse_ack(buf, n, 6, &e) == -2);
	((struct nlmsghdr *)buf)->nlmsg_len = 3;
	CHECK(nl_parse_ack(buf, n, 6, &e) == -2);
	/* A truncated error answer. */
	struct nlmsghdr *h = (void *)buf;
	h->nlmsg_len = NLMSG_LENGTH(2);
	h->nlmsg_type = NLMSG_ERROR;
	h->nlmsg_seq = 6;
	CHECK(nl_parse_ack(buf, NLMSG_LENGTH(2), 6, &e) == -2);
}

TEST(test_nl_parse_link)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = 12 };
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	nl_put_u32(&m, IFLA_MTU, 1500);
	nl_put_str(&m, IFLA_IFNAME, "veth9");
	int index = 0;
	char name[IFNAMSIZ];
	CHECK(nl_parse_link(m.buf, m.len, &index, name) == 0);
	CHECK(index == 12);
	CHECK_STR(name, "veth9");
	/* A name longer than IFNAMSIZ is refused. */
	nl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, "a-name-much-longer-than-sixteen");
	CHECK(nl_parse_link(m.buf, m.len, &index, name) == -1);
	/* Not a link message. */
	nl_msg_init(&m, RTM_NEWADDR, 0, &ifi, sizeof(ifi));
	CHECK(nl_parse_link(m.buf, m.len, &index, name) == -1);
}

TEST(test_ip_parse_and_masks)
{
	struct cv_error err;
	struct net_ip ip;
	CHECK(net_ip_parse("10.1.2.3", &ip, "X.IP", &err) == 0);
	CHECK(ip.family == AF_INET && ip.b[0] == 10 && ip.b[3] == 3 && net_ip_len(&ip) == 4);
	CHECK(net_ip_parse("fd00::2", &ip, "X.IP", &err) == 0);
	CHECK(ip.family == AF_INET6 && ip.b[0] == 0xfd && ip.b[15] == 2 && net_ip_len(&ip) == 16);
	CHECK(net_ip_parse("::ffff:192.168.0.1", &ip, "X.IP", &err) == 0);
	CHECK(ip.family == AF_INET && ip.b[0] == 192 && ip.b[3] == 1);
	CHECK(net_ip_parse("10.0.0.300", &ip, "Links[0].Addresses[1].Address", &err) < 0);
	CHECK_STR(err.msg, "Links[0].Addresses[1].Address: \"10.0.0.300\" is not an IP address");
	CHECK(net_ip_parse("", &ip, "G.Gateway", &err) < 0);
	CHECK_STR(err.msg, "G.Gateway: missing IP address");

	int p = -1;
	const uint8_t m24[4] = { 255, 255, 255, 0 }, m0[4] = { 0 }, m32[4] = { 255, 255, 255, 255 };
	const uint8_t m20[4] = { 255, 255, 240, 0 }, hole[4] = { 255, 0, 255, 0 };
	const uint8_t m64[16] = { 255, 255, 255, 255, 255, 255, 255, 255 };
	CHECK(net_mask_prefix(m24, 4, &p, "M", &err) == 0 && p == 24);
	CHECK(net_mask_prefix(m0, 4, &p, "M", &err) == 0 && p == 0);
	CHECK(net_mask_prefix(m32, 4, &p, "M", &err) == 0 && p == 32);
	CHECK(net_mask_prefix(m20, 4, &p, "M", &err) == 0 && p == 20);
	CHECK(net_mask_prefix(m64, 16, &p, "M", &err) == 0 && p == 64);
	CHECK(net_mask_prefix(hole, 4, &p, "R.Mask", &err) < 0);
	CHECK_STR(err.msg, "R.Mask: the mask is not contiguous");
	CHECK(net_mask_prefix(m24, 3, &p, "R.Mask", &err) < 0);
	CHECK_STR(err.msg, "R.Mask: a mask is 4 or 16 bytes, got 3");

	CHECK(net_ip_parse("10.1.2.3", &ip, "X", &err) == 0);
	net_ip_mask(&ip, 20);
	CHECK(ip.b[0] == 10 && ip.b[1] == 1 && ip.b[2] == 0 && ip.b[3] == 0);
	CHECK(!net_ip_is_zero(&ip));
	net_ip_mask(&ip, 0);
	CHECK(net_ip_is_zero(&ip));
}

/* Real rtnetlink in a new network namespace: lo up with an address and a
 * route, links found by name and index, errors carry the errno. */
TEST(test_links_in_new_netns)
{
	struct cv_error err;
	cv_error_reset(&err);
	if (geteuid() != 0)
		SKIP("needs root (creates a network namespace)");
	int ns = netns_new(&err);
	CHECK(ns >= 0);
	if (ns < 0)
		return;
	int nl = netns_socket(ns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, &err);
	CHECK(nl >= 0);
	int lo = 0;
	CHECK(nl_link_index(nl, "lo", &lo, &err) == 0 && lo == 1);
	int none = -1;
	CHECK(nl_link_index(nl, "cvnotthere0", &none, &err) == 0 && none == 0);
	char name[IFNAMSIZ];
	CHECK(nl_link_name(nl, lo, name, &err) == 0);
	CHECK_STR(name, "lo");
	CHECK(nl_link_name(nl, 4242, name, &err) < 0 && err.code == ENODEV);
	CHECK(link_up(nl, lo, "lo", &err) == 0);
	struct net_ip a, dst;
	net_ip_parse("10.77.0.5", &a, "A", &err);
	CHECK(addr_add(nl, lo, "lo", &a, 8, &err) == 0);
	CHECK(addr_add(nl, lo, "lo", &a, 8, &err) == 0); /* again: not an error */
	net_ip_parse("10.9.0.0", &dst, "D", &err);
	CHECK(route_add(nl, lo, "lo", &dst, 16, NULL, 1300, &err) == 0);
	CHECK(link_set(nl, lo, "lo", 1280, NULL, 0, &err) == 0);
	/* A link that is not there: the errno and what was tried. */
	CHECK(link_up(nl, 4242, "ghost", &err) < 0);
	CHECK(strstr(err.msg, "bringing link ghost up: ") == err.msg);
	/* A socket made there binds the namespace's address, one made here
	 * does not: it is a socket of that namespace. */
	int ls = netns_socket(ns, AF_INET, SOCK_STREAM, 0, &err);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	memcpy(&sa.sin_addr, a.b, 4);
	CHECK(bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	int hs = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(bind(hs, (struct sockaddr *)&sa, sizeof(sa)) < 0); /* not an address of ours */
	close(hs);
	close(ls);
	close(nl);
	close(ns);
}

static void relay_ended(struct relay *r, void *data)
{
	(void)r;
	*(int *)data += 1;
	ev_break(core_loop(), EVBREAK_ALL);
}

/* 8 MiB each way through a relay between two socketpairs, with half-close:
 * each far end writes all, shuts down, and reads until EOF. */
TEST(test_relay_both_ways_and_half_close)
{
	struct cv_error err;
	signal(SIGPIPE, SIG_IGN);
	CHECK(core_loop_init(&err) == 0);
	int p[2], q[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0);
	int ended = 0;
	struct relay *r = relay_new(p[1], q[0], relay_ended, &ended, &err);
	CHECK(r != NULL);
	pid_t kid = fork();
	if (kid == 0) {
		/* The far end of q: echoes what it gets, reversed in role. */
		close(p[0]);
		static char buf[65536];
		size_t got = 0;
		ssize_t n;
		while ((n = read(q[1], buf, sizeof(buf))) > 0)
			got += (size_t)n;
		/* After the peer's EOF, answer with as many bytes, then EOF. */
		memset(buf, 'b', sizeof(buf));
		size_t left = got;
		while (left) {
			size_t k = left < sizeof(buf) ? left : sizeof(buf);
			if (write(q[1], buf, k) != (ssize_t)k)
				_exit(2);
			left -= k;
		}
		_exit(got == 8u << 20 ? 0 : 1);
	}
	close(q[1]);
	pid_t writer = fork();
	if (writer == 0) {
		static char buf[65536];
		memset(buf, 'a', sizeof(buf));
		for (int i = 0; i < 128; i++)
			if (write(p[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				_exit(2);
		shutdown(p[0], SHUT_WR);
		size_t back = 0;
		ssize_t n;
		while ((n = read(p[0], buf, sizeof(buf))) > 0)
			back += (size_t)n;
		_exit(back == 8u << 20 ? 0 : 1);
	}
	close(p[0]);
	ev_run(core_loop(), 0);
	CHECK(ended == 1);
	uint64_t ab = 0, ba = 0;
	relay_bytes(r, &ab, &ba);
	CHECK(ab == 8u << 20 && ba == 8u << 20);
	relay_free(r);
	int st = -1;
	CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(waitpid(writer, &st, 0) == writer && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	core_loop_destroy();
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Backpressure: a destination that reads nothing fills the pipe, and the
 * relay then stops reading its source and sits idle (no spinning) with at
 * most a pipe's worth in flight; once the destination reads, every byte
 * arrives and EOF follows. */
TEST(test_relay_backpressure_is_idle_and_bounded)
{
	struct cv_error err;
	signal(SIGPIPE, SIG_IGN);
	CHECK(core_loop_init(&err) == 0);
	int p[2], q[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0);
	int ended = 0;
	struct relay *r = relay_new(p[1], q[0], relay_ended, &ended, &err);
	CHECK(r != NULL);
	/* Write far more than the pipe and both socket buffers hold: the
	 * writer blocks in a child until the destination reads. */
	const size_t total = 16u << 20;
	pid_t writer = fork();
	if (writer == 0) {
		static char buf[65536];
		memset(buf, 'w', sizeof(buf));
		for (size_t done = 0; done < total; done += sizeof(buf))
			if (write(p[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				_exit(2);
		_exit(0);
	}
	ev_timer t;
	ev_timer_init(&t, stop_loop, 0.3, 0.);
	ev_timer_start(core_loop(), &t);
	ev_run(core_loop(), 0); /* fills up: let it settle */
	double c0 = cpu_s();
	ev_timer_set(&t, 0.5, 0.);
	ev_timer_start(core_loop(), &t);
	ev_run(core_loop(), 0);
	double spent = cpu_s() - c0;
	CHECK(spent < 0.1); /* idle while nobody reads: no spinning */
	uint64_t ab = 0, ba = 0;
	relay_bytes(r, &ab, &ba);
	CHECK(ab < total); /* it stopped: the writer is still blocked */
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	relay_describe(r, out, "", "a", "b");
	fclose(out);
	CHECK(strstr(text, "a -> b: ") && strstr(text, "pipe full, waiting for the destination"));
	free(text);
	/* Now the destination reads everything, then closes: the relay ends. */
	close(p[0]);
	pid_t reader = fork();
	if (reader == 0) {
		static char buf[65536];
		size_t got = 0;
		ssize_t n;
		while ((n = read(q[1], buf, sizeof(buf))) > 0)
			got += (size_t)n;
		_exit(got == total ? 0 : 1);
	}
	close(q[1]);
	ev_run(core_loop(), 0);
	CHECK(ended == 1);
	relay_bytes(r, &ab, &ba);
	CHECK(ab == total && ba == 0);
	relay_free(r);
	int st = -1;
	CHECK(waitpid(writer, &st, 0) == writer && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(waitpid(reader, &st, 0) == reader && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	core_loop_destroy();
}

UNIT_MAIN(test_nl_msg_layout, test_nl_parse_ack, test_nl_parse_link, test_ip_parse_and_masks,
	  test_links_in_new_netns, test_relay_both_ways_and_half_close,
	  test_relay_backpressure_is_idle_and_bounded)

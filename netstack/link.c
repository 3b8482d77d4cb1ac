/* rtnetlink messages for links, addresses, neighbours and routes
 * (netstack/link.h). `name` is only for the error messages. */
#include "netstack/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>

#include "netstack/nl.h"

/* "10.0.0.2/24" for messages. */
static const char *ip_text(const struct net_ip *ip, int prefix, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(ip->family, ip->b, a, sizeof(a));
	if (prefix < 0)
		snprintf(buf, n, "%s", a);
	else
		snprintf(buf, n, "%s/%d", a, prefix);
	return buf;
}

int link_move(int nl, int index, const char *name, int target_ns_fd, struct cv_error *err)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)target_ns_fd);
	char what[64];
	snprintf(what, sizeof(what), "moving link %s into the sandbox", name);
	return nl_request(nl, &m, what, err);
}

int link_set(int nl, int index, const char *name, uint32_t mtu, const uint8_t *mac,
	     size_t mac_len, struct cv_error *err)
{
	if (!mtu && !mac_len)
		return 0;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	if (mtu)
		nl_put_u32(&m, IFLA_MTU, mtu);
	if (mac_len)
		nl_put(&m, IFLA_ADDRESS, mac, mac_len);
	char what[96];
	snprintf(what, sizeof(what), "setting the MTU %u and address of link %s", mtu, name);
	return nl_request(nl, &m, what, err);
}

int link_up(int nl, int index, const char *name, struct cv_error *err)
{
	struct ifinfomsg ifi = {
		.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP
	};
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	char what[64];
	snprintf(what, sizeof(what), "bringing link %s up", name);
	return nl_request(nl, &m, what, err);
}

int addr_add(int nl, int index, const char *name, const struct net_ip *ip, int prefix,
	     struct cv_error *err)
{
	struct ifaddrmsg ifa = {
		.ifa_family = (uint8_t)ip->family,
		.ifa_prefixlen = (uint8_t)prefix,
		.ifa_scope = RT_SCOPE_UNIVERSE,
		.ifa_index = (uint32_t)index,
	};
	if (ip->family == AF_INET6)
		ifa.ifa_flags = IFA_F_NODAD;
	/* Loopback addresses are host-scoped (as ip(8) makes them); the
	 * kernel refuses 127/8 with another scope. */
	static const uint8_t v6_lo[16] = { [15] = 1 };
	if ((ip->family == AF_INET && ip->b[0] == 127) ||
	    (ip->family == AF_INET6 && memcmp(ip->b, v6_lo, 16) == 0))
		ifa.ifa_scope = RT_SCOPE_HOST;
	struct nl_msg m;
	/* Not NLM_F_REPLACE: with another address of the same subnet there
	 * (lo's 127.0.0.1/8 once up) the kernel refuses a replace (EINVAL). */
	nl_msg_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	nl_put(&m, IFA_LOCAL, ip->b, net_ip_len(ip));
	nl_put(&m, IFA_ADDRESS, ip->b, net_ip_len(ip));
	if (ip->family == AF_INET6)
		nl_put_u32(&m, IFA_FLAGS, IFA_F_NODAD);
	char what[128], t[64];
	snprintf(what, sizeof(what), "adding %s to link %s", ip_text(ip, prefix, t, sizeof(t)), name);
	struct cv_error e2;
	if (nl_request(nl, &m, what, &e2) == 0 || e2.code == EEXIST)
		return 0;
	if (err)
		*err = e2;
	return -1;
}

int neigh_add(int nl, int index, const char *name, const struct net_ip *ip, const uint8_t *mac,
	      size_t mac_len, struct cv_error *err)
{
	struct ndmsg nd = {
		.ndm_family = (uint8_t)ip->family,
		.ndm_ifindex = index,
		.ndm_state = NUD_PERMANENT,
	};
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof(nd));
	nl_put(&m, NDA_DST, ip->b, net_ip_len(ip));
	nl_put(&m, NDA_LLADDR, mac, mac_len);
	char what[128], t[64];
	snprintf(what, sizeof(what), "adding neighbour %s on link %s", ip_text(ip, -1, t, sizeof(t)),
		 name);
	return nl_request(nl, &m, what, err);
}

int route_add(int nl, int index, const char *name, const struct net_ip *dst, int prefix,
	      const struct net_ip *gw, uint32_t mtu, struct cv_error *err)
{
	struct rtmsg rt = {
		.rtm_family = (uint8_t)dst->family,
		.rtm_dst_len = (uint8_t)prefix,
		.rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = RTPROT_STATIC,
		/* Without a gateway the destination is on the link. */
		.rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
		.rtm_type = RTN_UNICAST,
	};
	struct nl_msg m;
	nl_msg_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof(rt));
	if (prefix > 0)
		nl_put(&m, RTA_DST, dst->b, net_ip_len(dst));
	if (gw)
		nl_put(&m, RTA_GATEWAY, gw->b, net_ip_len(gw));
	nl_put_u32(&m, RTA_OIF, (uint32_t)index);
	if (mtu) {
		/* RTA_METRICS holds nested attributes: one RTAX_MTU. */
		struct {
			struct rtattr a;
			uint32_t v;
		} metric = { { sizeof(metric), RTAX_MTU }, mtu };
		nl_put(&m, RTA_METRICS, &metric, sizeof(metric));
	}
	char what[160], t[64], g[64];
	snprintf(what, sizeof(what), "adding the route to %s%s%s on link %s",
		 ip_text(dst, prefix, t, sizeof(t)), gw ? " via " : "",
		 gw ? ip_text(gw, -1, g, sizeof(g)) : "", name);
	return nl_request(nl, &m, what, err);
}

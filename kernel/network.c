/* Network.CreateLinksAndRoutes (docs/API.md): moves links into the
 * sandbox's network namespace and configures them over rtnetlink
 * (netstack/). Each FD-based link lives in the network namespace whose fd
 * comes at the link's position in Files. Everything is checked (the
 * argument, the fds, the links' names in both namespaces, the default
 * routes' links) before the first change; each call adds links, so an
 * orchestrator may wire them in several steps. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/network_args.h"
#include "kernel/network_mode.h"
#include "netstack/link.h"
#include "netstack/netns.h"
#include "netstack/nl.h"

/* One link of the request as found before anything changes. */
struct found {
	char name[IFNAMSIZ];
	int donor_index; /* FD-based: its index in the donor namespace */
	int donor_nl;    /* FD-based: rtnetlink socket in the donor namespace; -1 */
};

static int sandbox_may_change(const struct sandbox *sb, size_t n_fd_links, struct cv_error *err)
{
	if (sb->net_kind == NET_KIND_HOST || sb->netns_fd < 0)
		return cv_errf(err, 0, "the sandbox uses the host's network namespace (--network host, "
				       "or no network namespace in the spec): refusing to change it");
	if (sb->net_mode == NET_MODE_NONE && n_fd_links)
		return cv_errf(err, 0, "CreateLinksAndRoutesArgs.FDBasedLinks: the sandbox's network "
				       "is none (--network none): it takes no links, got %zu",
			       n_fd_links);
	return 0;
}

static int same_ns(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

/* Files[i] must be a network namespace other than the sandbox's. */
static int check_ns_fd(const struct sandbox *sb, int fd, size_t i, struct cv_error *err)
{
	int t = ioctl(fd, NS_GET_NSTYPE);
	if (t != CLONE_NEWNET)
		return cv_errf(err, 0, "CreateLinksAndRoutesArgs.Files[%zu]: not a network namespace "
				       "fd (the namespace FDBasedLinks[%zu] is in)", i, i);
	if (same_ns(fd, sb->netns_fd))
		return cv_errf(err, 0, "CreateLinksAndRoutesArgs.Files[%zu]: the sandbox's own network "
				       "namespace (FDBasedLinks[%zu] must come from another one)", i, i);
	return 0;
}

/* Finds an FD-based link in its donor namespace and checks its name is
 * free in the sandbox. */
static int find_fd_link(const struct net_link *l, int nsfd, int snl, struct found *f,
			struct cv_error *err)
{
	f->donor_nl = netns_socket(nsfd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, err);
	if (f->donor_nl < 0)
		return cv_error_wrap(err, "%s", l->field);
	if (l->index) {
		struct cv_error e;
		if (nl_link_name(f->donor_nl, l->index, f->name, &e) < 0)
			return cv_errf(err, 0, "%s.InterfaceIndex: no link with index %d in the donated "
					       "network namespace", l->field, l->index);
		f->donor_index = l->index;
	} else {
		if (nl_link_index(f->donor_nl, l->name, &f->donor_index, err) < 0)
			return -1;
		if (!f->donor_index)
			return cv_errf(err, 0, "%s.Name: no link \"%s\" in the donated network namespace",
				       l->field, l->name);
		snprintf(f->name, sizeof(f->name), "%s", l->name);
	}
	int there = 0;
	if (nl_link_index(snl, f->name, &there, err) < 0)
		return -1;
	if (there)
		return cv_errf(err, 0, "%s: a link named \"%s\" is already in the sandbox", l->field,
			       f->name);
	return 0;
}

static int find_links(const struct sandbox *sb, struct rpc_call *call, const struct net_args *a,
		      int snl, struct found *fs, struct cv_error *err)
{
	for (size_t i = 0; i < a->n_links; i++) {
		const struct net_link *l = &a->links[i];
		struct found *f = &fs[i];
		if (l->loopback) {
			/* Loopbacks are the sandbox's own (lo). */
			snprintf(f->name, sizeof(f->name), "%s", l->name ? l->name : "lo");
			int idx = 0;
			if (nl_link_index(snl, f->name, &idx, err) < 0)
				return -1;
			if (!idx)
				return cv_errf(err, 0, "%s.Name: no link \"%s\" in the sandbox", l->field,
					       f->name);
			continue;
		}
		size_t k = i - a->n_loopback;
		int nsfd = rpc_call_file(call, k);
		if (check_ns_fd(sb, nsfd, k, err) < 0 || find_fd_link(l, nsfd, snl, f, err) < 0)
			return -1;
		for (size_t j = a->n_loopback; j < i; j++)
			if (strcmp(fs[j].name, f->name) == 0)
				return cv_errf(err, 0, "%s: link \"%s\" is also %s", l->field, f->name,
					       a->links[j].field);
	}
	for (int g = 0; g < 2; g++) {
		const struct net_gateway *gw = &a->gw[g];
		if (!gw->set)
			continue;
		bool known = false;
		for (size_t i = 0; i < a->n_links && !known; i++)
			known = strcmp(fs[i].name, gw->name) == 0;
		int idx = 0;
		if (!known && nl_link_index(snl, gw->name, &idx, err) < 0)
			return -1;
		if (!known && !idx)
			return cv_errf(err, 0, "%s.Name: invalid interface name \"%s\" for default route",
				       gw->field, gw->name);
	}
	return 0;
}

/* Configures one link, already in the sandbox. */
static int configure(int snl, const struct net_link *l, const char *name, struct cv_error *err)
{
	int idx = 0;
	if (nl_link_index(snl, name, &idx, err) < 0)
		return -1;
	if (!idx)
		return cv_errf(err, 0, "%s: link \"%s\" vanished from the sandbox", l->field, name);
	/* The hardware address before up: most drivers refuse it on a running link. */
	if (link_set(snl, idx, name, l->mtu, l->hw, l->hw_len, err) < 0 ||
	    link_up(snl, idx, name, err) < 0)
		return -1;
	for (size_t i = 0; i < l->n_addrs; i++)
		if (addr_add(snl, idx, name, &l->addrs[i].ip, l->addrs[i].prefix, err) < 0)
			return -1;
	for (size_t i = 0; i < l->n_neighs; i++)
		if (neigh_add(snl, idx, name, &l->neighs[i].ip, l->neighs[i].hw, l->neighs[i].hw_len,
			      err) < 0)
			return -1;
	for (size_t i = 0; i < l->n_routes; i++) {
		const struct net_route *r = &l->routes[i];
		if (route_add(snl, idx, name, &r->dst, r->prefix, r->has_gw ? &r->gw : NULL, r->mtu,
			      err) < 0)
			return -1;
	}
	return 0;
}

static int apply(const struct sandbox *sb, const struct net_args *a, int snl, struct found *fs,
		 struct cv_error *err)
{
	for (size_t i = 0; i < a->n_links; i++) {
		const struct net_link *l = &a->links[i];
		if (!l->loopback &&
		    link_move(fs[i].donor_nl, fs[i].donor_index, fs[i].name, sb->netns_fd, err) < 0)
			return -1;
		if (configure(snl, l, fs[i].name, err) < 0)
			return -1;
		LOG(LL_INFO, "network: link %s configured (%zu addresses, %zu routes)", fs[i].name,
		    l->n_addrs, l->n_routes);
	}
	for (int g = 0; g < 2; g++) {
		const struct net_gateway *gw = &a->gw[g];
		int idx = 0;
		if (!gw->set)
			continue;
		if (nl_link_index(snl, gw->name, &idx, err) < 0)
			return -1;
		if (route_add(snl, idx, gw->name, &gw->route.dst, 0, &gw->route.gw, gw->route.mtu,
			      err) < 0)
			return -1;
	}
	return 0;
}

void network_create_links(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	msgpack_zone *zone = rpc_call_zone(call);
	struct cv_error err;
	cv_error_reset(&err);
	struct net_args a;
	if (net_args_decode(arg, zone, &a, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	size_t nfd = a.n_links - a.n_loopback;
	if (rpc_call_nfiles(call) != nfd) {
		rpc_fail(call, "CreateLinksAndRoutesArgs.Files: %zu fds for %zu FDBasedLinks: each link "
			       "needs the fd of the network namespace it is in",
			 rpc_call_nfiles(call), nfd);
		return;
	}
	if (sandbox_may_change(sb, nfd, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	struct found *fs = msgpack_zone_malloc(zone, (a.n_links + 1) * sizeof(*fs));
	if (!fs) {
		rpc_fail(call, "out of memory");
		return;
	}
	memset(fs, 0, (a.n_links + 1) * sizeof(*fs));
	for (size_t i = 0; i < a.n_links; i++)
		fs[i].donor_nl = -1;
	int snl = netns_socket(sb->netns_fd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, &err);
	int r = snl < 0 ? -1 : find_links(sb, call, &a, snl, fs, &err);
	if (r == 0)
		r = apply(sb, &a, snl, fs, &err);
	for (size_t i = 0; i < a.n_links; i++)
		if (fs[i].donor_nl >= 0)
			close(fs[i].donor_nl);
	if (snl >= 0)
		close(snl);
	if (r < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	rpc_reply_nil(call);
}

/* Decoding CreateLinksAndRoutesArgs (kernel/network_args.h). The wire
 * form is the seed's with IPs as strings and masks and hardware addresses
 * as msgpack bin. */
#include "kernel/network_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/mpk.h"
#include "core/util.h"

#define ROOT "CreateLinksAndRoutesArgs"

struct w_ipp {
	char *address;
	int32_t prefix_len;
};
struct w_ipnet {
	char *ip;
	const msgpack_object *mask;
};
struct w_route {
	struct w_ipnet dst;
	bool has_dst;
	char *gateway;
	uint32_t mtu;
};
struct w_neigh {
	char *ip;
	const msgpack_object *hw;
};
struct w_link {
	char *name;
	int32_t index;
	uint32_t mtu;
	struct w_ipp *addrs;
	size_t n_addrs;
	struct w_route *routes;
	size_t n_routes;
	const msgpack_object *hw;
	struct w_neigh *neighs;
	size_t n_neighs;
};
struct w_gw {
	struct w_route route;
	bool has_route;
	char *name;
};
struct w_args {
	struct w_link *loops;
	size_t n_loops;
	struct w_link *links;
	size_t n_links;
	const msgpack_object *xdp;
	struct w_gw gw4, gw6;
	bool has_gw4, has_gw6;
	bool pcap, nat, pause;
};

#define F(key, kind, type, member, flags) \
	{ key, kind, offsetof(type, member), MPK_NONE, MPK_NONE, flags, NULL }
#define FS(key, type, member, has, sub) \
	{ key, MPK_STRUCT, offsetof(type, member), MPK_NONE, offsetof(type, has), 0, sub }
#define FSV(key, type, member, count, sub) \
	{ key, MPK_STRUCTV, offsetof(type, member), offsetof(type, count), MPK_NONE, 0, sub }
#define SCHEMA(var, name, type, fields) \
	static const struct mpk_schema var = { name, sizeof(type), fields, ARRAY_SIZE(fields) }

static const struct mpk_field ipp_fields[] = {
	F("Address", MPK_STR, struct w_ipp, address, MPK_REQUIRED),
	F("PrefixLen", MPK_I32, struct w_ipp, prefix_len, MPK_REQUIRED),
};
SCHEMA(ipp_schema, "IPWithPrefix", struct w_ipp, ipp_fields);
static const struct mpk_field ipnet_fields[] = {
	F("IP", MPK_STR, struct w_ipnet, ip, MPK_REQUIRED),
	F("Mask", MPK_OBJ, struct w_ipnet, mask, MPK_REQUIRED),
};
SCHEMA(ipnet_schema, "IPNet", struct w_ipnet, ipnet_fields);
static const struct mpk_field route_fields[] = {
	FS("Destination", struct w_route, dst, has_dst, &ipnet_schema),
	F("Gateway", MPK_STR, struct w_route, gateway, 0),
	F("MTU", MPK_U32, struct w_route, mtu, 0),
};
SCHEMA(route_schema, "Route", struct w_route, route_fields);
static const struct mpk_field neigh_fields[] = {
	F("IP", MPK_STR, struct w_neigh, ip, MPK_REQUIRED),
	F("HardwareAddr", MPK_OBJ, struct w_neigh, hw, MPK_REQUIRED),
};
SCHEMA(neigh_schema, "Neighbor", struct w_neigh, neigh_fields);
static const struct mpk_field link_fields[] = {
	F("Name", MPK_STR, struct w_link, name, 0),
	F("InterfaceIndex", MPK_I32, struct w_link, index, 0),
	F("MTU", MPK_U32, struct w_link, mtu, 0),
	FSV("Addresses", struct w_link, addrs, n_addrs, &ipp_schema),
	FSV("Routes", struct w_link, routes, n_routes, &route_schema),
	F("LinkAddress", MPK_OBJ, struct w_link, hw, 0),
	FSV("Neighbors", struct w_link, neighs, n_neighs, &neigh_schema),
};
SCHEMA(link_schema, "Link", struct w_link, link_fields);
static const struct mpk_field gw_fields[] = {
	FS("Route", struct w_gw, route, has_route, &route_schema),
	F("Name", MPK_STR, struct w_gw, name, 0),
};
SCHEMA(gw_schema, "DefaultRoute", struct w_gw, gw_fields);
static const struct mpk_field args_fields[] = {
	FSV("LoopbackLinks", struct w_args, loops, n_loops, &link_schema),
	FSV("FDBasedLinks", struct w_args, links, n_links, &link_schema),
	F("XDPLinks", MPK_OBJ, struct w_args, xdp, 0),
	FS("Defaultv4Gateway", struct w_args, gw4, has_gw4, &gw_schema),
	FS("Defaultv6Gateway", struct w_args, gw6, has_gw6, &gw_schema),
	F("PCAP", MPK_BOOL, struct w_args, pcap, 0),
	F("NATBlob", MPK_BOOL, struct w_args, nat, 0),
	F("PauseExternalNetworking", MPK_BOOL, struct w_args, pause, 0),
};
SCHEMA(args_schema, ROOT, struct w_args, args_fields);

/* Field paths for messages live in the zone with the rest. */
static const char *path(msgpack_zone *zone, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const char *path(msgpack_zone *zone, const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	size_t n = strlen(buf) + 1;
	char *p = msgpack_zone_malloc(zone, n);
	if (p)
		memcpy(p, buf, n);
	return p ? p : "CreateLinksAndRoutesArgs";
}

static int get_bin(const msgpack_object *o, const char *where, const uint8_t **p, size_t *len,
		   struct cv_error *err)
{
	if (o->type != MSGPACK_OBJECT_BIN)
		return cv_errf(err, 0, "%s: expected bin, got %s", where, mpk_type_name(o->type));
	*p = (const uint8_t *)o->via.bin.ptr;
	*len = o->via.bin.size;
	return 0;
}

static int hw_addr(const msgpack_object *o, const char *where, uint8_t *out, size_t *len,
		   struct cv_error *err)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	if (get_bin(o, where, &p, &n, err) < 0)
		return -1;
	if (n == 0 || n > NET_HW_MAX)
		return cv_errf(err, 0, "%s: a hardware address is 1 to %d bytes, got %zu", where,
			       NET_HW_MAX, n);
	memcpy(out, p, n);
	*len = n;
	return 0;
}

static int route_of(const struct w_route *w, const char *where, msgpack_zone *zone,
		    struct net_route *r, struct cv_error *err)
{
	if (!w->has_dst)
		return cv_errf(err, 0, "%s.Destination: missing", where);
	if (net_ip_parse(w->dst.ip, &r->dst, path(zone, "%s.Destination.IP", where), err) < 0)
		return -1;
	const uint8_t *m = NULL;
	size_t mlen = 0;
	const char *mf = path(zone, "%s.Destination.Mask", where);
	if (get_bin(w->dst.mask, mf, &m, &mlen, err) < 0 ||
	    net_mask_prefix(m, mlen, &r->prefix, mf, err) < 0)
		return -1;
	if (mlen != net_ip_len(&r->dst))
		return cv_errf(err, 0, "%s: a %zu-byte mask for an IPv%d address", mf, mlen,
			       r->dst.family == AF_INET ? 4 : 6);
	net_ip_mask(&r->dst, r->prefix);
	r->mtu = w->mtu;
	r->has_gw = w->gateway && *w->gateway;
	if (r->has_gw) {
		const char *gf = path(zone, "%s.Gateway", where);
		if (net_ip_parse(w->gateway, &r->gw, gf, err) < 0)
			return -1;
		if (r->gw.family != r->dst.family)
			return cv_errf(err, 0, "%s: \"%s\" is not of the destination's family", gf,
				       w->gateway);
	}
	return 0;
}

static int link_of(const struct w_link *w, const char *where, bool loopback, msgpack_zone *zone,
		   struct net_link *l, struct cv_error *err)
{
	memset(l, 0, sizeof(*l)); /* zone memory is not zeroed */
	l->field = where;
	l->loopback = loopback;
	l->name = w->name && *w->name ? w->name : NULL;
	l->index = w->index;
	l->mtu = w->mtu;
	if (l->name && strlen(l->name) >= IFNAMSIZ)
		return cv_errf(err, 0, "%s.Name: \"%s\" is longer than %d bytes", where, l->name,
			       IFNAMSIZ - 1);
	if (l->index < 0)
		return cv_errf(err, 0, "%s.InterfaceIndex: %d is not an interface index", where,
			       l->index);
	if (!l->name && !l->index)
		return cv_errf(err, 0, "%s: needs a Name or an InterfaceIndex", where);
	if (w->hw && w->hw->type != MSGPACK_OBJECT_NIL &&
	    hw_addr(w->hw, path(zone, "%s.LinkAddress", where), l->hw, &l->hw_len, err) < 0)
		return -1;
	/* Go's empty net.HardwareAddr arrives as an empty bin: unchanged. */
	l->addrs = msgpack_zone_malloc(zone, (w->n_addrs + 1) * sizeof(*l->addrs));
	l->routes = msgpack_zone_malloc(zone, (w->n_routes + 1) * sizeof(*l->routes));
	l->neighs = msgpack_zone_malloc(zone, (w->n_neighs + 1) * sizeof(*l->neighs));
	if (!l->addrs || !l->routes || !l->neighs)
		return cv_errf(err, ENOMEM, "%s", where);
	for (size_t i = 0; i < w->n_addrs; i++) {
		const char *f = path(zone, "%s.Addresses[%zu]", where, i);
		struct net_addr *a = &l->addrs[i];
		if (net_ip_parse(w->addrs[i].address, &a->ip, path(zone, "%s.Address", f), err) < 0)
			return -1;
		int max = a->ip.family == AF_INET ? 32 : 128;
		if (w->addrs[i].prefix_len < 0 || w->addrs[i].prefix_len > max)
			return cv_errf(err, 0, "%s.PrefixLen: %d is not in 0..%d", f,
				       w->addrs[i].prefix_len, max);
		a->prefix = w->addrs[i].prefix_len;
	}
	l->n_addrs = w->n_addrs;
	for (size_t i = 0; i < w->n_routes; i++)
		if (route_of(&w->routes[i], path(zone, "%s.Routes[%zu]", where, i), zone,
			     &l->routes[i], err) < 0)
			return -1;
	l->n_routes = w->n_routes;
	for (size_t i = 0; i < w->n_neighs; i++) {
		const char *f = path(zone, "%s.Neighbors[%zu]", where, i);
		struct net_neigh *n = &l->neighs[i];
		if (net_ip_parse(w->neighs[i].ip, &n->ip, path(zone, "%s.IP", f), err) < 0 ||
		    hw_addr(w->neighs[i].hw, path(zone, "%s.HardwareAddr", f), n->hw, &n->hw_len,
			    err) < 0)
			return -1;
	}
	l->n_neighs = w->n_neighs;
	return 0;
}

static int gateway_of(const struct w_gw *w, bool has, int family, const char *where,
		      msgpack_zone *zone, struct net_gateway *g, struct cv_error *err)
{
	/* An absent or empty default route (Go's zero value) sets nothing. */
	if (!has || !w->has_route || !w->route.gateway || !*w->route.gateway)
		return 0;
	g->set = true;
	g->field = where;
	if (!w->name || !*w->name)
		return cv_errf(err, 0, "%s.Name: missing (the link of the default route)", where);
	g->name = w->name;
	const char *rf = path(zone, "%s.Route", where);
	if (w->route.has_dst) {
		if (route_of(&w->route, rf, zone, &g->route, err) < 0)
			return -1;
	} else {
		memset(&g->route, 0, sizeof(g->route));
		if (net_ip_parse(w->route.gateway, &g->route.gw, path(zone, "%s.Gateway", rf), err) < 0)
			return -1;
		g->route.dst.family = g->route.gw.family;
		g->route.has_gw = true;
		g->route.mtu = w->route.mtu;
	}
	if (g->route.gw.family != family)
		return cv_errf(err, 0, "%s.Gateway: \"%s\" is not an IPv%d address", rf,
			       w->route.gateway, family == AF_INET ? 4 : 6);
	if (g->route.prefix != 0)
		return cv_errf(err, 0, "%s.Destination: a default route's mask must be empty", rf);
	return 0;
}

int net_args_decode(const msgpack_object *arg, msgpack_zone *zone, struct net_args *out,
		    struct cv_error *err)
{
	struct w_args w;
	memset(out, 0, sizeof(*out));
	if (mpk_decode(arg, &args_schema, &w, zone, err) < 0)
		return -1;
	if (w.xdp && w.xdp->type == MSGPACK_OBJECT_ARRAY && w.xdp->via.array.size > 0)
		return cv_errf(err, 0, ROOT ".XDPLinks: AF_XDP links are not supported; links are "
					   "moved into the sandbox as they are (FDBasedLinks)");
	if (w.pcap)
		return cv_errf(err, 0, ROOT ".PCAP: packet capture is not supported");
	if (w.nat)
		return cv_errf(err, 0, ROOT ".NATBlob: an iptables NAT blob is not supported");
	if (w.pause)
		return cv_errf(err, 0, ROOT ".PauseExternalNetworking: not supported");
	size_t n = w.n_loops + w.n_links;
	out->links = msgpack_zone_malloc(zone, (n + 1) * sizeof(*out->links));
	if (!out->links)
		return cv_errf(err, ENOMEM, ROOT);
	for (size_t i = 0; i < w.n_loops; i++)
		if (link_of(&w.loops[i], path(zone, ROOT ".LoopbackLinks[%zu]", i), true, zone,
			    &out->links[i], err) < 0)
			return -1;
	for (size_t i = 0; i < w.n_links; i++)
		if (link_of(&w.links[i], path(zone, ROOT ".FDBasedLinks[%zu]", i), false, zone,
			    &out->links[w.n_loops + i], err) < 0)
			return -1;
	out->n_links = n;
	out->n_loopback = w.n_loops;
	if (gateway_of(&w.gw4, w.has_gw4, AF_INET, ROOT ".Defaultv4Gateway", zone, &out->gw[0],
		       err) < 0 ||
	    gateway_of(&w.gw6, w.has_gw6, AF_INET6, ROOT ".Defaultv6Gateway", zone, &out->gw[1],
		       err) < 0)
		return -1;
	return 0;
}

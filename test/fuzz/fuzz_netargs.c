/* Fuzz target for Network.CreateLinksAndRoutes' argument decoder
 * (kernel/network_args.c): arbitrary msgpack through net_args_decode, as a
 * client's request arrives. Must never crash or leak, and a successful
 * decode must keep its promises: counts match, every address has its
 * family's length and a prefix in range, every hardware address fits,
 * every default route that is set names a link and has prefix 0.
 *
 * Input: one msgpack object (trailing bytes ignored). Inputs whose headers
 * declare more than follows are skipped (fuzz_frame.h). */
#include <assert.h>
#include <msgpack.h>
#include <string.h>

#include "fuzz_frame.h"
#include "kernel/network_args.h"

static void check_ip(const struct net_ip *ip)
{
	assert(ip->family == AF_INET || ip->family == AF_INET6);
}

static void check(const struct net_args *a)
{
	assert(a->n_loopback <= a->n_links);
	for (size_t i = 0; i < a->n_links; i++) {
		const struct net_link *l = &a->links[i];
		assert(l->loopback == (i < a->n_loopback));
		assert(l->name || l->index > 0);
		assert(!l->name || strlen(l->name) < IFNAMSIZ);
		assert(l->hw_len <= NET_HW_MAX);
		for (size_t k = 0; k < l->n_addrs; k++) {
			check_ip(&l->addrs[k].ip);
			assert(l->addrs[k].prefix >= 0 &&
			       l->addrs[k].prefix <= (l->addrs[k].ip.family == AF_INET ? 32 : 128));
		}
		for (size_t k = 0; k < l->n_routes; k++) {
			const struct net_route *r = &l->routes[k];
			check_ip(&r->dst);
			assert(r->prefix >= 0 && (size_t)r->prefix <= 8 * net_ip_len(&r->dst));
			assert(!r->has_gw || r->gw.family == r->dst.family);
		}
		for (size_t k = 0; k < l->n_neighs; k++) {
			check_ip(&l->neighs[k].ip);
			assert(l->neighs[k].hw_len >= 1 && l->neighs[k].hw_len <= NET_HW_MAX);
		}
	}
	for (int g = 0; g < 2; g++) {
		if (!a->gw[g].set)
			continue;
		assert(a->gw[g].name && *a->gw[g].name);
		assert(a->gw[g].route.prefix == 0 && a->gw[g].route.has_gw);
		assert(a->gw[g].route.gw.family == (g == 0 ? AF_INET : AF_INET6));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		abort();
	msgpack_object obj;
	size_t off = 0, len;
	if (fz_frame(data, size, &len) &&
	    msgpack_unpack((const char *)data, len, &off, zone, &obj) == MSGPACK_UNPACK_SUCCESS) {
		struct net_args a;
		struct cv_error err;
		cv_error_reset(&err);
		if (net_args_decode(&obj, zone, &a, &err) == 0)
			check(&a);
		else
			assert(err.msg[0] && strncmp(err.msg, "CreateLinksAndRoutesArgs", 24) == 0);
	}
	msgpack_zone_free(zone);
	return 0;
}

#include "fuzz_replay.h"

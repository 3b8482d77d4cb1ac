#pragma once
/* Network.CreateLinksAndRoutes' argument, decoded and checked before
 * anything is changed (docs/API.md): addresses parsed, masks turned into
 * prefix lengths, hardware addresses sized. Everything lives in the
 * request's zone. */
#include <msgpack.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "netstack/ip.h"

#define NET_HW_MAX 32 /* MAX_ADDR_LEN */

struct net_addr {
	struct net_ip ip;
	int prefix;
};

struct net_route {
	struct net_ip dst; /* host bits cleared */
	int prefix;
	bool has_gw;
	struct net_ip gw;
	uint32_t mtu;      /* 0: the link's */
};

struct net_neigh {
	struct net_ip ip;
	uint8_t hw[NET_HW_MAX];
	size_t hw_len;
};

struct net_link {
	const char *field;     /* "CreateLinksAndRoutesArgs.FDBasedLinks[0]" for errors */
	bool loopback;
	const char *name;      /* as given, or NULL */
	int32_t index;         /* InterfaceIndex: in the donor namespace, 0 = by name */
	uint32_t mtu;          /* 0: unchanged */
	uint8_t hw[NET_HW_MAX];
	size_t hw_len;         /* 0: unchanged */
	struct net_addr *addrs;
	size_t n_addrs;
	struct net_route *routes;
	size_t n_routes;
	struct net_neigh *neighs;
	size_t n_neighs;
};

struct net_gateway {
	bool set;
	const char *field;     /* "CreateLinksAndRoutesArgs.Defaultv4Gateway" */
	const char *name;      /* the link the default route goes through */
	struct net_route route;
};

struct net_args {
	struct net_link *links; /* the loopbacks first, then the FD-based links */
	size_t n_links;
	size_t n_loopback;
	struct net_gateway gw[2]; /* v4, v6 */
};

/* Decodes and checks the argument; errors name the field. */
int net_args_decode(const msgpack_object *arg, msgpack_zone *zone, struct net_args *out,
		    struct cv_error *err);

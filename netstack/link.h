#pragma once
/* Configuring links, addresses, neighbours and routes over an rtnetlink
 * socket (netstack/nl.h); each acts in the socket's network namespace.
 * Indexes are the namespace's. Knows no container. */
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "netstack/ip.h"

/* Moves link index (of nl's namespace) into the namespace of target_ns_fd. */
int link_move(int nl, int index, const char *name, int target_ns_fd, struct cv_error *err);
/* Sets the MTU (0: unchanged) and the hardware address (len 0: unchanged). */
int link_set(int nl, int index, const char *name, uint32_t mtu, const uint8_t *mac,
	     size_t mac_len, struct cv_error *err);
int link_up(int nl, int index, const char *name, struct cv_error *err);
/* Adds ip/prefix (IPv6 without duplicate address detection: the address
 * is usable at once). An address already there is not an error. */
int addr_add(int nl, int index, const char *name, const struct net_ip *ip, int prefix,
	     struct cv_error *err);
/* A permanent neighbour entry ip → mac. */
int neigh_add(int nl, int index, const char *name, const struct net_ip *ip, const uint8_t *mac,
	      size_t mac_len, struct cv_error *err);
/* A route to dst/prefix through link index, via gw when gw is not NULL,
 * with mtu when not 0. Replaces a route to the same destination. */
int route_add(int nl, int index, const char *name, const struct net_ip *dst, int prefix,
	      const struct net_ip *gw, uint32_t mtu, struct cv_error *err);

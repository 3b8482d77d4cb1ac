#pragma once
/* IP addresses as the control protocol carries them: text for addresses
 * ("10.0.0.2", "fd00::2"), bytes for masks and hardware addresses. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

struct net_ip {
	int family;     /* AF_INET or AF_INET6 */
	uint8_t b[16];  /* network order; 4 bytes used for AF_INET */
};

static inline size_t net_ip_len(const struct net_ip *ip)
{
	return ip->family == AF_INET ? 4 : 16;
}

/* "10.0.0.2" or "fd00::2" (an IPv4-mapped IPv6 address is taken as IPv4,
 * as Go's net.IP does); what names the field in the error. */
int net_ip_parse(const char *s, struct net_ip *out, const char *what, struct cv_error *err);
/* A contiguous mask of 4 or 16 bytes → its prefix length. */
int net_mask_prefix(const uint8_t *mask, size_t len, int *prefix, const char *what,
		    struct cv_error *err);
/* Zeroes the host bits past prefix (route destinations must have none). */
void net_ip_mask(struct net_ip *ip, int prefix);
bool net_ip_is_zero(const struct net_ip *ip);

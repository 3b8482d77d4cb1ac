/* Address text and masks (netstack/ip.h). */
#include "netstack/ip.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

int net_ip_parse(const char *s, struct net_ip *out, const char *what, struct cv_error *err)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return cv_errf(err, 0, "%s: missing IP address", what);
	if (inet_pton(AF_INET, s, out->b) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->b) == 1) {
		out->family = AF_INET6;
		if (memcmp(out->b, v4_mapped, sizeof(v4_mapped)) == 0) {
			memmove(out->b, out->b + 12, 4);
			memset(out->b + 4, 0, 12);
			out->family = AF_INET;
		}
		return 0;
	}
	return cv_errf(err, 0, "%s: \"%s\" is not an IP address", what, s);
}

int net_mask_prefix(const uint8_t *mask, size_t len, int *prefix, const char *what,
		    struct cv_error *err)
{
	if (len != 4 && len != 16)
		return cv_errf(err, 0, "%s: a mask is 4 or 16 bytes, got %zu", what, len);
	int n = 0;
	size_t i = 0;
	for (; i < len && mask[i] == 0xff; i++)
		n += 8;
	if (i < len) {
		uint8_t b = mask[i];
		while (b & 0x80) {
			n++;
			b = (uint8_t)(b << 1);
		}
		if (b)
			return cv_errf(err, 0, "%s: the mask is not contiguous", what);
		for (i++; i < len; i++)
			if (mask[i])
				return cv_errf(err, 0, "%s: the mask is not contiguous", what);
	}
	*prefix = n;
	return 0;
}

void net_ip_mask(struct net_ip *ip, int prefix)
{
	size_t len = net_ip_len(ip);
	for (size_t i = 0; i < len; i++) {
		int bits = prefix - (int)i * 8;
		if (bits >= 8)
			continue;
		ip->b[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

bool net_ip_is_zero(const struct net_ip *ip)
{
	for (size_t i = 0; i < net_ip_len(ip); i++)
		if (ip->b[i])
			return false;
	return true;
}

/* Unit tests for kernel/network_args.c: Network.CreateLinksAndRoutes'
 * argument decoded into checked values, and its errors naming the field.
 * Inputs are JSON where a string "hex:0a0b" stands for msgpack bin (masks
 * and hardware addresses travel as bin). */
#include <json.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "core/mpk.h"
#include "kernel/network_args.h"
#include "test/unit/unit.h"

static void pack(msgpack_packer *pk, json_object *j)
{
	switch (json_object_get_type(j)) {
	case json_type_null:
		msgpack_pack_nil(pk);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(j))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case json_type_double:
	case json_type_int:
		msgpack_pack_int64(pk, json_object_get_int64(j));
		break;
	case json_type_string: {
		const char *s = json_object_get_string(j);
		if (strncmp(s, "hex:", 4) == 0) {
			size_t n = strlen(s + 4) / 2;
			char b[64];
			for (size_t i = 0; i < n && i < sizeof(b); i++) {
				char h[3] = { s[4 + 2 * i], s[5 + 2 * i], 0 };
				b[i] = (char)strtol(h, NULL, 16);
			}
			msgpack_pack_bin(pk, n);
			msgpack_pack_bin_body(pk, b, n);
		} else {
			mpk_pack_str(pk, s);
		}
		break;
	}
	case json_type_array: {
		size_t n = json_object_array_length(j);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			pack(pk, json_object_array_get_idx(j, i));
		break;
	}
	case json_type_object:
		msgpack_pack_map(pk, (size_t)json_object_object_length(j));
		json_object_object_foreach(j, k, v)
		{
			mpk_pack_key(pk, k);
			pack(pk, v);
		}
		break;
	}
}

/* Decodes json into *a (zone kept in *zone for the caller to free). */
static int decode(const char *json, msgpack_zone **zone, struct net_args *a, struct cv_error *err)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	json_object *j = json_tokener_parse(json);
	CHECK(j != NULL);
	pack(&pk, j);
	json_object_put(j);
	*zone = msgpack_zone_new(256); /* small chunks: reused garbage shows */
	/* Dirty the zone's first chunk, so a field left unset is not 0 by luck. */
	memset(msgpack_zone_malloc(*zone, 200), 0xa5, 200);
	msgpack_object o;
	size_t off = 0;
	CHECK(msgpack_unpack(sb.data, sb.size, &off, *zone, &o) == MSGPACK_UNPACK_SUCCESS);
	cv_error_reset(err);
	int r = net_args_decode(&o, *zone, a, err);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

TEST(test_full_argument)
{
	struct net_args a;
	struct cv_error err;
	msgpack_zone *z;
	int r = decode("{\"LoopbackLinks\":[{\"Name\":\"lo\",\"Addresses\":[{\"Address\":\"127.0.0.1\","
		       "\"PrefixLen\":8}]}],"
		       "\"FDBasedLinks\":[{\"Name\":\"eth0\",\"MTU\":1400,\"LinkAddress\":\"hex:02420a000002\","
		       "\"Addresses\":[{\"Address\":\"10.0.0.2\",\"PrefixLen\":24},"
		       "{\"Address\":\"fd00::2\",\"PrefixLen\":64}],"
		       "\"Routes\":[{\"Destination\":{\"IP\":\"10.1.2.3\",\"Mask\":\"hex:ffff0000\"},"
		       "\"Gateway\":\"10.0.0.1\",\"MTU\":1300}],"
		       "\"Neighbors\":[{\"IP\":\"10.0.0.9\",\"HardwareAddr\":\"hex:020000000009\"}]},"
		       "{\"InterfaceIndex\":7}],"
		       "\"Defaultv4Gateway\":{\"Route\":{\"Destination\":{\"IP\":\"0.0.0.0\",\"Mask\":\"hex:00000000\"},"
		       "\"Gateway\":\"10.0.0.1\"},\"Name\":\"eth0\"},"
		       "\"Defaultv6Gateway\":{\"Route\":{\"Gateway\":\"\"},\"Name\":\"\"}}",
		       &z, &a, &err);
	CHECK(r == 0);
	if (r < 0)
		fprintf(stderr, "  %s\n", err.msg);
	CHECK(a.n_links == 3 && a.n_loopback == 1);
	CHECK(a.links[0].loopback && strcmp(a.links[0].name, "lo") == 0 && a.links[0].n_addrs == 1);
	CHECK(a.links[0].hw_len == 0 && a.links[0].mtu == 0 && a.links[0].n_routes == 0);
	const struct net_link *e = &a.links[1];
	CHECK(!e->loopback && strcmp(e->name, "eth0") == 0 && e->mtu == 1400 && e->index == 0);
	CHECK(e->hw_len == 6 && e->hw[0] == 0x02 && e->hw[5] == 0x02);
	CHECK(e->n_addrs == 2 && e->addrs[0].prefix == 24 && e->addrs[1].ip.family == AF_INET6);
	CHECK(e->n_routes == 1 && e->routes[0].prefix == 16 && e->routes[0].has_gw);
	/* Host bits of a destination are cleared. */
	CHECK(e->routes[0].dst.b[0] == 10 && e->routes[0].dst.b[1] == 1 && e->routes[0].dst.b[2] == 0);
	CHECK(e->routes[0].mtu == 1300);
	CHECK(e->n_neighs == 1 && e->neighs[0].hw_len == 6 && e->neighs[0].hw[5] == 9);
	CHECK_STR(e->field, "CreateLinksAndRoutesArgs.FDBasedLinks[0]");
	const struct net_link *x = &a.links[2];
	CHECK(x->name == NULL && x->index == 7 && x->hw_len == 0 && x->mtu == 0);
	CHECK(x->n_addrs == 0 && x->n_routes == 0 && x->n_neighs == 0);
	CHECK(a.gw[0].set && strcmp(a.gw[0].name, "eth0") == 0 && a.gw[0].route.prefix == 0);
	CHECK(a.gw[0].route.gw.b[0] == 10 && a.gw[0].route.gw.b[3] == 1);
	CHECK(!a.gw[1].set); /* an empty gateway: none */
	msgpack_zone_free(z);
}

static void expect_err(const char *json, const char *want)
{
	struct net_args a;
	struct cv_error err;
	msgpack_zone *z;
	CHECK(decode(json, &z, &a, &err) < 0);
	CHECK_STR(err.msg, want);
	msgpack_zone_free(z);
}

#define L "CreateLinksAndRoutesArgs.FDBasedLinks[0]"

TEST(test_errors_name_the_field)
{
	expect_err("{\"FDBasedLinks\":[{}]}", L ": needs a Name or an InterfaceIndex");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"a-name-of-seventeen\"}]}",
		   L ".Name: \"a-name-of-seventeen\" is longer than 15 bytes");
	expect_err("{\"FDBasedLinks\":[{\"InterfaceIndex\":-2}]}",
		   L ".InterfaceIndex: -2 is not an interface index");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"Addresses\":[{\"Address\":\"1.2.3\",\"PrefixLen\":8}]}]}",
		   L ".Addresses[0].Address: \"1.2.3\" is not an IP address");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"Addresses\":[{\"Address\":\"fd00::1\",\"PrefixLen\":129}]}]}",
		   L ".Addresses[0].PrefixLen: 129 is not in 0..128");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"Addresses\":[{\"Address\":\"10.0.0.1\"}]}]}",
		   L ".Addresses[0].PrefixLen: missing");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"Routes\":[{\"Destination\":{\"IP\":\"10.0.0.0\","
		   "\"Mask\":\"hex:ffffffffffffffffffffffffffffff00\"}}]}]}",
		   L ".Routes[0].Destination.Mask: a 16-byte mask for an IPv4 address");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"Routes\":[{\"Gateway\":\"10.0.0.1\"}]}]}",
		   L ".Routes[0].Destination: missing");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"LinkAddress\":\"hex:\"}]}",
		   L ".LinkAddress: a hardware address is 1 to 32 bytes, got 0");
	expect_err("{\"FDBasedLinks\":[{\"Name\":\"e\",\"Neighbors\":[{\"IP\":\"10.0.0.1\"}]}]}",
		   "CreateLinksAndRoutesArgs.FDBasedLinks[0].Neighbors[0].HardwareAddr: missing");
	expect_err("{\"Defaultv4Gateway\":{\"Route\":{\"Gateway\":\"10.0.0.1\"}}}",
		   "CreateLinksAndRoutesArgs.Defaultv4Gateway.Name: missing (the link of the default route)");
	expect_err("{\"Defaultv4Gateway\":{\"Route\":{\"Gateway\":\"fd00::1\"},\"Name\":\"e\"}}",
		   "CreateLinksAndRoutesArgs.Defaultv4Gateway.Route.Gateway: \"fd00::1\" is not an IPv4 "
		   "address");
	expect_err("{\"Defaultv4Gateway\":{\"Route\":{\"Destination\":{\"IP\":\"10.0.0.0\",\"Mask\":"
		   "\"hex:ff000000\"},\"Gateway\":\"10.0.0.1\"},\"Name\":\"e\"}}",
		   "CreateLinksAndRoutesArgs.Defaultv4Gateway.Route.Destination: a default route's mask "
		   "must be empty");
	expect_err("{\"XDPLinks\":[{}]}", "CreateLinksAndRoutesArgs.XDPLinks: AF_XDP links are not "
					   "supported; links are moved into the sandbox as they are "
					   "(FDBasedLinks)");
	expect_err("{\"NATBlob\":true}", "CreateLinksAndRoutesArgs.NATBlob: an iptables NAT blob is not "
					 "supported");
	expect_err("[]", "CreateLinksAndRoutesArgs: expected map, got array");
}

TEST(test_empty_argument_is_nothing_to_do)
{
	struct net_args a;
	struct cv_error err;
	msgpack_zone *z;
	CHECK(decode("{\"XDPLinks\":[],\"PCAP\":false}", &z, &a, &err) == 0);
	CHECK(a.n_links == 0 && !a.gw[0].set && !a.gw[1].set);
	msgpack_zone_free(z);
}

UNIT_MAIN(test_full_argument, test_errors_name_the_field, test_empty_argument_is_nothing_to_do)

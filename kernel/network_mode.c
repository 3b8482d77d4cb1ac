/* Network modes (kernel/network_mode.h). */
#include "kernel/network_mode.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/spec.h"
#include "core/util.h"
#include "kernel/model.h"
#include "kernel/spawn.h"
#include "netstack/ip.h"
#include "netstack/link.h"
#include "netstack/netns.h"
#include "netstack/nl.h"

static const char *const mode_names[] = {
	[NET_MODE_SANDBOX] = "sandbox",
	[NET_MODE_NONE] = "none",
	[NET_MODE_HOST] = "host",
};

int net_mode_parse(const char *s, enum net_mode *out, struct cv_error *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++)
		if (s && strcmp(s, mode_names[i]) == 0) {
			*out = (enum net_mode)i;
			return 0;
		}
	return cv_errf(err, 0, "network mode \"%s\": must be none, sandbox or host", s ? s : "");
}

const char *net_mode_name(enum net_mode m)
{
	return (size_t)m < ARRAY_SIZE(mode_names) ? mode_names[m] : "?";
}

int net_mode_apply_spec(struct oci_spec *spec, enum net_mode mode, msgpack_zone *zone,
			struct cv_error *err)
{
	if (mode == NET_MODE_SANDBOX)
		return 0;
	if (!spec->has_linux)
		return cv_errf(err, 0, "--network %s needs the spec's linux section",
			       net_mode_name(mode));
	struct oci_linux *l = &spec->linux_;
	size_t n = l->n_namespaces;
	struct oci_namespace *v = msgpack_zone_malloc(zone, (n + 1) * sizeof(*v));
	if (!v)
		return cv_errf(err, ENOMEM, "applying --network %s", net_mode_name(mode));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!l->namespaces[i].type || strcmp(l->namespaces[i].type, "network") != 0)
			v[k++] = l->namespaces[i];
	if (mode == NET_MODE_NONE)
		v[k++] = (struct oci_namespace){ .type = "network", .path = NULL };
	if (k < n || mode == NET_MODE_NONE)
		LOG(LL_INFO, "--network %s: the spec's network namespace is replaced",
		    net_mode_name(mode));
	l->namespaces = v;
	l->n_namespaces = k;
	return 0;
}

/* The kind of the root container's network namespace, from its spec. */
static enum net_kind kind_of(const struct oci_spec *spec)
{
	for (size_t i = 0; spec->has_linux && i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];
		if (ns->type && strcmp(ns->type, "network") == 0)
			return ns->path && *ns->path ? NET_KIND_PATH : NET_KIND_OWN;
	}
	return NET_KIND_HOST;
}

/* lo up, with its addresses: the kernel adds them when lo comes up, but
 * saying so keeps the namespace right whatever its sysctls. IPv6 may be
 * off in the kernel: then lo has IPv4 only. */
static int loopback_up(int nsfd, struct cv_error *err)
{
	int nl = netns_socket(nsfd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, err);
	if (nl < 0)
		return -1;
	struct net_ip v4, v6;
	net_ip_parse("127.0.0.1", &v4, "lo", err);
	net_ip_parse("::1", &v6, "lo", err);
	int r = link_up(nl, 1, "lo", err);
	if (r == 0)
		r = addr_add(nl, 1, "lo", &v4, 8, err);
	if (r == 0) {
		struct cv_error e6;
		if (addr_add(nl, 1, "lo", &v6, 128, &e6) < 0 && e6.code != EAFNOSUPPORT)
			LOG(LL_WARN, "%s", e6.msg);
	}
	close(nl);
	return r;
}

int net_mode_setup(struct sandbox *sb, struct cv_error *err)
{
	struct container *c = sb->root;
	sb->net_kind = kind_of(&c->spec);
	sb->netns_fd = -1;
	if (sb->net_kind == NET_KIND_HOST)
		return 0;
	/* Through the init's pidfd: no path of the container is resolved. */
	sb->netns_fd = netns_of_pidfd(c->init->pidfd, err);
	if (sb->netns_fd < 0)
		return cv_error_wrap(err, "finding the container's network namespace");
	if (sb->net_kind == NET_KIND_OWN && loopback_up(sb->netns_fd, err) < 0)
		return cv_error_wrap(err, "setting up the sandbox's loopback");
	return 0;
}

int net_spawn_sub(struct container *c, const struct spawn_init_args *sa, struct spawned *sp,
		  struct cv_error *err)
{
	struct oci_linux *l = &c->spec.linux_;
	size_t k = 0;
	for (size_t i = 0; c->spec.has_linux && i < l->n_namespaces; i++)
		if (!l->namespaces[i].type || strcmp(l->namespaces[i].type, "network") != 0)
			l->namespaces[k++] = l->namespaces[i];
	if (c->spec.has_linux)
		l->n_namespaces = k;
	c->ns_flags = spawn_ns_flags(&c->spec);
	int home = -1;
	if (c->sb->netns_fd >= 0 && netns_enter(c->sb->netns_fd, &home, err) < 0)
		return cv_error_wrap(err, "joining the sandbox's network namespace");
	int r = spawn_container_init(sa, sp, err);
	if (home >= 0)
		netns_leave(home);
	return r;
}

int net_sub_join_flags(const struct sandbox *sb)
{
	return sb->netns_fd >= 0 ? CLONE_NEWNET : 0;
}


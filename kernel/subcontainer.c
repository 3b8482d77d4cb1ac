/* containerManager.CreateSubcontainer, StartSubcontainer and
 * ReleaseSubcontainer: more containers in a running sandbox, as runsc
 * serves a Kubernetes pod (docs/API.md; docs/DESIGN.md, "Pods").
 *
 * A subcontainer's init lives in a new child pid namespace of the root
 * container's (kernel/spawn.c, clone_nested_pidns), is a child of boot's
 * parent like the root init (the pid contract), and gets its root as a
 * detached mount donated with the call: boot never resolves the
 * container's root path. */
#include <errno.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/exit_source.h"
#include "kernel/gofer_conn.h"
#include "kernel/methods.h"
#include "kernel/network_mode.h"
#include "kernel/park.h"
#include "kernel/spawn.h"
#include "kernel/userns.h"
#include "netstack/netns.h"

/* GoferMountConfs entries (the seed's numbering). */
enum { UPPER_NONE = 0, UPPER_MEMORY = 1, UPPER_SELF = 2, UPPER_ANON = 3 };

struct mount_conf {
	int32_t lower, upper;
	char *size;
};

static const struct mpk_field mount_conf_fields[] = {
	{ "lower", MPK_I32, offsetof(struct mount_conf, lower), MPK_NONE, MPK_NONE, 0, NULL },
	{ "upper", MPK_I32, offsetof(struct mount_conf, upper), MPK_NONE, MPK_NONE, 0, NULL },
	{ "size", MPK_STR, offsetof(struct mount_conf, size), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema mount_conf_schema = {
	"GoferMountConf", sizeof(struct mount_conf), mount_conf_fields, ARRAY_SIZE(mount_conf_fields)
};

struct start_args {
	const msgpack_object *spec, *conf;
	bool has_spec, has_conf;
	char *cid;
	int32_t n_filestore;
	bool dev_io, tar;
	struct mount_conf *confs;
	size_t n_confs;
	bool hold;
};

static const struct mpk_field start_fields[] = {
	{ "Spec", MPK_OBJ, offsetof(struct start_args, spec), MPK_NONE,
	  offsetof(struct start_args, has_spec), 0, NULL },
	{ "Conf", MPK_OBJ, offsetof(struct start_args, conf), MPK_NONE,
	  offsetof(struct start_args, has_conf), 0, NULL },
	{ "CID", MPK_STR, offsetof(struct start_args, cid), MPK_NONE, MPK_NONE, 0, NULL },
	{ "NumGoferFilestoreFDs", MPK_I32, offsetof(struct start_args, n_filestore), MPK_NONE,
	  MPK_NONE, 0, NULL },
	{ "IsDevIoFilePresent", MPK_BOOL, offsetof(struct start_args, dev_io), MPK_NONE, MPK_NONE,
	  0, NULL },
	{ "GoferMountConfs", MPK_STRUCTV, offsetof(struct start_args, confs),
	  offsetof(struct start_args, n_confs), MPK_NONE, 0, &mount_conf_schema },
	{ "IsRootfsUpperTarFilePresent", MPK_BOOL, offsetof(struct start_args, tar), MPK_NONE,
	  MPK_NONE, 0, NULL },
	/* cvisor's: spawn the init and answer once it is set up, waiting for
	 * ReleaseSubcontainer (`cvisor create` then `cvisor start`). */
	{ "Hold", MPK_BOOL, offsetof(struct start_args, hold), MPK_NONE, MPK_NONE, 0, NULL },
};
static const struct mpk_schema start_schema = { "StartArgs", sizeof(struct start_args),
						start_fields, ARRAY_SIZE(start_fields) };

struct create_args {
	char *cid;
};
static const struct mpk_field create_fields[] = {
	{ "CID", MPK_STR, offsetof(struct create_args, cid), MPK_NONE, MPK_NONE, MPK_REQUIRED, NULL },
};
static const struct mpk_schema create_schema = { "CreateArgs", sizeof(struct create_args),
						 create_fields, ARRAY_SIZE(create_fields) };

void cm_create_subcontainer(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	struct create_args a;
	if (mpk_decode(arg, &create_schema, &a, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	if (rpc_call_nfiles(call) > 1) {
		rpc_fail(call, "start arguments must have at most 1 files for TTY");
		return;
	}
	if (!*a.cid) {
		rpc_fail(call, "CreateArgs.CID: must not be empty");
		return;
	}
	if (sandbox_find_container(sb, a.cid)) {
		rpc_fail(call, "container \"%s\" already exists", a.cid);
		return;
	}
	struct container *c = container_new(sb, a.cid, NULL, &err);
	if (!c) {
		rpc_fail_err(call, &err);
		return;
	}
	c->is_sub = true;
	if (rpc_call_nfiles(call) == 1)
		c->tty_fd = rpc_call_take_file(call, 0);
	LOG(LL_INFO, "subcontainer %s registered%s", c->id, c->tty_fd >= 0 ? " with a TTY" : "");
	rpc_reply_nil(call);
}

/* The spec outlives the call: packed again and unpacked into the
 * container's own zone. */
static int copy_spec(struct container *c, const msgpack_object *spec, struct cv_error *err)
{
	msgpack_sbuffer buf;
	msgpack_sbuffer_init(&buf);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	int r = -1;
	msgpack_zone *zone = NULL;
	if (msgpack_pack_object(&pk, *spec) < 0) {
		cv_errf(err, ENOMEM, "StartArgs.Spec: copying the spec");
		goto out;
	}
	zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	msgpack_object obj;
	size_t off = 0;
	if (!zone || msgpack_unpack(buf.data, buf.size, &off, zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
		cv_errf(err, ENOMEM, "StartArgs.Spec: copying the spec");
		goto out;
	}
	if (oci_spec_decode(&obj, zone, &c->spec, err) < 0) {
		cv_error_wrap(err, "StartArgs.Spec");
		goto out;
	}
	c->zone = zone;
	zone = NULL;
	r = 0;
out:
	if (zone)
		msgpack_zone_free(zone);
	msgpack_sbuffer_destroy(&buf);
	return r;
}

/* Without a path from `create` (a client calling the method itself), the
 * sub's cgroup is a sibling of the root's, named after it. */
static const char *sub_cgroup_path(struct container *c, char *buf, size_t n)
{
	if (c->spec.cgroup_path && *c->spec.cgroup_path)
		return c->spec.cgroup_path;
	const char *root = c->sb->root->spec.cgroup_path;
	const char *slash = root ? strrchr(root, '/') : NULL;
	int len = slash ? (int)(slash - root) : 0;
	snprintf(buf, n, "%.*s/%s", len, root ? root : "", c->id);
	return buf;
}

static void sub_started(struct rpc_call *call, struct task *t, int err)
{
	(void)err;
	if (t->start_failed)
		rpc_fail(call, "starting container \"%s\": %s", t->c->id, task_start_err(t));
	else if (t->state == TASK_EXITED && !t->ready)
		rpc_fail(call, "starting container \"%s\": its init exited during set-up", t->c->id);
	else
		rpc_reply_nil(call);
}

static void release(struct rpc_call *call, struct task *t)
{
	struct cv_error err;
	cv_error_reset(&err);
	if (spawn_release(t->ctl_fd, &err) < 0) {
		rpc_fail(call, "starting container \"%s\": %s", t->c->id, err.msg);
		return;
	}
	t->state = TASK_STARTING;
	park_call(call, t, &t->started, sub_started, "StartSubcontainer: init execve");
}

/* The init reported READY (or failed, or died). */
static void sub_ready(struct rpc_call *call, struct task *t, bool hold)
{
	if (t->start_failed || t->state == TASK_EXITED || !t->ready) {
		sub_started(call, t, 0);
		return;
	}
	if (hold)
		rpc_reply_int(call, t->host_pid);
	else
		release(call, t);
}

static void sub_ready_hold(struct rpc_call *call, struct task *t, int err)
{
	(void)err;
	sub_ready(call, t, true);
}

static void sub_ready_run(struct rpc_call *call, struct task *t, int err)
{
	(void)err;
	sub_ready(call, t, false);
}

static const char *sandbox_state_name(const struct sandbox *sb)
{
	const struct task *init = sb->root->init;
	if (sb->ended || init->state == TASK_EXITED)
		return "stopped";
	return sb->started ? "started" : "created";
}

/* process.terminal of the raw spec (a map), for counting the fds before
 * anything else is looked at, as the seed does. */
static bool spec_terminal(const msgpack_object *spec)
{
	const msgpack_object *proc = mpk_map_get(spec, "process");
	const msgpack_object *t = proc ? mpk_map_get(proc, "terminal") : NULL;
	return t && t->type == MSGPACK_OBJECT_BOOLEAN && t->via.boolean;
}

/* Checks in the seed's order; the fds are counted from the spec. */
static int check_start(struct rpc_call *call, struct sandbox *sb, const struct start_args *a,
		       struct container **out, struct cv_error *err)
{
	if (!a->has_spec)
		return cv_errf(err, 0, "start arguments missing spec");
	if (!a->has_conf)
		return cv_errf(err, 0, "start arguments missing config");
	if (!a->cid || !*a->cid)
		return cv_errf(err, 0, "start argument missing container ID");
	if (!sb->started || sb->ended || sb->root->init->state != TASK_RUNNING)
		return cv_errf(err, 0,
			       "sandbox is not in started state, cannot start subcontainer: state=%s",
			       sandbox_state_name(sb));
	if (a->n_filestore < 0)
		return cv_errf(err, 0, "StartArgs.NumGoferFilestoreFDs: must not be negative (%d)",
			       a->n_filestore);
	for (size_t i = 0; i < a->n_confs; i++) {
		if (a->confs[i].lower < 0 || a->confs[i].lower > 2)
			return cv_errf(err, 0, "StartArgs.GoferMountConfs[%zu].lower: unknown medium %d",
				       i, a->confs[i].lower);
		if (a->confs[i].upper < 0 || a->confs[i].upper > 3)
			return cv_errf(err, 0, "StartArgs.GoferMountConfs[%zu].upper: unknown medium %d",
				       i, a->confs[i].upper);
	}
	const bool terminal = spec_terminal(a->spec);
	size_t need = 1 + (size_t)a->n_filestore + (a->dev_io ? 1 : 0) + (a->tar ? 1 : 0) +
		      (terminal ? 0 : 3);
	size_t got = rpc_call_nfiles(call);
	if (got < need)
		return cv_errf(err, 0, "start arguments must contain at least %zu FDs, but only got %zu",
			       need, got);
	struct container *c = sandbox_find_container(sb, a->cid);
	if (!c)
		return cv_errf(err, 0, "trying to start a deleted container \"%s\"", a->cid);
	if (!c->is_sub || c->init || c->zone)
		return cv_errf(err, 0, "container \"%s\" has already been started", a->cid);
	if (c->destroying)
		return cv_errf(err, 0, "trying to start a deleted container \"%s\"", a->cid);
	*out = c;
	return 0;
}

/* What the init is started from once the root is known: the fds are the
 * call's (borrowed) or, while a gofer is asked, taken (owned). */
struct sub_start {
	int stdio[3];
	int root;      /* detached tree */
	int upper;     /* -1, or the self medium's filestore (a detached directory tree) */
	int gofer;     /* -1, or the gofer connection (kept for its hang-up) */
	int *mount_fds; /* NULL, or per spec mount: -1 or the gofer's bind mount (owned) */
	size_t n_mount_fds;
	bool terminal, overlay, hold, owned;
	struct rpc_call *call; /* NULL once the client left */
	struct sandbox *sb;
	char *cid;
	struct gofer_req *req;
	struct spawn_sub spawn; /* the init's helper in flight (spawn_sub_begin) */
	ev_io spawn_w;
};

static void sub_start_free(struct sub_start *s)
{
	if (s->owned) {
		for (int i = 0; i < 3; i++)
			if (s->stdio[i] >= 0)
				close(s->stdio[i]);
		if (s->root >= 0)
			close(s->root);
		if (s->upper >= 0)
			close(s->upper);
		if (s->gofer >= 0)
			close(s->gofer);
	}
	ev_io_stop(core_loop(), &s->spawn_w);
	spawn_sub_abort(&s->spawn);
	if (s->mount_fds) {
		for (size_t i = 0; i < s->n_mount_fds; i++)
			if (s->mount_fds[i] >= 0)
				close(s->mount_fds[i]);
		free(s->mount_fds);
	}
	free(s->cid);
	free(s);
}

/* What is refused before anything exists. */
static int check_sub(struct container *c, const struct start_args *a, int *upper,
		     struct cv_error *err)
{
	const bool terminal = c->spec.has_process && c->spec.process.terminal;
	if (terminal && c->tty_fd < 0)
		return cv_errf(err, 0, "terminal enabled but no TTY provided. Did you set "
				       "--console-socket on create?");
	if (a->tar)
		return cv_errf(err, 0, "StartArgs.IsRootfsUpperTarFilePresent: restoring a rootfs "
				       "upper layer from a tar file is not supported");
	if (c->spec.has_hooks)
		return cv_errf(err, 0, "StartArgs.Spec.hooks: OCI hooks are not supported for "
				       "subcontainers (the engine runs a pod's hooks for its sandbox)");
	*upper = a->n_confs ? a->confs[0].upper : UPPER_NONE;
	if (*upper == UPPER_SELF && a->n_filestore < 1)
		return cv_errf(err, 0, "StartArgs.GoferMountConfs[0].upper: the \"self\" medium needs "
				       "its filestore (NumGoferFilestoreFDs 1: a detached mount of a "
				       "directory for the upper layer)");
	return 0;
}

/* The spawn arguments, the same at begin and at finish. */
static void sub_spawn_args(struct container *c, const struct sub_start *s,
			   struct spawn_init_args *sa)
{
	*sa = (struct spawn_init_args){
		.spec = &c->spec,
		.bundle = NULL,
		.cg = &c->cg,
		.console_fd = -1,
		.has_pidns_parent = true,
		.pidns_parent = c->sb->root->init->pidfd,
		.has_root_tree = true,
		.root_tree = s->root,
		.root_overlay_memory = s->overlay,
		.root_upper_tree = s->upper,
		.mount_fds = s->mount_fds,
		.stdio_is_tty = s->terminal,
	};
	for (int i = 0; i < 3; i++)
		sa->stdio[i] = s->terminal ? c->tty_fd : s->stdio[i];
}

/* The cgroup, then the init's helper (kernel/spawn.h, spawn_sub_begin):
 * from here the helper and the init hold their own copies of every fd. */
static int spawn_sub(struct container *c, struct sub_start *s, struct cv_error *err)
{
	struct sandbox *sb = c->sb;
	char cgbuf[4096];
	const char *cgpath = sub_cgroup_path(c, cgbuf, sizeof(cgbuf));
	/* Destroying this container kills and removes its cgroup: never one
	 * another container of the sandbox lives in. */
	list_for_each(n, &sb->containers) {
		const struct container *o = container_of(n, struct container, link);
		if (o != c && o->cg_made && o->cg.path &&
		    strcmp(o->cg.path + strspn(o->cg.path, "/"), cgpath + strspn(cgpath, "/")) == 0)
			return cv_errf(err, 0, "StartArgs.Spec.linux.cgroupsPath: \"%s\" is the cgroup "
					       "of container \"%s\"", cgpath, o->id);
	}
	const struct oci_resources *res =
		(c->spec.has_linux && c->spec.linux_.has_resources) ? &c->spec.linux_.resources : NULL;
	if (cgroup_create(&c->cg, cgpath, res, err) < 0)
		return cv_error_wrap(err, "the subcontainer's cgroup");
	c->cg_made = true;
	/* Subcontainers share the sandbox's network, whatever their spec says
	 * (the policy of kernel/network_mode.h, net_spawn_sub): the spec's
	 * network entries are dropped and the helper is forked from inside
	 * the sandbox's namespace, so the init inherits it. */
	struct oci_linux *l = &c->spec.linux_;
	size_t k = 0;
	for (size_t i = 0; c->spec.has_linux && i < l->n_namespaces; i++)
		if (!l->namespaces[i].type || strcmp(l->namespaces[i].type, "network") != 0)
			l->namespaces[k++] = l->namespaces[i];
	if (c->spec.has_linux)
		l->n_namespaces = k;
	c->ns_flags = spawn_ns_flags(&c->spec);
	int home = -1;
	if (sb->netns_fd >= 0 && netns_enter(sb->netns_fd, &home, err) < 0)
		return cv_error_wrap(err, "joining the sandbox's network namespace");
	struct spawn_init_args sa;
	sub_spawn_args(c, s, &sa);
	int r = spawn_sub_begin(&sa, &s->spawn, err);
	if (home >= 0)
		netns_leave(home);
	return r;
}

/* The helper answered: the init exists (or not). */
static int track_init(struct container *c, struct sub_start *s, struct cv_error *err)
{
	struct spawn_init_args sa;
	sub_spawn_args(c, s, &sa);
	struct spawned sp;
	if (spawn_sub_finish(&sa, &s->spawn, &sp, err) < 0)
		return -1;
	c->init = task_new(c, sp.pid, sp.pidfd, sp.ctl_fd, true);
	if (!c->init) {
		syscall(SYS_pidfd_send_signal, sp.pidfd, SIGKILL, NULL, 0);
		close(sp.pidfd);
		close(sp.ctl_fd);
		return cv_errf(err, ENOMEM, "tracking the subcontainer's init");
	}
	c->init->foreign_parent = true;
	c->init->has_tty = s->terminal;
	if (exit_source_watch(sp.pid, err) < 0) {
		syscall(SYS_pidfd_send_signal, sp.pidfd, SIGKILL, NULL, 0);
		return -1;
	}
	c->init->ns_pid = pidns_to_root(c->sb, sp.pid);
	/* Execs join the init's pid namespace, whichever it is: never boot's. */
	c->join_flags = userns_exec_join_flags(spawn_ns_join_flags(&c->spec) | CLONE_NEWPID, sp.pid);
	c->join_flags |= net_sub_join_flags(c->sb);
	task_watch(c->init);
	LOG(LL_INFO, "subcontainer %s: init host pid %d, root-namespace pid %d", c->id, sp.pid,
	    c->init->ns_pid);
	return 0;
}

static void start_call_gone(struct rpc_call *call, void *data)
{
	(void)call;
	struct sub_start *s = data;
	s->call = NULL;
}

static void on_helper(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct sub_start *s = container_of(w, struct sub_start, spawn_w);
	ev_io_stop(loop, w);
	struct cv_error err;
	cv_error_reset(&err);
	struct container *c = sandbox_find_container(s->sb, s->cid);
	struct rpc_call *call = s->call;
	if (call)
		rpc_call_set_cancel(call, NULL, NULL);
	if (!c || c->destroying || !call) {
		/* Nobody waits for it, or it was destroyed meanwhile: the init,
		 * if it came to be, goes (its report channel closes with s). */
		if (c)
			c->sub_failed = true;
		if (call)
			rpc_fail(call, "trying to start a deleted container \"%s\"", s->cid);
		sub_start_free(s);
		return;
	}
	if (track_init(c, s, &err) < 0) {
		if (err.code == EAGAIN) {
			ev_io_start(loop, w);
			rpc_call_set_cancel(call, start_call_gone, s);
			return; /* not yet */
		}
		c->sub_failed = true;
		LOG(LL_INFO, "subcontainer %s failed to start: %s", c->id, err.msg);
		rpc_fail(call, "starting container \"%s\": %s", c->id, err.msg);
		sub_start_free(s);
		return;
	}
	if (s->gofer >= 0) {
		gofer_watch(c, s->gofer); /* taken */
		s->gofer = -1;
	}
	park_call(call, c->init, &c->init->started, s->hold ? sub_ready_hold : sub_ready_run,
		  "StartSubcontainer: init set-up");
	sub_start_free(s);
}

/* The root is known: the cgroup and the init's helper now, the rest when
 * the helper answers (on_helper); the loop serves everyone meanwhile. On
 * failure the cid is failedToStart (ContainerRuntimeState: Stopped).
 * Takes s. */
static void sub_launch(struct container *c, struct sub_start *s)
{
	struct cv_error err;
	cv_error_reset(&err);
	struct rpc_call *call = s->call;
	if (!call || spawn_sub(c, s, &err) < 0) {
		c->sub_failed = true;
		LOG(LL_INFO, "subcontainer %s failed to start: %s", c->id, err.msg);
		if (call)
			rpc_fail_err(call, &err);
		sub_start_free(s);
		return;
	}
	/* The init has its copies: the call's fds may go with its request. */
	if (!s->owned)
		s->stdio[0] = s->stdio[1] = s->stdio[2] = s->root = s->upper = -1;
	ev_io_set(&s->spawn_w, s->spawn.reply_fd, EV_READ);
	ev_io_start(core_loop(), &s->spawn_w);
	rpc_call_set_cancel(call, start_call_gone, s);
}

/* The gofer's bind mounts (fds[1..]), where the init looks for them;
 * taken, closed with s. */
static int place_binds(struct container *c, struct sub_start *s, int *fds, size_t nfds,
		       struct cv_error *err)
{
	if (spawn_bind_fds(&c->spec, fds + 1, nfds - 1, &s->mount_fds, err) < 0) {
		for (size_t i = 1; i < nfds; i++)
			close(fds[i]);
		return cv_error_wrap(err, "the container's gofer");
	}
	s->n_mount_fds = s->mount_fds ? c->spec.n_mounts : 0;
	return 0;
}

static void gofer_answered(void *data, int *fds, size_t nfds, const struct cv_error *gerr)
{
	struct sub_start *s = data;
	struct cv_error err;
	cv_error_reset(&err);
	s->req = NULL;
	if (s->call)
		rpc_call_set_cancel(s->call, NULL, NULL);
	struct container *c = sandbox_find_container(s->sb, s->cid);
	if (!nfds || !c || c->destroying || !s->call) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		if (c)
			c->sub_failed = true;
		if (s->call && !nfds)
			rpc_fail(s->call, "starting container \"%s\": %s", s->cid, gerr->msg);
		else if (s->call)
			rpc_fail(s->call, "trying to start a deleted container \"%s\"", s->cid);
		sub_start_free(s);
		return;
	}
	s->root = fds[0];
	if (place_binds(c, s, fds, nfds, &err) < 0) {
		c->sub_failed = true;
		rpc_fail(s->call, "starting container \"%s\": %s", s->cid, err.msg);
		sub_start_free(s);
		return;
	}
	sub_launch(c, s);
}

void cm_start_subcontainer(struct rpc_call *call, const msgpack_object *arg)
{
	struct sandbox *sb = rpc_call_ctx(call);
	struct cv_error err;
	cv_error_reset(&err);
	struct start_args a;
	struct container *c = NULL;
	int upper = UPPER_NONE;
	if (mpk_decode(arg, &start_schema, &a, rpc_call_zone(call), &err) < 0 ||
	    check_start(call, sb, &a, &c, &err) < 0) {
		rpc_fail_err(call, &err);
		return;
	}
	struct sub_start *s = NULL;
	if (copy_spec(c, a.spec, &err) < 0 || check_sub(c, &a, &upper, &err) < 0 ||
	    !(s = calloc(1, sizeof(*s))) || !(s->cid = strdup(c->id))) {
		if (!cv_error_is_set(&err))
			cv_errf(&err, ENOMEM, "starting container \"%s\"", c->id);
		free(s);
		c->sub_failed = true;
		rpc_fail_err(call, &err);
		return;
	}
	s->terminal = c->spec.has_process && c->spec.process.terminal;
	s->overlay = upper != UPPER_NONE;
	s->hold = a.hold;
	s->call = call;
	s->sb = sb;
	s->gofer = -1;
	s->spawn.ctl_fd = s->spawn.reply_fd = -1;
	ev_io_init(&s->spawn_w, on_helper, -1, EV_READ);
	size_t stdio0 = 0;
	size_t root_index = (s->terminal ? 0 : 3) + (size_t)a.n_filestore + (a.dev_io ? 1 : 0);
	for (int i = 0; i < 3; i++)
		s->stdio[i] = s->terminal ? -1 : rpc_call_file(call, stdio0 + (size_t)i);
	s->root = rpc_call_file(call, root_index);
	size_t filestore = s->terminal ? 0 : 3;
	s->upper = upper == UPPER_SELF ? rpc_call_file(call, filestore) : -1;
	struct stat st;
	if (s->upper >= 0 && (fstat(s->upper, &st) < 0 || !S_ISDIR(st.st_mode))) {
		c->sub_failed = true;
		rpc_fail(call, "StartArgs.GoferMountConfs[0].upper: the \"self\" medium's filestore "
			       "must be a directory (a detached mount of one)");
		sub_start_free(s);
		return;
	}
	if (fstat(s->root, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		/* A detached tree donated directly. */
		sub_launch(c, s);
		return;
	}
	/* A gofer connection: ask it for the root; the call waits, the loop
	 * does not. The fds are taken: the request is freed on return. */
	s->owned = true;
	for (int i = 0; i < 3; i++)
		if (s->stdio[i] >= 0)
			s->stdio[i] = rpc_call_take_file(call, stdio0 + (size_t)i);
	s->gofer = rpc_call_take_file(call, root_index);
	if (s->upper >= 0)
		s->upper = rpc_call_take_file(call, filestore);
	s->root = -1;
	s->req = gofer_root_start(s->gofer, gofer_answered, s, &err);
	if (!s->req) {
		c->sub_failed = true;
		rpc_fail_err(call, &err);
		sub_start_free(s);
		return;
	}
	rpc_call_set_cancel(call, start_call_gone, s);
}

void cm_release_subcontainer(struct rpc_call *call, const msgpack_object *arg)
{
	char *cid;
	struct container *c = arg_container(call, arg, &cid);
	if (!c)
		return;
	struct task *t = c->init;
	if (!c->is_sub || !t || !t->ready || t->state != TASK_CREATED || t->start_failed) {
		rpc_fail(call, "container \"%s\" is not a created subcontainer waiting to start", cid);
		return;
	}
	release(call, t);
}

/* kernel/spawn*: container init and exec into it, on a busybox rootfs.
 * Needs root (namespaces, mounts, cgroups). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "kernel/exit_source.h"
#include "kernel/spawn.h"
#include "kernel/spawner.h"
#include "kernel/mount_opts.h"
#include "kernel/spawn_internal.h"
#include "kernel/sysctl.h"
#include "test/unit/mpk_fixture.h"
#include "test/unit/unit.h"

static char tmpdir[] = "/tmp/cvisor-spawn-XXXXXX";
static char rootfs[256];
static struct cgroup cg = { .path = NULL, .v2_dirfd = -1, .n_v1 = 0 };
static bool have_cg;

/* ---- fixture ---- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void make_rootfs(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmpdir);
	const char *dirs[] = { "", "/bin", "/proc", "/dev", "/tmp", "/etc", "/root", "/home",
			       "/home/alice" };
	char p[512];
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s%s", rootfs, dirs[i]);
		mkdir(p, 0755);
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cp /bin/busybox %s/bin/busybox", rootfs);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot copy /bin/busybox\n");
		exit(2);
	}
	const char *links[] = { "sh", "echo", "sleep", "cat", "true", "false", "ls", "id",
				"hostname", "pwd", "test", "grep", "touch", "readlink" };
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		snprintf(p, sizeof(p), "%s/bin/%s", rootfs, links[i]);
		symlink("busybox", p);
	}
	snprintf(p, sizeof(p), "%s/etc/passwd", rootfs);
	write_text(p, "root:x:0:0:root:/root:/bin/sh\n"
		      "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n");
	/* Not executable: for the permission check. */
	snprintf(p, sizeof(p), "%s/bin/noexec", rootfs);
	write_text(p, "#!/bin/sh\n");
}

static char *args_exit3[] = { "sh", "-c", "exit 3", NULL };
static char *env_default[] = { "PATH=/bin", "TERM=xterm", NULL };
static char *opts_dev[] = { "nosuid", "strictatime", "mode=755", "size=65536k" };
static char *opts_pts[] = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" };
static char *opts_tmp[] = { "nosuid", "nodev", "mode=1777" };

/* pid, mount, uts, ipc, net; proc, /dev tmpfs, devpts, /tmp; hostname. */
static void make_spec(struct oci_spec *s, char **args, size_t n_args)
{
	static struct oci_namespace ns[6];
	static struct oci_mount mounts[8];
	memset(s, 0, sizeof(*s));
	memset(ns, 0, sizeof(ns));
	memset(mounts, 0, sizeof(mounts));
	ns[0].type = "pid";
	ns[1].type = "mount";
	ns[2].type = "uts";
	ns[3].type = "ipc";
	ns[4].type = "network";
	mounts[0] = (struct oci_mount){ .destination = "/proc", .type = "proc", .source = "proc" };
	mounts[1] = (struct oci_mount){ .destination = "/dev", .type = "tmpfs", .source = "tmpfs",
					.options = opts_dev, .n_options = 4 };
	mounts[2] = (struct oci_mount){ .destination = "/dev/pts", .type = "devpts",
					.source = "devpts", .options = opts_pts, .n_options = 5 };
	mounts[3] = (struct oci_mount){ .destination = "/tmp", .type = "tmpfs", .source = "tmpfs",
					.options = opts_tmp, .n_options = 3 };
	s->has_process = true;
	s->process.args = args;
	s->process.n_args = n_args;
	s->process.env = env_default;
	s->process.n_env = 2;
	s->process.cwd = "/";
	s->has_root = true;
	s->root.path = "rootfs";
	s->hostname = "ctr-test";
	s->mounts = mounts;
	s->n_mounts = 4;
	s->has_linux = true;
	s->linux_.namespaces = ns;
	s->linux_.n_namespaces = 5;
}

/* Polls ctl for a report (up to 5 s; SPAWN_REPORT_AGAIN after that). */
/* Waits up to 60 s: a guard against a hang, not a timing check (5 s ran
 * out now and then while other builds loaded the machine). */
static enum spawn_report_result wait_report(int ctl, struct cv_error *err)
{
	for (int i = 0; i < 600; i++) {
		struct pollfd p = { .fd = ctl, .events = POLLIN };
		poll(&p, 1, 100);
		enum spawn_report_result r = spawn_read_report(ctl, NULL, err);
		if (r != SPAWN_REPORT_AGAIN)
			return r;
	}
	cv_errf(err, 0, "no report from the container process in 60 s");
	return SPAWN_REPORT_AGAIN;
}

/* The pid a pidfd refers to ("Pid:" in its fdinfo). */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	FILE *f = fopen(path, "re");
	pid_t pid = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	if (f)
		fclose(f);
	return pid;
}

/* Exit code of the process (128+sig when killed). Exec targets are our
 * children and are reaped through the pidfd; inits (CLONE_PARENT) are our
 * parent's, and their status comes from kernel/exit_source as in boot. */
static int reap(int pidfd)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) == 0)
		return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	if (errno != ECHILD)
		return -1;
	pid_t pid = pidfd_pid(pidfd);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1)
		return -1;
	for (int i = 0; i < 1000; i++) {
		int st;
		struct cv_error err;
		int r = exit_source_status(pidfd, pid, &st, &err);
		if (r < 0)
			return -1;
		if (r == 1)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		poll(NULL, 0, 5);
	}
	return -1;
}

static int spawn_init(struct oci_spec *spec, int out_fd, struct spawned *sp, struct cv_error *err)
{
	struct spawn_init_args a = {
		.spec = spec,
		.bundle = tmpdir,
		.stdio = { -1, out_fd, 2 },
		.cg = &cg,
	};
	return spawn_container_init(&a, sp, err);
}

/* Runs an init to its end: READY, release, EOF, exit code (or -1 and err). */
static int run_init(struct oci_spec *spec, struct cv_error *err)
{
	struct spawned sp;
	if (spawn_init(spec, 1, &sp, err) < 0)
		return -100;
	enum spawn_report_result r = wait_report(sp.ctl_fd, err);
	int code = -1;
	if (r == SPAWN_REPORT_READY && spawn_release(sp.ctl_fd, err) == 0) {
		r = wait_report(sp.ctl_fd, err);
		code = reap(sp.pidfd);
		if (r != SPAWN_REPORT_EXECED)
			code = -1;
	} else {
		kill(sp.pid, SIGKILL);
		reap(sp.pidfd);
	}
	close(sp.pidfd);
	close(sp.ctl_fd);
	return code;
}

/* ---- pure helpers ---- */

TEST(test_ns_flags)
{
	struct oci_spec s;
	make_spec(&s, args_exit3, 3);
	CHECK(spawn_ns_flags(&s) == (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
				     CLONE_NEWNET));
	s.linux_.namespaces[4].path = "/proc/1/ns/net"; /* joined, not created */
	CHECK(spawn_ns_flags(&s) == (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC));
	s.linux_.namespaces[5].type = "cgroup";
	s.linux_.n_namespaces = 6;
	CHECK(spawn_ns_flags(&s) & CLONE_NEWCGROUP);
	/* A new user namespace is cloned with the others; an exec joins it. */
	make_spec(&s, args_exit3, 3);
	s.linux_.namespaces[5].type = "user";
	s.linux_.n_namespaces = 6;
	CHECK(spawn_ns_flags(&s) & CLONE_NEWUSER);
	CHECK(spawn_ns_join_flags(&s) & CLONE_NEWUSER);
	s.linux_.namespaces[5].path = "/proc/1/ns/user";
	CHECK(!(spawn_ns_flags(&s) & CLONE_NEWUSER));
	CHECK(spawn_ns_join_flags(&s) & CLONE_NEWUSER);
	s.has_linux = false;
	CHECK(spawn_ns_flags(&s) == 0);
}

/* sysctl_check: namespaced keys only, and only with the namespace. */
static int sysctl_case(struct oci_spec *s, const char *json, struct cv_error *err)
{
	struct fx f;
	fx_json(&f, json);
	s->linux_.sysctl = &f.obj;
	cv_error_reset(err);
	int r = sysctl_check(s, err);
	s->linux_.sysctl = NULL;
	fx_end(&f);
	return r;
}

TEST(test_sysctl_check)
{
	struct oci_spec s;
	make_spec(&s, args_exit3, 3); /* pid, mount, uts, ipc, network */
	struct cv_error err;
	CHECK(sysctl_case(&s, "{\"net.ipv4.ip_forward\":\"1\",\"kernel.msgmax\":\"8192\","
			      "\"kernel.shm_rmid_forced\":\"1\",\"fs.mqueue.msg_max\":\"10\","
			      "\"kernel.hostname\":\"x\",\"kernel.sem\":\"1 2 3 4\"}",
			  &err) == 0);
	CHECK(sysctl_case(&s, "{\"kernel.printk_ratelimit\":\"7\"}", &err) < 0);
	CHECK_STR(err.msg, "spec.linux.sysctl: \"kernel.printk_ratelimit\" is not namespaced: "
			   "refusing to change the host");
	CHECK(sysctl_case(&s, "{\"net.ipv4.ip_forward\":\"1\",\"kernel.core_pattern\":\"|/x\"}",
			  &err) < 0);
	CHECK(strstr(err.msg, "\"kernel.core_pattern\" is not namespaced") != NULL);
	/* Near misses of the lists are not namespaced. */
	CHECK(sysctl_case(&s, "{\"kernel.msgmax2\":\"1\"}", &err) < 0);
	CHECK(sysctl_case(&s, "{\"fs.mqueue\":\"1\"}", &err) < 0);
	CHECK(sysctl_case(&s, "{\"netfilter.x\":\"1\"}", &err) < 0);
	CHECK(sysctl_case(&s, "{\"net\":\"1\"}", &err) < 0);
	/* Malformed keys. */
	CHECK(sysctl_case(&s, "{\"net/ipv4/ip_forward\":\"1\"}", &err) < 0);
	CHECK(strstr(err.msg, "invalid key") != NULL);
	CHECK(sysctl_case(&s, "{\"net..ipv4\":\"1\"}", &err) < 0);
	CHECK(sysctl_case(&s, "{\".net.ipv4\":\"1\"}", &err) < 0);
	CHECK(sysctl_case(&s, "{\"net.ipv4.\":\"1\"}", &err) < 0);
	CHECK(sysctl_case(&s, "{\"\":\"1\"}", &err) < 0);
	/* A joined namespace (by path) is the container's own too. */
	s.linux_.namespaces[4].path = "/proc/1/ns/net";
	CHECK(sysctl_case(&s, "{\"net.ipv4.ip_forward\":\"1\"}", &err) == 0);
	/* Without the namespace: refused, naming the key and the namespace. */
	s.linux_.n_namespaces = 2; /* pid, mount */
	CHECK(sysctl_case(&s, "{\"net.ipv4.ip_forward\":\"1\"}", &err) < 0);
	CHECK_STR(err.msg, "spec.linux.sysctl: \"net.ipv4.ip_forward\" needs the container's own "
			   "network namespace (spec.linux.namespaces): refusing to change the host's");
	CHECK(sysctl_case(&s, "{\"kernel.shmmax\":\"1\"}", &err) < 0);
	CHECK(strstr(err.msg, "own ipc namespace") != NULL);
	CHECK(sysctl_case(&s, "{\"kernel.domainname\":\"x\"}", &err) < 0);
	CHECK(strstr(err.msg, "own uts namespace") != NULL);
	CHECK(sysctl_case(&s, "{}", &err) == 0);
}

TEST(test_mount_options)
{
	char *o[] = { "ro", "nosuid", "mode=755", "rprivate", "size=1m", "rw", "noexec", "rbind",
		      "defaults", "rro", "rnoatime", "tmpcopyup", "nosymfollow" };
	struct mount_opts mo;
	struct cv_error err;
	CHECK(mount_opts_parse(o, 13, "spec.mounts[0]", &mo, &err) == 0);
	/* "rw" cleared "ro"; "defaults" is no flag */
	CHECK(mo.flags == (MS_NOSUID | MS_NOEXEC | MS_BIND | MS_NOSYMFOLLOW));
	CHECK(mo.n_propagation == 1 && mo.propagation[0] == (MS_PRIVATE | MS_REC));
	CHECK(mo.recursive_bind);
	CHECK(mo.tmpcopyup);
	CHECK(mo.rec_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME));
	CHECK(mo.rec_clr == MOUNT_ATTR__ATIME);
	CHECK_STR(mo.data, "mode=755,size=1m");
	char *idm[] = { "rbind", "idmap" };
	CHECK(mount_opts_parse(idm, 2, "spec.mounts[3] (/x)", &mo, &err) < 0);
	CHECK(strstr(err.msg, "spec.mounts[3] (/x).options: \"idmap\"") != NULL);
	char big[1100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *bigv[] = { big };
	CHECK(mount_opts_parse(bigv, 1, "m", &mo, &err) < 0);
	CHECK(mount_opts_propagation("rslave") == (MS_SLAVE | MS_REC));
	CHECK(mount_opts_propagation("ro") == 0);
	CHECK(child_check_destination("/a/b/c", &err) == 0);
	CHECK(child_check_destination("/a/../../etc", &err) < 0);
	CHECK(strstr(err.msg, "..") != NULL);
	CHECK(child_check_destination("/a/..b", &err) == 0);
}

TEST(test_resolve_exe)
{
	char out[256];
	struct cv_error err;
	char *env[] = { "A=1", "PATH=/nonexistent:/bin", NULL };
	CHECK(child_resolve_exe("sh", env, "/", out, sizeof(out), &err) == 0);
	CHECK_STR(out, "/bin/sh");
	CHECK(child_resolve_exe("nope-xyz", env, "/", out, sizeof(out), &err) < 0);
	CHECK_STR(err.msg, "error finding executable \"nope-xyz\" in PATH [/nonexistent /bin]: "
			   "no such file or directory");
	CHECK(err.code == ENOENT);
	CHECK(child_resolve_exe("/bin/sh", NULL, "/", out, sizeof(out), &err) == 0);
	CHECK_STR(out, "/bin/sh");
	CHECK(child_resolve_exe("bin/sh", NULL, "/", out, sizeof(out), &err) == 0);
	CHECK_STR(out, "//bin/sh");
	char p[512];
	snprintf(p, sizeof(p), "%s/bin/noexec", rootfs);
	CHECK(child_resolve_exe(p, NULL, "/", out, sizeof(out), &err) < 0);
	CHECK(err.code == EACCES);
}

TEST(test_report_protocol)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	struct cv_error err;
	cv_error_reset(&err);
	CHECK(spawn_read_report(sv[0], NULL, &err) == SPAWN_REPORT_AGAIN);
	CHECK(spawn_send_report(sv[1], SPAWN_READY, NULL) == 0);
	CHECK(spawn_read_report(sv[0], NULL, &err) == SPAWN_REPORT_READY);
	struct cv_error e2;
	cv_errf(&e2, EPERM, "mounting proc on /proc");
	CHECK(spawn_send_report(sv[1], SPAWN_ERROR, &e2) == 0);
	CHECK(spawn_read_report(sv[0], NULL, &err) == SPAWN_REPORT_ERROR);
	CHECK_STR(err.msg, "mounting proc on /proc: Operation not permitted");
	CHECK(err.code == EPERM);
	CHECK(spawn_release(sv[0], &err) == 0);
	char b = 0;
	CHECK(read(sv[1], &b, 1) == 1 && b == 1);
	close(sv[1]);
	CHECK(spawn_read_report(sv[0], NULL, &err) == SPAWN_REPORT_EXECED);
	CHECK(spawn_release(sv[0], &err) < 0);
	CHECK(strstr(err.msg, "already exited") != NULL);
	close(sv[0]);
}

/* ---- container init ---- */

TEST(test_init_exit_status)
{
	struct oci_spec s;
	make_spec(&s, args_exit3, 3);
	struct cv_error err;
	cv_error_reset(&err);
	int code = run_init(&s, &err);
	if (code != 3)
		fprintf(stderr, "  init: code %d, %s\n", code, err.msg);
	CHECK(code == 3);
}

TEST(test_init_missing_binary)
{
	char *args[] = { "/nope", NULL };
	struct oci_spec s;
	make_spec(&s, args, 1);
	struct cv_error err;
	cv_error_reset(&err);
	CHECK(run_init(&s, &err) == -1);
	CHECK_STR(err.msg, "error finding executable \"/nope\": no such file or directory");
	CHECK(err.code == ENOENT);

	char *args2[] = { "nope", NULL };
	make_spec(&s, args2, 1);
	CHECK(run_init(&s, &err) == -1);
	CHECK(strstr(err.msg, "error finding executable \"nope\" in PATH [/bin]") != NULL);
}

TEST(test_init_hostname_and_mounts)
{
	char *args[] = { "sh", "-c",
			 "test \"$(hostname)\" = ctr-test || exit 10; "
			 "test -c /dev/null -a -c /dev/urandom -a -c /dev/tty || exit 11; "
			 "test -L /dev/fd -a -L /dev/stdin -a -L /dev/ptmx || exit 12; "
			 "grep -q ' /tmp tmpfs ' /proc/mounts || exit 13; "
			 "grep -q ' /dev/pts devpts ' /proc/mounts || exit 14; "
			 "test $$ = 1 || exit 15; "
			 "echo x > /dev/null || exit 16; "
			 "test \"$(cat /proc/sys/kernel/domainname)\" = dom.test || exit 17; "
			 "test \"$(cat /proc/sys/net/ipv4/ip_forward)\" = 1 || exit 18; "
			 "test -d /home/alice || exit 19; "
			 "test \"$(cat /etc/bound/file)\" = from-host || exit 20; "
			 "(echo x > /etc/bound/file) 2>/dev/null && exit 21; "
			 "grep -q ' /etc/bound/file [^ ]* ro,nosuid' /proc/mounts || exit 22; "
			 "echo w > /mnt/dir/w || exit 23; "
			 "grep -q ' /sys/fs/cgroup [^ ]* ro,' /proc/mounts || exit 24; "
			 "test -f /sys/fs/cgroup/cgroup.procs || exit 25; "
			 "exit 0",
			 NULL };
	struct oci_spec s;
	make_spec(&s, args, 3);
	s.domainname = "dom.test";
	/* sysctl map {"net.ipv4.ip_forward": "1"} */
	msgpack_object_kv kv;
	kv.key.type = MSGPACK_OBJECT_STR;
	kv.key.via.str.ptr = "net.ipv4.ip_forward";
	kv.key.via.str.size = (uint32_t)strlen(kv.key.via.str.ptr);
	kv.val.type = MSGPACK_OBJECT_STR;
	kv.val.via.str.ptr = "1";
	kv.val.via.str.size = 1;
	msgpack_object map = { .type = MSGPACK_OBJECT_MAP };
	map.via.map.size = 1;
	map.via.map.ptr = &kv;
	s.linux_.sysctl = &map;
	/* A read-only bind of a host file, a recursive bind of a host dir, and
	 * the container's cgroup. */
	char src[300], srcdir[300];
	snprintf(src, sizeof(src), "%s/hostfile", tmpdir);
	write_text(src, "from-host\n");
	snprintf(srcdir, sizeof(srcdir), "%s/hostdir", tmpdir);
	mkdir(srcdir, 0755);
	static char *opts_ro_bind[] = { "bind", "ro", "nosuid" };
	static char *opts_rbind[] = { "rbind", "rprivate" };
	static char *opts_cg[] = { "ro" };
	s.mounts[4] = (struct oci_mount){ .destination = "/etc/bound/file", .type = "bind",
					  .source = src, .options = opts_ro_bind, .n_options = 3 };
	s.mounts[5] = (struct oci_mount){ .destination = "/mnt/dir", .type = "none",
					  .source = "hostdir", .options = opts_rbind, .n_options = 2 };
	s.mounts[6] = (struct oci_mount){ .destination = "/sys/fs/cgroup", .type = "cgroup",
					  .source = "cgroup", .options = opts_cg, .n_options = 1 };
	s.n_mounts = 7;
	struct cv_error err;
	cv_error_reset(&err);
	int code = run_init(&s, &err);
	if (code != 0)
		fprintf(stderr, "  hostname/mounts: code %d, %s\n", code, err.msg);
	CHECK(code == 0);
	char w[320];
	snprintf(w, sizeof(w), "%s/w", srcdir);
	CHECK(access(w, F_OK) == 0); /* the write went through the bind */
}

TEST(test_init_readonly_masked)
{
	char *args[] = { "sh", "-c",
			 "touch /x 2>/dev/null && exit 10; "
			 "(echo y > /tmp/y) 2>/dev/null && exit 11; "
			 "grep -q ' /tmp tmpfs ro,nosuid,nodev' /proc/mounts || exit 12; "
			 "test -z \"$(cat /etc/passwd)\" || exit 13; "
			 "test -z \"$(ls /home)\" || exit 14; "
			 "echo z > /dev/null || exit 15; "
			 "exit 0",
			 NULL };
	char *masked[] = { "/etc/passwd", "/home", "/does/not/exist" };
	char *ro[] = { "/tmp", "/missing" };
	struct oci_spec s;
	make_spec(&s, args, 3);
	s.root.readonly = true;
	s.linux_.masked_paths = masked;
	s.linux_.n_masked_paths = 3;
	s.linux_.readonly_paths = ro;
	s.linux_.n_readonly_paths = 2;
	struct cv_error err;
	cv_error_reset(&err);
	int code = run_init(&s, &err);
	if (code != 0)
		fprintf(stderr, "  readonly/masked: code %d, %s\n", code, err.msg);
	CHECK(code == 0);
}

TEST(test_init_refusals)
{
	struct oci_spec s;
	struct spawned sp;
	struct cv_error err;
	/* User namespaces: the mappings are checked before any clone. */
	struct oci_id_mapping good = { 0, 100000, 65536 };
	struct oci_id_mapping zero = { 0, 100000, 0 };
	struct oci_id_mapping ov[2] = { { 0, 100000, 100 }, { 99, 300000, 10 } };
	struct oci_id_mapping hov[2] = { { 0, 100000, 100 }, { 1000, 100050, 10 } };
	struct oci_id_mapping wrap = { 0, 4294967000u, 1000 };
	struct oci_id_mapping noroot = { 1, 100000, 10 };
	static struct oci_id_mapping many[341];
	for (uint32_t i = 0; i < 341; i++)
		many[i] = (struct oci_id_mapping){ i, 100000 + i, 1 };
	const struct {
		struct oci_id_mapping *uid, *gid;
		size_t nu, ng;
		bool user_ns;
		const char *want;
	} cases[] = {
		{ NULL, NULL, 0, 0, true,
		  "spec.linux.uidMappings: required with a new user namespace (spec.linux.namespaces)" },
		{ &good, NULL, 1, 0, true,
		  "spec.linux.gidMappings: required with a new user namespace (spec.linux.namespaces)" },
		{ &zero, &good, 1, 1, true, "spec.linux.uidMappings[0].size: must not be 0" },
		{ &good, ov, 1, 2, true,
		  "spec.linux.gidMappings[0] and [1]: the containerID ranges overlap" },
		{ hov, &good, 2, 1, true, "spec.linux.uidMappings[0] and [1]: the hostID ranges overlap" },
		{ &wrap, &good, 1, 1, true,
		  "spec.linux.uidMappings[0]: hostID 4294967000 + size 1000 goes past the last id "
		  "4294967294" },
		{ many, &good, 341, 1, true, "spec.linux.uidMappings: 341 mappings, the kernel takes at "
					     "most 340" },
		{ &noroot, &good, 1, 1, true,
		  "spec.linux.uidMappings: must map the container's uid 0 (the container is set up as "
		  "root of its user namespace)" },
		{ &good, &good, 1, 1, false,
		  "spec.linux.uidMappings: given without a user namespace in spec.linux.namespaces" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		make_spec(&s, args_exit3, 3);
		if (cases[i].user_ns) {
			s.linux_.namespaces[5].type = "user";
			s.linux_.n_namespaces = 6;
		}
		s.linux_.uid_mappings = cases[i].uid;
		s.linux_.n_uid_mappings = cases[i].nu;
		s.linux_.gid_mappings = cases[i].gid;
		s.linux_.n_gid_mappings = cases[i].ng;
		cv_error_reset(&err);
		CHECK(spawn_init(&s, 1, &sp, &err) < 0);
		CHECK_STR(err.msg, cases[i].want);
	}
	/* The process's user must be mapped. */
	make_spec(&s, args_exit3, 3);
	s.linux_.namespaces[5].type = "user";
	s.linux_.n_namespaces = 6;
	s.linux_.uid_mappings = s.linux_.gid_mappings = &good;
	s.linux_.n_uid_mappings = s.linux_.n_gid_mappings = 1;
	s.process.user.uid = 70000;
	CHECK(spawn_init(&s, 1, &sp, &err) < 0);
	CHECK_STR(err.msg, "spec.process.user.uid: 70000 is not mapped by spec.linux.uidMappings");
	/* A new pid namespace cannot go with a joined user namespace. */
	s.process.user.uid = 0;
	s.linux_.namespaces[5].path = "/proc/1/ns/user";
	s.linux_.uid_mappings = s.linux_.gid_mappings = NULL;
	s.linux_.n_uid_mappings = s.linux_.n_gid_mappings = 0;
	CHECK(spawn_init(&s, 1, &sp, &err) < 0);
	CHECK_STR(err.msg, "spec.linux.namespaces: a new pid namespace cannot be made with a user "
			   "namespace joined by path; join the pid namespace by path too");

	make_spec(&s, args_exit3, 3);
	s.linux_.namespaces[2].type = "ipc"; /* no uts left */
	CHECK(spawn_init(&s, 1, &sp, &err) < 0);
	CHECK_STR(err.msg, "spec.hostname requires a new UTS namespace");

	make_spec(&s, args_exit3, 3);
	s.linux_.namespaces[0].path = "/nonexistent/ns/pid";
	CHECK(spawn_init(&s, 1, &sp, &err) < 0);
	CHECK(strstr(err.msg, "opening the pid namespace /nonexistent/ns/pid") != NULL);

	/* A mount escaping through "..". */
	char *args[] = { "true", NULL };
	make_spec(&s, args, 1);
	s.mounts[3].destination = "/tmp/../../../x";
	cv_error_reset(&err);
	CHECK(run_init(&s, &err) == -1);
	CHECK(strstr(err.msg, "contains \"..\"") != NULL);

	/* rlimit above this host's hard limit (root lacks CAP_SYS_RESOURCE here). */
	struct rlimit hard;
	getrlimit(RLIMIT_NOFILE, &hard);
	struct oci_rlimit rl = { .type = "RLIMIT_NOFILE", .soft = hard.rlim_max + 1,
				 .hard = hard.rlim_max + 1 };
	make_spec(&s, args, 1);
	s.process.rlimits = &rl;
	s.process.n_rlimits = 1;
	cv_error_reset(&err);
	int code = run_init(&s, &err);
	if (hard.rlim_max != RLIM_INFINITY && code == -1) {
		char want[256];
		snprintf(want, sizeof(want),
			 "setting RLIMIT_NOFILE to soft=%llu hard=%llu: Operation not permitted "
			 "(this host's hard limit is %llu)",
			 (unsigned long long)rl.soft, (unsigned long long)rl.hard,
			 (unsigned long long)hard.rlim_max);
		CHECK_STR(err.msg, want);
	} else {
		CHECK(code == 0); /* a host where root may raise it */
	}
}

/* An init in a new user namespace, mapped 0 -> 0 (the fixture rootfs is
 * host root's, in a 0700 directory): boot wrote the map, the init has its
 * own user namespace, and /dev's nodes (bound from the host: no mknod in a
 * user namespace) work. */
TEST(test_init_user_namespace)
{
	char host_ns[64] = "";
	ssize_t l = readlink("/proc/self/ns/user", host_ns, sizeof(host_ns) - 1);
	CHECK(l > 0);
	host_ns[l > 0 ? l : 0] = '\0';
	char script[512];
	snprintf(script, sizeof(script),
		 "read a b c < /proc/self/uid_map && test \"$a $b $c\" = \"0 0 65536\" && "
		 "read a b c < /proc/self/gid_map && test \"$a $b $c\" = \"0 0 65536\" && "
		 "test \"$(readlink /proc/self/ns/user)\" != \"%s\" && "
		 "test \"$(id -u)\" = 0 && echo x > /dev/null && exit 3", host_ns);
	char *args[] = { "sh", "-c", script, NULL };
	struct oci_spec s;
	make_spec(&s, args, 3);
	struct oci_id_mapping m = { 0, 0, 65536 };
	s.linux_.namespaces[5].type = "user";
	s.linux_.n_namespaces = 6;
	s.linux_.uid_mappings = s.linux_.gid_mappings = &m;
	s.linux_.n_uid_mappings = s.linux_.n_gid_mappings = 1;
	struct cv_error err;
	cv_error_reset(&err);
	int code = run_init(&s, &err);
	if (code != 3)
		fprintf(stderr, "  user namespace: code %d, %s\n", code, err.msg);
	CHECK(code == 3);
}

/* The init's credentials: user 1000 with no capabilities (the spec has
 * none: the sets are exactly the spec's, so empty), no_new_privs. */
TEST(test_init_user_caps)
{
	char *args[] = { "sh", "-c",
			 "test \"$(id -u):$(id -g)\" = 1000:1000 || exit 10; "
			 "id -G | grep -qw 27 || exit 11; "
			 "grep -q 'CapEff:\t0000000000000000' /proc/self/status || exit 12; "
			 "grep -q 'CapBnd:\t0000000000000000' /proc/self/status || exit 13; "
			 "grep -q 'NoNewPrivs:\t1' /proc/self/status || exit 14; "
			 "test \"$(pwd)\" = /home/alice || exit 15; "
			 "test \"$(umask)\" = 0027 || exit 16; "
			 "exit 0",
			 NULL };
	uint32_t gids[] = { 27 };
	struct oci_spec s;
	make_spec(&s, args, 3);
	s.process.user.uid = 1000;
	s.process.user.gid = 1000;
	s.process.user.additional_gids = gids;
	s.process.user.n_additional_gids = 1;
	s.process.user.umask = 027;
	s.process.user.has_umask = true;
	s.process.no_new_privileges = true;
	s.process.cwd = "/home/alice";
	struct cv_error err;
	cv_error_reset(&err);
	int code = run_init(&s, &err);
	if (code != 0)
		fprintf(stderr, "  user/caps: code %d, %s\n", code, err.msg);
	CHECK(code == 0);

	/* An unreachable cwd is named in the error. */
	char *args2[] = { "true", NULL };
	make_spec(&s, args2, 1);
	s.process.cwd = "/no/such/dir";
	CHECK(run_init(&s, &err) == -1);
	CHECK(strstr(err.msg, "changing directory to \"/no/such/dir\"") != NULL);
}

/* The spec's seccomp profile: mkdir fails with EPERM, the rest works. */
TEST(test_init_seccomp)
{
	char *args[] = { "sh", "-c",
			 "mkdir /tmp/d 2>/dev/null && exit 10; "
			 "test -d /tmp/d && exit 11; "
			 "echo ok > /tmp/f || exit 12; "
			 "grep -q \"NoNewPrivs:.$NNP\" /proc/self/status || exit 13; exit 0",
			 NULL };
	char *envs[2][3] = { { "PATH=/bin", "NNP=0", NULL }, { "PATH=/bin", "NNP=1", NULL } };
	char *names[] = { "mkdir", "mkdirat" };
	struct oci_seccomp_syscall sc = { .names = names, .n_names = 2, .action = "SCMP_ACT_ERRNO",
					  .errno_ret = EPERM, .has_errno_ret = true };
	for (int nnp = 0; nnp <= 1; nnp++) {
		struct oci_spec s;
		make_spec(&s, args, 3);
		s.process.no_new_privileges = nnp;
		s.process.env = envs[nnp]; /* NoNewPrivs only when the spec asks */
		s.linux_.has_seccomp = true;
		s.linux_.seccomp.default_action = "SCMP_ACT_ALLOW";
		s.linux_.seccomp.syscalls = &sc;
		s.linux_.seccomp.n_syscalls = 1;
		struct cv_error err;
		cv_error_reset(&err);
		int code = run_init(&s, &err);
		if (code != 0)
			fprintf(stderr, "  seccomp (nnp=%d): code %d, %s\n", nnp, code, err.msg);
		CHECK(code == 0);
	}
}

/* ---- exec into a running init ---- */

struct running {
	struct oci_spec spec;
	struct spawned sp;
	bool ok;
};

static void start_sleeper(struct running *r)
{
	static char *args[] = { "sleep", "30", NULL };
	make_spec(&r->spec, args, 2);
	struct cv_error err;
	r->ok = false;
	if (spawn_init(&r->spec, 1, &r->sp, &err) < 0) {
		fprintf(stderr, "  sleeper: %s\n", err.msg);
		return;
	}
	if (wait_report(r->sp.ctl_fd, &err) != SPAWN_REPORT_READY ||
	    spawn_release(r->sp.ctl_fd, &err) < 0 ||
	    wait_report(r->sp.ctl_fd, &err) != SPAWN_REPORT_EXECED) {
		fprintf(stderr, "  sleeper: %s\n", err.msg);
		kill(r->sp.pid, SIGKILL);
		reap(r->sp.pidfd);
		close(r->sp.pidfd);
		close(r->sp.ctl_fd);
		return;
	}
	r->ok = true;
}

static void stop_sleeper(struct running *r)
{
	if (!r->ok)
		return;
	syscall(SYS_pidfd_send_signal, r->sp.pidfd, SIGKILL, NULL, 0);
	reap(r->sp.pidfd);
	close(r->sp.pidfd);
	close(r->sp.ctl_fd);
}

/* Runs argv in the container with a pipe on guest fd 1; returns the exit
 * code and the output, or -1 with err. */
static int run_exec(struct running *r, char *const *argv, char *const *envv, const char *cwd,
		    uint32_t uid, char *out, size_t out_len, struct cv_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	int guest[] = { 1 };
	struct spawn_exec_args a = {
		.init_pidfd = r->sp.pidfd,
		.ns_flags = spawn_ns_flags(&r->spec),
		.cg = &cg,
		.spec = &r->spec,
		.argv = argv,
		.envv = envv,
		.cwd = cwd,
		.uid = uid,
		.gid = uid,
		.fds = &p[1],
		.guest_fds = guest,
		.nfds = 1,
		.exec_fd = -1,
	};
	struct spawned sp;
	int rc = spawn_exec(&a, &sp, err);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		return -100;
	}
	enum spawn_report_result rep = wait_report(sp.ctl_fd, err);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < out_len && (n = read(p[0], out + got, out_len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	int code = reap(sp.pidfd);
	close(sp.pidfd);
	close(sp.ctl_fd);
	return rep == SPAWN_REPORT_EXECED ? code : -1;
}

TEST(test_exec)
{
	struct running r;
	start_sleeper(&r);
	CHECK(r.ok);
	if (!r.ok)
		return;
	char out[512];
	struct cv_error err;
	cv_error_reset(&err);

	char *argv1[] = { "sh", "-c", "echo $$ $HOME; pwd; hostname", NULL };
	int code = run_exec(&r, argv1, env_default, "/tmp", 0, out, sizeof(out), &err);
	if (code != 0)
		fprintf(stderr, "  exec: code %d, %s\n", code, err.msg);
	CHECK(code == 0);
	int nspid = 0;
	char home[64] = "", cwd[64] = "", host[64] = "";
	CHECK(sscanf(out, "%d %63s %63s %63s", &nspid, home, cwd, host) == 4);
	CHECK(nspid >= 2 && nspid < 100); /* a pid of the container's namespace */
	CHECK_STR(home, "/root");
	CHECK_STR(cwd, "/tmp");
	CHECK_STR(host, "ctr-test");

	char *argv2[] = { "sh", "-c", "id -u; echo $HOME", NULL };
	code = run_exec(&r, argv2, env_default, NULL, 1000, out, sizeof(out), &err);
	CHECK(code == 0);
	CHECK_STR(out, "1000\n/home/alice\n");

	char *env_home[] = { "PATH=/bin", "HOME=/custom", NULL };
	char *argv3[] = { "sh", "-c", "echo $HOME", NULL };
	code = run_exec(&r, argv3, env_home, "/", 0, out, sizeof(out), &err);
	CHECK(code == 0);
	CHECK_STR(out, "/custom\n");

	char *argv4[] = { "nope", NULL };
	code = run_exec(&r, argv4, env_default, "/", 0, out, sizeof(out), &err);
	CHECK(code == -1);
	CHECK(strstr(err.msg, "error finding executable \"nope\" in PATH") != NULL);

	char *argv5[] = { "true", NULL };
	code = run_exec(&r, argv5, env_default, "/missing-dir", 0, out, sizeof(out), &err);
	CHECK(code == -1);
	CHECK(strstr(err.msg, "changing directory to \"/missing-dir\"") != NULL);

	/* Exit status travels, and stdin (fd 0) is /dev/null. */
	char *argv6[] = { "sh", "-c", "cat; exit 7", NULL };
	code = run_exec(&r, argv6, env_default, "/", 0, out, sizeof(out), &err);
	CHECK(code == 7);
	CHECK_STR(out, "");

	/* Without ExecArgs.Capabilities no capabilities at all, uid 0 too
	 * (runc with a process lacking them); the bounding set is empty. */
	char *argv7[] = { "sh", "-c", "grep -E 'Cap(Eff|Prm|Bnd)' /proc/self/status", NULL };
	code = run_exec(&r, argv7, env_default, "/", 0, out, sizeof(out), &err);
	CHECK(code == 0);
	CHECK_STR(out, "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
		       "CapBnd:\t0000000000000000\n");
	code = run_exec(&r, argv7, env_default, "/", 1000, out, sizeof(out), &err);
	CHECK(code == 0);
	CHECK_STR(out, "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
		       "CapBnd:\t0000000000000000\n");

	/* The exec joined the container's v2 node and its v1 nodes. */
	char *argv8[] = { "cat", "/proc/self/cgroup", NULL };
	code = run_exec(&r, argv8, env_default, "/", 0, out, sizeof(out), &err);
	CHECK(code == 0);
	if (have_cg) {
		char want[300];
		snprintf(want, sizeof(want), "0::/%s\n", cg.path);
		CHECK(strstr(out, want) != NULL);
		snprintf(want, sizeof(want), ":memory:/%s\n", cg.path);
		CHECK(cg.n_v1 == 0 || strstr(out, want) != NULL);
		/* And so did the init. */
		char p[64], buf[2048] = "";
		snprintf(p, sizeof(p), "/proc/%d/cgroup", r.sp.pid);
		FILE *f = fopen(p, "r");
		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			buf[n] = '\0';
			fclose(f);
		}
		CHECK(cg.n_v1 == 0 || strstr(buf, want) != NULL);
	}

	/* Nothing leaks in the caller over many cycles. */
	int before = unit_count_fds();
	int bad = 0;
	for (int i = 0; i < 50; i++)
		if (run_exec(&r, argv5, env_default, "/", 0, out, sizeof(out), &err) != 0)
			bad++;
	CHECK(bad == 0);
	CHECK(unit_count_fds() == before);
	stop_sleeper(&r);
}

/* The exec's fd table: guest fds at their numbers, nothing else. */
TEST(test_exec_fd_table)
{
	struct running r;
	start_sleeper(&r);
	CHECK(r.ok);
	if (!r.ok)
		return;
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	int extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* fd 1 is the pipe; the pipe also lands on guest 5. ls shows the table. */
	int fds[] = { p[1], p[1], extra };
	int guest[] = { 1, 5, 0 };
	char *argv[] = { "ls", "/proc/self/fd", NULL };
	struct spawn_exec_args a = {
		.init_pidfd = r.sp.pidfd,
		.ns_flags = spawn_ns_flags(&r.spec),
		.cg = &cg,
		.spec = &r.spec,
		.argv = argv,
		.envv = env_default,
		.fds = fds,
		.guest_fds = guest,
		.nfds = 3,
		.exec_fd = -1,
	};
	struct spawned sp;
	struct cv_error err;
	CHECK(spawn_exec(&a, &sp, &err) == 0);
	close(p[1]);
	close(extra);
	char out[256] = "";
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	CHECK(wait_report(sp.ctl_fd, &err) == SPAWN_REPORT_EXECED);
	CHECK(reap(sp.pidfd) == 0);
	/* 0,1,2 and 5, plus ls's own directory fd (3). */
	CHECK_STR(out, "0\n1\n2\n3\n5\n");
	close(sp.pidfd);
	close(sp.ctl_fd);
	stop_sleeper(&r);
}

/* StdioIsPty: the tty on guest 0 becomes 0, 1, 2 and the controlling tty. */
TEST(test_exec_pty)
{
	struct running r;
	start_sleeper(&r);
	CHECK(r.ok);
	if (!r.ok)
		return;
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(master >= 0);
	CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
	int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(slave >= 0);
	int fds[] = { slave };
	int guest[] = { 0 };
	char *argv[] = { "sh", "-c", "test -t 1 -a -t 2 && : < /dev/tty && echo ctty-ok", NULL };
	struct spawn_exec_args a = {
		.init_pidfd = r.sp.pidfd,
		.ns_flags = spawn_ns_flags(&r.spec),
		.cg = &cg,
		.spec = &r.spec,
		.argv = argv,
		.envv = env_default,
		.fds = fds,
		.guest_fds = guest,
		.nfds = 1,
		.exec_fd = -1,
		.stdio_is_pty = true,
	};
	struct spawned sp;
	struct cv_error err;
	CHECK(spawn_exec(&a, &sp, &err) == 0);
	close(slave);
	CHECK(wait_report(sp.ctl_fd, &err) == SPAWN_REPORT_EXECED);
	CHECK(reap(sp.pidfd) == 0);
	char out[256] = "";
	size_t got = 0;
	struct pollfd p = { .fd = master, .events = POLLIN };
	while (got + 1 < sizeof(out) && poll(&p, 1, 200) > 0) {
		ssize_t n = read(master, out + got, sizeof(out) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	CHECK(strstr(out, "ctty-ok") != NULL);
	close(master);
	close(sp.pidfd);
	close(sp.ctl_fd);
	stop_sleeper(&r);
}

static void setup(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_spawn needs root\n");
		exit(77);
	}
	make_rootfs();
	char path[128];
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(path, sizeof(path), "cvisor-test/spawn-%d-%d", getpid(), rand() % 100000);
	struct cv_error err;
	if (cgroup_create(&cg, path, NULL, &err) == 0) {
		have_cg = true;
	} else {
		fprintf(stderr, "  (no cgroup: %s)\n", err.msg);
		cg.v2_dirfd = -1;
		cg.n_v1 = 0;
	}
}

static void teardown(void)
{
	struct cv_error err;
	if (have_cg && cgroup_destroy(&cg, &err) < 0)
		fprintf(stderr, "  cgroup cleanup: %s\n", err.msg);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", tmpdir);
}

TEST(test_setup)
{
	setup();
	CHECK(access(rootfs, F_OK) == 0);
}

TEST(test_teardown)
{
	teardown();
	CHECK(access(tmpdir, F_OK) < 0);
}

UNIT_MAIN(test_setup, test_ns_flags, test_sysctl_check, test_mount_options, test_resolve_exe, test_report_protocol,
	  test_init_exit_status, test_init_missing_binary, test_init_hostname_and_mounts,
	  test_init_readonly_masked, test_init_refusals, test_init_user_namespace, test_init_user_caps, test_init_seccomp, test_exec, test_exec_fd_table, test_exec_pty,
	  test_teardown)

"""linux.devices and linux.resources.devices, as runc makes them.

Nodes are made in the container's /dev only (never through a symlink the
rootfs planted), with the spec's type, numbers, mode and owner; a /dev of
the container's own gets runc's default set. Device access goes through the
v1 devices cgroup where the host mounts it, else a BPF device program on the
container's v2 node: deny all, the spec's rules, then runc's default allow
list. Before, a container with CAP_MKNOD (the default set) could make and
open the host's /dev/hwrng or /dev/fuse.
"""
import ctypes
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

import helpers

FUSE = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
ALLOW_FUSE = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}
STAT = 'stat -c "%n|%F|%t|%T|%a|%u|%g"'


def fixture_linux():
    return helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["linux"]


def linux_with(devices=None, rules=None):
    linux = json.loads(json.dumps(fixture_linux()))
    if devices is not None:
        linux["devices"] = devices
    if rules is not None:
        linux.setdefault("resources", {})["devices"] = rules
    return linux


def run(env, script, check_rc=0, **overrides):
    bundle = env.make_bundle(args=["sh", "-c", script], **overrides)
    p = env.cli.run("run", "--bundle", bundle, helpers.new_id())
    if check_rc is not None:
        assert p.returncode == check_rc, f"rc {p.returncode}: {p.stdout!r} {p.stderr!r}"
    return p


def create_fails(env, **overrides):
    bundle = env.make_bundle(args=["true"], **overrides)
    sid = helpers.new_id()
    rc, out = env.cli.detached("create", "--bundle", bundle, sid, check=False)
    assert rc != 0, out
    assert not os.path.exists(os.path.join(env.root, sid)), "a refused create left state"
    assert not [c for c in helpers.cgroup_paths(sid) if os.path.exists(c)], \
        "a refused create left cgroups"
    return out


def stats(out):
    """{path: (kind, major, minor, mode, uid, gid)} from STAT lines."""
    res = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 7:
            n, kind, ma, mi, mode, uid, gid = parts
            res[n] = (kind, int(ma, 16), int(mi, 16), mode, int(uid), int(gid))
    return res


def own_rootfs(tmp_path):
    """A private copy of the fixture rootfs (the tests plant symlinks in it)."""
    src = os.path.join(os.environ["CVISOR_BUNDLE"], "rootfs")
    dst = str(tmp_path / "rootfs")
    shutil.copytree(src, dst, symlinks=True)
    return dst


def mounts_without_dev():
    ms = helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["mounts"]
    return [m for m in ms if not m["destination"].startswith("/dev")]


# --------------------------------------------------------------------------
# linux.devices


def test_node_type_mode_owner(env):
    devices = [
        dict(FUSE, fileMode=0o640, uid=12, gid=34),
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200},
        {"path": "/dev/cvloop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600},
        {"path": "/dev/cvu", "type": "u", "major": 1, "minor": 3, "fileMode": 0o666},
        {"path": "/dev/cvfifo", "type": "p", "fileMode": 0o620, "uid": 5, "gid": 6},
    ]
    p = run(env, f"{STAT} " + " ".join(d["path"] for d in devices), linux=linux_with(devices))
    got = stats(p.stdout)
    assert got["/dev/fuse"] == ("character special file", 10, 229, "640", 12, 34), p.stdout
    assert got["/dev/net/tun"] == ("character special file", 10, 200, "666", 0, 0), p.stdout
    assert got["/dev/cvloop"] == ("block special file", 7, 0, "600", 0, 0), p.stdout
    assert got["/dev/cvu"] == ("character special file", 1, 3, "666", 0, 0), p.stdout
    assert got["/dev/cvfifo"][0] == "fifo" and got["/dev/cvfifo"][3:] == ("620", 5, 6), p.stdout


def test_default_nodes_links_and_mounts(env):
    # The spec mounts only the /dev tmpfs: pts, shm and mqueue come from the
    # default set too.
    mounts = [m for m in helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["mounts"]
              if m["destination"] not in ("/dev/pts", "/dev/shm", "/dev/mqueue")]
    names = ["null", "zero", "full", "random", "urandom", "tty"]
    script = (f"{STAT} " + " ".join(f"/dev/{n}" for n in names) +
              "; for l in fd stdin stdout stderr ptmx; do echo link $l $(readlink /dev/$l); done"
              "; awk '$5 ~ /^\\/dev\\// {print \"mnt\", $5, $(NF-2), $NF}' /proc/self/mountinfo")
    p = run(env, script, mounts=mounts)
    got = stats(p.stdout)
    want = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
            "urandom": (1, 9), "tty": (5, 0)}
    for n, (ma, mi) in want.items():
        assert got.get(f"/dev/{n}") == ("character special file", ma, mi, "666", 0, 0), p.stdout
    links = dict(line.split()[1:3] for line in p.stdout.splitlines()
                 if line.startswith("link ") and len(line.split()) == 3)
    assert links == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
                     "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
                     "ptmx": "pts/ptmx"}, p.stdout
    mnts = {line.split()[1]: line.split()[2:] for line in p.stdout.splitlines()
            if line.startswith("mnt ")}
    assert mnts.get("/dev/pts", [None])[0] == "devpts", p.stdout
    assert "ptmxmode=666" in mnts["/dev/pts"][1], p.stdout
    assert mnts.get("/dev/shm", [None])[0] == "tmpfs", p.stdout
    assert mnts.get("/dev/mqueue", [None])[0] == "mqueue", p.stdout


def test_pty_from_default_ptmx(env):
    # ptmx -> pts/ptmx of the container's own devpts, which c 5:2 and c 136:*
    # of the default allow list let it open.
    mounts = [m for m in helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["mounts"]
              if m["destination"] != "/dev/pts"]
    p = run(env, "exec 3<>/dev/ptmx && echo opened", mounts=mounts)
    assert p.stdout.strip() == "opened", p.stderr


def test_dev_symlink_to_host_path_stays_in_rootfs(env, tmp_path):
    # The rootfs's /dev is an absolute symlink to a host-looking path: the
    # /dev tmpfs and every node go where it resolves inside the rootfs.
    rootfs = own_rootfs(tmp_path)
    # (Not under /tmp: the spec mounts a tmpfs there after /dev.)
    target = f"cvdevs-{os.getpid()}-{helpers.new_id()}"
    os.makedirs(os.path.join(rootfs, "var", target))
    shutil.rmtree(os.path.join(rootfs, "dev"), ignore_errors=True)
    os.symlink(f"/var/{target}", os.path.join(rootfs, "dev"))
    node = f"cvnode-{helpers.new_id()}"
    devices = [{"path": f"/dev/{node}", "type": "c", "major": 1, "minor": 3}]
    p = run(env, f"{STAT} /dev/{node} /dev/null", root={"path": rootfs},
            linux=linux_with(devices))
    got = stats(p.stdout)
    assert got[f"/dev/{node}"][:3] == ("character special file", 1, 3), p.stdout
    assert got["/dev/null"][:3] == ("character special file", 1, 3), p.stdout
    # Nothing on the host's /var/<target>, which a path join would have used.
    assert not os.path.exists(f"/var/{target}"), os.listdir(f"/var/{target}")


def test_existing_symlink_replaced_not_followed(env, tmp_path):
    # No /dev mount: the rootfs's own /dev, where /dev/null is a symlink to
    # /etc/shadow. The node replaces the link; neither the host's nor the
    # rootfs's shadow is touched (a chmod through it would make it 0666).
    rootfs = own_rootfs(tmp_path)
    dev = os.path.join(rootfs, "dev")
    os.makedirs(dev, exist_ok=True)
    for n in os.listdir(dev):
        os.unlink(os.path.join(dev, n)) if not os.path.isdir(os.path.join(dev, n)) else None
    with open(os.path.join(rootfs, "etc", "shadow"), "w") as f:
        f.write("root:*:1::::::\n")
    os.chmod(os.path.join(rootfs, "etc", "shadow"), 0o600)
    os.symlink("/etc/shadow", os.path.join(dev, "null"))
    host_before = os.stat("/etc/shadow")
    devices = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
    p = run(env, f"{STAT} /dev/null /etc/shadow", root={"path": rootfs},
            mounts=mounts_without_dev(), linux=linux_with(devices))
    got = stats(p.stdout)
    assert got["/dev/null"] == ("character special file", 1, 3, "666", 0, 0), p.stdout
    assert got["/etc/shadow"][3] == "600", p.stdout
    after = os.stat("/etc/shadow")
    assert (after.st_mode, after.st_uid, after.st_gid, after.st_size) == \
        (host_before.st_mode, host_before.st_uid, host_before.st_gid, host_before.st_size)
    st = os.lstat(os.path.join(dev, "null"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1, "the link is still there"
    assert stat.S_IMODE(os.stat(os.path.join(rootfs, "etc", "shadow")).st_mode) == 0o600


def test_symlinked_parent_directory_refused(env, tmp_path):
    # /dev/net is a symlink to /etc: /dev/net/tun is refused, never made in
    # the host's or the rootfs's /etc.
    rootfs = own_rootfs(tmp_path)
    os.makedirs(os.path.join(rootfs, "dev"), exist_ok=True)
    os.symlink("/etc", os.path.join(rootfs, "dev", "net"))
    name = f"cvtun-{helpers.new_id()}"
    devices = [{"path": f"/dev/net/{name}", "type": "c", "major": 10, "minor": 200}]
    out = create_fails(env, root={"path": rootfs}, mounts=mounts_without_dev(),
                       linux=linux_with(devices))
    assert f"spec.linux.devices[0] (/dev/net/{name})" in out, out
    assert "/dev/net is not a directory" in out, out
    assert not os.path.exists(f"/etc/{name}")
    assert not os.path.exists(os.path.join(rootfs, "etc", name))


@pytest.mark.parametrize("path,msg", [
    ("/dev/../etc/cvx", 'spec.linux.devices[0].path: "/dev/../etc/cvx" has a "." or ".."'),
    ("/etc/cvx", 'spec.linux.devices[0].path: "/etc/cvx" is not under /dev'),
    ("/dev/", 'spec.linux.devices[0].path: "/dev/" names no node'),
    ("/dev/fuse/", 'spec.linux.devices[0].path: "/dev/fuse/" names no node'),
])
def test_escaping_path_refused(env, path, msg):
    out = create_fails(env, linux=linux_with([{"path": path, "type": "c", "major": 1,
                                                "minor": 3}]))
    assert msg in out, out


@pytest.mark.parametrize("dev,msg", [
    ({"path": "/dev/x", "type": "q", "major": 1, "minor": 3},
     'spec.linux.devices[0].type: "q" is not one of c, b, u, p'),
    ({"path": "/dev/x", "type": "c"}, "spec.linux.devices[0]: major and minor are required"),
    ({"path": "/dev/x", "type": "c", "major": 1, "minor": -1},
     "spec.linux.devices[0].minor: -1 is out of range"),
    ({"path": "/dev/x", "type": "c", "major": 4096, "minor": 1},
     "spec.linux.devices[0].major: 4096 is out of range (0..4095)"),
    ({"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 0o60666},
     "spec.linux.devices[0].fileMode"),
])
def test_bad_device_refused(env, dev, msg):
    assert msg in create_fails(env, linux=linux_with([dev]))


def test_bad_rule_refused(env):
    out = create_fails(env, linux=linux_with(rules=[{"allow": True, "access": "rwx"}]))
    assert 'spec.linux.resources.devices[0].access: "rwx" is not a subset of "rwm"' in out, out


def test_bound_dev_is_not_written(env, tmp_path):
    # /dev bound from a host directory: a listed node that is not there is
    # an error, and nothing is made in the host's directory.
    hostdev = tmp_path / "hostdev"
    hostdev.mkdir()
    mounts = mounts_without_dev() + [{"destination": "/dev", "type": "bind",
                                      "source": str(hostdev), "options": ["rbind"]}]
    out = create_fails(env, mounts=mounts, linux=linux_with([FUSE]))
    assert "spec.linux.devices[0] (/dev/fuse): /dev is a bind mount" in out, out
    assert os.listdir(hostdev) == []


@pytest.fixture
def userns_rootfs():
    # The mapped root must reach the rootfs: not under pytest's 0700 tmp.
    top = tempfile.mkdtemp(prefix="cvisor-devices-")
    os.chmod(top, 0o755)
    rootfs = os.path.join(top, "rootfs")
    subprocess.run(["cp", "-a", os.path.join(os.environ["CVISOR_BUNDLE"], "rootfs"), rootfs],
                   check=True)
    subprocess.run(["chown", "-R", "-h", "100000:100000", rootfs], check=True)
    yield rootfs
    shutil.rmtree(top, ignore_errors=True)


def test_userns_binds_host_node(env, userns_rootfs):
    # No mknod in a user namespace: the host's node is bind-mounted (its
    # numbers; its mode and owner stay the host's, unmapped root's 0600
    # here, so the mapped root cannot open it, as with runc).
    if not os.path.exists("/dev/fuse"):
        pytest.skip("the host has no /dev/fuse to bind")
    linux = linux_with([FUSE], [ALLOW_FUSE])
    linux["namespaces"] = linux["namespaces"] + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    p = run(env, f"{STAT} /dev/fuse /dev/null", root={"path": userns_rootfs}, linux=linux)
    got = stats(p.stdout)
    assert got["/dev/fuse"][:3] == ("character special file", 10, 229), p.stdout
    assert got["/dev/null"][:3] == ("character special file", 1, 3), p.stdout
    assert got["/dev/fuse"][3:] == ("600", 65534, 65534), p.stdout


def test_userns_missing_host_node_refused(env, userns_rootfs):
    # Nothing to bind for numbers the host has no node of: refused, naming
    # the device.
    linux = linux_with([{"path": "/dev/cvnope", "type": "c", "major": 240, "minor": 77}])
    linux["namespaces"] = linux["namespaces"] + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    out = create_fails(env, root={"path": userns_rootfs}, linux=linux)
    assert ("spec.linux.devices[0] (/dev/cvnope): mknod is not permitted here and the host has "
            "no char node 240:77 to bind-mount") in out, out


# --------------------------------------------------------------------------
# linux.resources.devices


def test_mknod_of_unlisted_device_denied(env):
    # CAP_MKNOD still makes the node ("m" is allowed for every c and b, as in
    # runc); opening it is what the cgroup refuses. 10:183 is hwrng, 10:229
    # fuse: both opened fine before.
    p = run(env, "mknod /dev/x c 10 183 && mknod /dev/y c 10 229 && "
                 "{ head -c1 /dev/x >/dev/null; echo rc=$?; exec 3<>/dev/y; }", check_rc=None)
    assert p.returncode != 0, p.stdout
    assert "rc=1" in p.stdout, (p.stdout, p.stderr)
    assert p.stderr.count("Operation not permitted") == 2, p.stderr


def test_allowed_device_opens(env):
    p = run(env, "exec 3<>/dev/fuse && echo opened",
            linux=linux_with([FUSE], [{"allow": False, "access": "rwm"}, ALLOW_FUSE]))
    assert p.stdout.strip() == "opened", p.stderr


def test_spec_deny_then_allow_order(env):
    # Later rules win: allow fuse, then deny it again.
    p = run(env, "exec 3<>/dev/fuse && echo opened", check_rc=None,
            linux=linux_with([FUSE], [ALLOW_FUSE, dict(ALLOW_FUSE, allow=False)]))
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, (p.stdout, p.stderr)


def test_allow_all_rule(env):
    # What podman --privileged passes: "a" allowed.
    p = run(env, "mknod /dev/y c 10 229 && exec 3<>/dev/y && echo opened",
            linux=linux_with(rules=[{"allow": True, "access": "rwm"}]))
    assert p.stdout.strip() == "opened", p.stderr


def test_update_allows_device(env):
    bundle = env.make_bundle(args=["sleep", "1000"], linux=linux_with([FUSE]))
    sb = env.new_sandbox(bundle, start=True)
    status, out = sb.run_exec(["sh", "-c", "exec 3<>/dev/fuse && echo opened"])
    assert status != 0 and b"Operation not permitted" in out, out
    res = env.root + f"/.res-{sb.id}.json"
    with open(res, "w") as f:
        json.dump({"devices": [ALLOW_FUSE]}, f)
    env.cli.run("update", "--resources", res, sb.id, check=True)
    status, out = sb.run_exec(["sh", "-c", "exec 3<>/dev/fuse && echo opened"])
    assert status == 0 and out.strip() == b"opened", out


def test_v1_devices_list(env):
    if not helpers.cgroup_v1_mount("devices"):
        pytest.skip("the host has no v1 devices hierarchy (the BPF program is used instead: "
                    "test_v2_device_program)")
    bundle = env.make_bundle(args=["sleep", "1000"],
                             linux=linux_with(rules=[{"allow": False, "access": "rwm"},
                                                     ALLOW_FUSE]))
    sb = env.new_sandbox(bundle, start=False)
    pid = sb.init_host_pid()
    assert helpers.cgroups_of(pid)["devices"] == helpers.default_cgroup(sb.id)
    with open(os.path.join(helpers.cgroup_dir(pid, "devices"), "devices.list")) as f:
        lines = set(f.read().split("\n")) - {""}
    assert lines == {"c 10:229 rw", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                     "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"}, lines


def test_v1_hole_in_wildcard_refused(env):
    # v1 would silently ignore the deny (the c *:* exception stays): refused.
    if not helpers.cgroup_v1_mount("devices"):
        pytest.skip("the host has no v1 devices hierarchy (a BPF program has no such limit)")
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "access": "rwm"},
             dict(ALLOW_FUSE, allow=False, access="rwm")]
    out = create_fails(env, linux=linux_with([FUSE], rules))
    assert ('linux.resources.devices: denying "c 10:229 rwm" would cut a hole in the earlier '
            'allowed "c *:* rwm"') in out, out


def test_v2_device_program(env):
    if helpers.cgroup_v1_mount("devices"):
        pytest.skip("the host mounts the v1 devices hierarchy, which cvisor uses instead of a "
                    "BPF program (the program itself: test/unit/test_cgroup_devices.c)")
    if not helpers.cgroup_v2_mount():
        pytest.skip("no cgroup2 hierarchy on this host")
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=False)
    d = helpers.cgroup_dir(sb.init_host_pid())
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ids = (ctypes.c_uint32 * 8)()
        # union bpf_attr.query: target_fd, attach_type, query_flags, attach_flags,
        # prog_ids, prog_cnt.
        attr = (ctypes.c_uint8 * 128)()
        ctypes.memmove(attr, ctypes.byref(ctypes.c_uint32(fd)), 4)
        ctypes.memmove(ctypes.byref(attr, 4), ctypes.byref(ctypes.c_uint32(6)), 4)  # CGROUP_DEVICE
        ctypes.memmove(ctypes.byref(attr, 16),
                       ctypes.byref(ctypes.c_uint64(ctypes.addressof(ids))), 8)
        ctypes.memmove(ctypes.byref(attr, 24), ctypes.byref(ctypes.c_uint32(8)), 4)
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(321, 16, attr, 128) == 0, os.strerror(ctypes.get_errno())
        cnt = ctypes.c_uint32.from_buffer(attr, 24).value
    finally:
        os.close(fd)
    assert cnt == 1, f"{cnt} device programs attached to {d}"


def test_no_fd_leaks(env):
    # The init gets only its stdio (devices.c's fds are all closed); boot
    # holds as many fds with devices and rules as without.
    # (": " after ls keeps sh from exec'ing ls, whose own fd would show.)
    p = run(env, "ls /proc/$$/fd; :", linux=linux_with([FUSE, {"path": "/dev/a/b/c", "type": "p"}],
                                                    [ALLOW_FUSE]))
    assert p.stdout.split() == ["0", "1", "2"], p.stdout
    plain = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    with_devs = env.new_sandbox(env.make_bundle(
        args=["sleep", "1000"], linux=linux_with([FUSE], [ALLOW_FUSE] * 20)), start=True)
    assert helpers.settled_fd_count(with_devs.boot_pid) == \
        helpers.settled_fd_count(plain.boot_pid)


# --------------------------------------------------------------------------
# podman


@pytest.fixture(scope="module")
def podman(cvisor, fixture_bundle):
    import engines
    import test_podman

    pm = test_podman.Podman(engines.need_binary("podman"), cvisor)
    try:
        pm.import_rootfs(os.path.join(fixture_bundle, "rootfs"), test_podman.IMAGE)
        yield pm
    finally:
        pm.close()


def test_podman_device_fuse(podman):
    import test_podman

    if not os.path.exists("/dev/fuse"):
        pytest.skip("the host has no /dev/fuse")
    p = podman("run", "--rm", "--network", "none", "--device", "/dev/fuse", test_podman.IMAGE,
               "sh", "-c", f"{STAT} /dev/fuse; exec 3<>/dev/fuse && echo opened", check=False)
    assert p.returncode == 0, p
    assert stats(p.stdout)["/dev/fuse"][:3] == ("character special file", 10, 229), p.stdout
    assert "opened" in p.stdout, p


def test_podman_without_device_denied(podman):
    import test_podman

    p = podman("run", "--rm", "--network", "none", test_podman.IMAGE, "sh", "-c",
               "mknod /dev/y c 10 229 && exec 3<>/dev/y && echo opened", check=False)
    assert p.returncode != 0 and "opened" not in p.stdout, p
    assert "Operation not permitted" in p.stderr, p


def test_podman_privileged_has_host_devices(podman):
    import test_podman

    if not os.path.exists("/dev/fuse"):
        pytest.skip("the host has no /dev/fuse")
    p = podman("run", "--rm", "--network", "none", "--privileged", test_podman.IMAGE,
               "sh", "-c", f"{STAT} /dev/fuse; exec 3<>/dev/fuse && echo opened", check=False)
    assert p.returncode == 0, p
    assert stats(p.stdout)["/dev/fuse"][:3] == ("character special file", 10, 229), p.stdout
    assert "opened" in p.stdout, p

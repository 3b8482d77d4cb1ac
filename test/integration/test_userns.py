"""User namespaces (spec.linux.namespaces "user" with uidMappings /
gidMappings), as runc makes them: boot clones the init with CLONE_NEWUSER
and writes its maps; the container is root inside and an unprivileged
range of host ids outside; exec joins the same user namespace.

The busybox rootfs belongs to host root: the tests run on a private copy
chowned to the mapped range (100000:100000), in a directory the mapped
root can traverse, as a rootless engine prepares its image."""
import copy
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import helpers

HOST_BASE = 100000
SIZE = 65536
MAPS = [{"containerID": 0, "hostID": HOST_BASE, "size": SIZE}]


@pytest.fixture(scope="module")
def userns_rootfs(fixture_bundle):
    top = tempfile.mkdtemp(prefix="cvisor-userns-")
    os.chmod(top, 0o755)
    rootfs = os.path.join(top, "rootfs")
    subprocess.run(["cp", "-a", os.path.join(fixture_bundle, "rootfs"), rootfs], check=True)
    subprocess.run(["chown", "-R", f"{HOST_BASE}:{HOST_BASE}", rootfs], check=True)
    yield rootfs
    shutil.rmtree(top, ignore_errors=True)


def _linux(env, uid_maps=MAPS, gid_maps=MAPS, user_ns=None):
    linux = copy.deepcopy(helpers.fixture_config(env.fixture)["linux"])
    linux["namespaces"].append(user_ns or {"type": "user"})
    if uid_maps is not None:
        linux["uidMappings"] = uid_maps
    if gid_maps is not None:
        linux["gidMappings"] = gid_maps
    return linux


def _bundle(env, rootfs, args=("sleep", "1000"), linux=None, **kw):
    dest = env.make_bundle(args=list(args), linux=linux or _linux(env), **kw)
    cfg = helpers.fixture_config(dest)
    cfg["root"]["path"] = rootfs
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dest


def _status_ids(pid):
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "CapEff"):
                ids[k] = v.split()
    return ids


def _exec(sb, *argv, check=True):
    p = sb.cli.run("exec", sb.id, *argv)
    if check:
        assert p.returncode == 0, (p.stdout, p.stderr)
    return p


def _create_fails(env, bundle):
    sb = helpers.Sandbox(env.cli, bundle)
    rc, out = env.cli.detached("create", "--bundle", bundle, sb.id, check=False)
    assert rc != 0, out
    return out


def test_root_inside_is_an_unprivileged_range_outside(env, userns_rootfs):
    sb = env.new_sandbox(_bundle(env, userns_rootfs), start=True)
    init = sb.init_host_pid()
    # From the host: the init runs as the mapped ids, not as root.
    st = _status_ids(init)
    assert st["Uid"] == [str(HOST_BASE)] * 4, st
    assert st["Gid"] == [str(HOST_BASE)] * 4, st
    assert os.readlink(f"/proc/{init}/ns/user") != os.readlink("/proc/self/ns/user")
    # From inside: root, with the map boot wrote.
    assert _exec(sb, "id", "-u").stdout.strip() == "0"
    assert _exec(sb, "id", "-g").stdout.strip() == "0"
    assert _exec(sb, "cat", "/proc/self/uid_map").stdout.split() == ["0", str(HOST_BASE), str(SIZE)]
    assert _exec(sb, "cat", "/proc/self/gid_map").stdout.split() == ["0", str(HOST_BASE), str(SIZE)]
    # The exec is in the init's user namespace.
    out = _exec(sb, "readlink", "/proc/self/ns/user").stdout.strip()
    assert out == os.readlink(f"/proc/{init}/ns/user")
    # The chowned rootfs is root's inside.
    assert _exec(sb, "stat", "-c", "%u:%g", "/bin/busybox").stdout.strip() == "0:0"


def test_exec_as_a_container_user_is_mapped_outside(env, userns_rootfs):
    sb = env.new_sandbox(_bundle(env, userns_rootfs), start=True)
    init = sb.init_host_pid()
    # ExecuteAsync's KUID/KGID are the container's ids.
    with sb.raw() as conn:
        pid, out = sb.exec(["sleep", "1000"], uid=1000, gid=1001, conn=conn)
        out.close()
    ns = os.readlink(f"/proc/{init}/ns/pid")
    host = [p for p in map(int, filter(str.isdigit, os.listdir("/proc")))
            if helpers.pid_alive(p) and _ns_or_none(p, "pid") == ns and helpers.nspid(p)[-1] == pid]
    assert len(host) == 1, host
    st = _status_ids(host[0])
    assert st["Uid"] == [str(HOST_BASE + 1000)] * 4, st
    assert st["Gid"] == [str(HOST_BASE + 1001)] * 4, st
    assert os.readlink(f"/proc/{host[0]}/ns/user") == os.readlink(f"/proc/{init}/ns/user")
    status, data = sb.run_exec(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"],
                               uid=1000, gid=1001)
    assert status == 0, data
    assert data.decode().split() == ["1000", "1001", "0", str(HOST_BASE), str(SIZE)]


def _ns_or_none(pid, kind):
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def test_files_made_inside_are_roots_inside_and_capabilities_are_the_specs(env, userns_rootfs):
    sb = env.new_sandbox(_bundle(env, userns_rootfs), start=True)
    out = _exec(sb, "sh", "-c", "touch /tmp/f && stat -c %u:%g /tmp/f && mkdir /root/d && "
                "stat -c %u:%g /root/d").stdout.split()
    assert out == ["0:0", "0:0"]
    # The init holds the spec's capabilities, in its own user namespace.
    cap_eff = _status_ids(sb.init_host_pid())["CapEff"][0]
    assert int(cap_eff, 16) != 0
    inside = _exec(sb, "grep", "CapEff", "/proc/self/status").stdout.split()
    assert inside == ["CapEff:", cap_eff]


def test_host_root_only_file_is_unreadable_inside(env, userns_rootfs):
    # Next to the rootfs: a directory the mapped root can traverse.
    secret = os.path.join(os.path.dirname(userns_rootfs), "secret")
    with open(secret, "w") as f:
        f.write("host secret\n")
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o600)
    cfg = helpers.fixture_config(env.fixture)
    mounts = cfg["mounts"] + [{"destination": "/secret", "type": "bind", "source": str(secret),
                               "options": ["bind", "ro"]}]
    sb = env.new_sandbox(_bundle(env, userns_rootfs, mounts=mounts), start=True)
    # Host root is unmapped: the owner shows as the overflow uid ...
    assert _exec(sb, "stat", "-c", "%u:%g", "/secret").stdout.strip() == "65534:65534"
    # ... and root of the container, CAP_DAC_OVERRIDE and all, cannot read it.
    p = _exec(sb, "cat", "/secret", check=False)
    assert p.returncode != 0
    assert "host secret" not in p.stdout
    assert "Permission denied" in p.stderr


@pytest.mark.parametrize("change,field", [
    (dict(uid_maps=None), "spec.linux.uidMappings: required with a new user namespace"),
    (dict(gid_maps=[]), "spec.linux.gidMappings: required with a new user namespace"),
    (dict(uid_maps=[{"containerID": 0, "hostID": HOST_BASE, "size": 0}]),
     "spec.linux.uidMappings[0].size: must not be 0"),
    (dict(gid_maps=[{"containerID": 0, "hostID": HOST_BASE, "size": 100},
                    {"containerID": 50, "hostID": 300000, "size": 100}]),
     "spec.linux.gidMappings[0] and [1]: the containerID ranges overlap"),
    (dict(uid_maps=[{"containerID": 0, "hostID": HOST_BASE, "size": 100},
                    {"containerID": 1000, "hostID": HOST_BASE + 99, "size": 1}],
          gid_maps=MAPS),
     "spec.linux.uidMappings[0] and [1]: the hostID ranges overlap"),
    (dict(uid_maps=[{"containerID": i, "hostID": HOST_BASE + i, "size": 1} for i in range(341)]),
     "spec.linux.uidMappings: 341 mappings, the kernel takes at most 340"),
    (dict(uid_maps=[{"containerID": 1, "hostID": HOST_BASE, "size": 10}]),
     "spec.linux.uidMappings: must map the container's uid 0"),
])
def test_invalid_mappings_are_refused_naming_the_field(env, userns_rootfs, change, field):
    out = _create_fails(env, _bundle(env, userns_rootfs, linux=_linux(env, **change)))
    assert field in out


def test_mappings_without_a_user_namespace_are_refused(env, userns_rootfs):
    linux = copy.deepcopy(helpers.fixture_config(env.fixture)["linux"])
    linux["uidMappings"] = MAPS
    linux["gidMappings"] = MAPS
    out = _create_fails(env, _bundle(env, userns_rootfs, linux=linux))
    assert "spec.linux.uidMappings: given without a user namespace" in out


def test_process_user_must_be_mapped(env, userns_rootfs):
    out = _create_fails(env, _bundle(env, userns_rootfs, process={"user": {"uid": 70000, "gid": 0}}))
    assert "spec.process.user.uid: 70000 is not mapped by spec.linux.uidMappings" in out


def test_join_a_user_namespace_by_path(env, userns_rootfs):
    a = env.new_sandbox(_bundle(env, userns_rootfs), start=True)
    apid = a.init_host_pid()
    # The joined pid namespace is a's too: a new one would belong to the
    # host's user namespace (refused, said below).
    linux = _linux(env, uid_maps=None, gid_maps=None,
                   user_ns={"type": "user", "path": f"/proc/{apid}/ns/user"})
    for ns in linux["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{apid}/ns/pid"
    b = env.new_sandbox(_bundle(env, userns_rootfs, args=["sleep", "999"], linux=linux),
                        start=True)
    bpid = b.init_host_pid()
    assert os.readlink(f"/proc/{bpid}/ns/user") == os.readlink(f"/proc/{apid}/ns/user")
    # Its own mount, network, ipc and uts namespaces, owned by a's user
    # namespace (sysfs and proc could be mounted).
    for kind in ("mnt", "net", "ipc", "uts"):
        assert os.readlink(f"/proc/{bpid}/ns/{kind}") != os.readlink(f"/proc/{apid}/ns/{kind}")
    assert _status_ids(bpid)["Uid"] == [str(HOST_BASE)] * 4
    out = _exec(b, "sh", "-c", "id -u; readlink /proc/self/ns/user; cat /proc/self/uid_map")
    assert out.stdout.split() == ["0", os.readlink(f"/proc/{apid}/ns/user"), "0",
                                  str(HOST_BASE), str(SIZE)]
    # A new pid namespace with a joined user namespace is refused, naming why.
    for ns in linux["namespaces"]:
        if ns["type"] == "pid":
            ns.pop("path")
    out = _create_fails(env, _bundle(env, userns_rootfs, linux=linux))
    assert "a new pid namespace cannot be made with a user namespace joined by path" in out


def test_cgroup_namespace_and_cgroup_mount_in_a_user_namespace(env, userns_rootfs):
    linux = _linux(env)
    linux["namespaces"].append({"type": "cgroup"})
    cfg = helpers.fixture_config(env.fixture)
    mounts = cfg["mounts"] + [{"destination": "/sys/fs/cgroup", "type": "cgroup",
                               "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]},
                              {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                               "options": ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}]
    sb = env.new_sandbox(_bundle(env, userns_rootfs, linux=linux, mounts=mounts), start=True)
    init = sb.init_host_pid()
    assert os.readlink(f"/proc/{init}/ns/cgroup") != os.readlink("/proc/self/ns/cgroup")
    # The cgroup namespace is rooted at the container's cgroups (made after
    # the placement, inside the user namespace).
    text = _exec(sb, "cat", "/proc/self/cgroup").stdout
    assert all(line.split(":", 2)[2] == "/" for line in text.strip().splitlines()), text
    assert "cgroup.procs" in _exec(sb, "ls", "/sys/fs/cgroup").stdout
    # gid=5 is mapped (tty inside): devpts took it (its options show the
    # host's id, 100005).
    lines = _exec(sb, "grep", "devpts", "/proc/mounts").stdout.strip().splitlines()
    assert f"gid={HOST_BASE + 5}," in lines[-1], lines
    # The device nodes are the host's, bound (no mknod in a user namespace).
    assert _exec(sb, "sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c").stdout.strip() == "4"


def test_joining_the_hosts_own_user_namespace_by_path(env, fixture_bundle):
    # boot's own user namespace: nothing to join (setns would say EINVAL),
    # for the init as for an exec; the container is then as without one.
    linux = copy.deepcopy(helpers.fixture_config(env.fixture)["linux"])
    linux["namespaces"].append({"type": "user", "path": f"/proc/{os.getpid()}/ns/user"})
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"], linux=linux), start=True)
    init = sb.init_host_pid()
    assert os.readlink(f"/proc/{init}/ns/user") == os.readlink("/proc/self/ns/user")
    assert _status_ids(init)["Uid"] == ["0"] * 4
    assert _exec(sb, "cat", "/proc/self/uid_map").stdout.split() == ["0", "0", "4294967295"]

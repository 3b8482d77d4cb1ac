"""Where the container's cgroup is: linux.cgroupsPath itself, as runc puts it.

The container's limits and processes (its init and every exec) are in the
cgroup the spec names: an absolute path from each hierarchy's root, a
relative one under the parent of the caller's unified cgroup (runc's rule),
the container id when there is none. boot and its spawner stay in the
cgroup `create` ran in (as a runc shim or conmon does), so they never count
against the container's limits nor show in `ps`. podman and containerd find
the limits where they asked for them. Facts come from /proc/<pid>/cgroup
and the cgroup files on the host.
"""
import copy
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile

import pytest

import engines
import helpers

MiB = 1 << 20
# Stays up with its marker in the init's argv ($0) until SIGTERM (a lone
# `sleep` would be exec'd by sh, and the marker lost).
IDLE = "trap 'exit 0' TERM; sleep 100000 & wait"


def managed_keys():
    """/proc/<pid>/cgroup keys of the hierarchies cvisor puts a container
    in: the unified one ("") and each mounted v1 controller it manages."""
    keys = [""] if helpers.cgroup_v2_mount() else []
    return keys + [c for c in helpers.CGROUP_V1_CTRLS if helpers.cgroup_v1_mount(c)]


def bundle(env, cgroups_path=None, resources=None, args=("sleep", "1000"), cgroupns=False):
    linux = copy.deepcopy(helpers.fixture_config(env.fixture).get("linux", {}))
    if cgroupns:
        linux.setdefault("namespaces", []).append({"type": "cgroup"})
    linux.pop("cgroupsPath", None)
    if cgroups_path is not None:
        linux["cgroupsPath"] = cgroups_path
    if resources is not None:
        linux["resources"] = resources
    return env.make_bundle(args=list(args), linux=linux)


def node_files(path, name):
    """Every existing host file `name` of hierarchy path `path`."""
    return [os.path.join(d, name) for d in helpers.cgroup_paths(None, path)
            if os.path.exists(os.path.join(d, name))]


def procs_of(path):
    """Every pid of the node `path` in every hierarchy."""
    pids = set()
    for f in node_files(path, "cgroup.procs"):
        with open(f) as fh:
            pids |= {int(x) for x in fh.read().split()}
    return pids


def assert_in(pid, path):
    cg = helpers.cgroups_of(pid)
    for k in managed_keys():
        assert cg.get(k) == path, f"pid {pid} hierarchy {k or 'unified'}: {cg.get(k)!r}, want {path!r}"


def assert_gone(path):
    left = [d for d in helpers.cgroup_paths(None, path) if os.path.exists(d)]
    assert not left, f"cgroups left after delete: {left}"


def rmdir_quiet(path):
    for d in helpers.cgroup_paths(None, path):
        try:
            os.rmdir(d)
        except OSError:
            pass


def limit_of(path, ctrl, v1_file, v2_file):
    """(text, file) of a controller file of the node `path`: v1 where the
    controller is bound to v1, else the unified node."""
    m = helpers.cgroup_v1_mount(ctrl)
    d = m.dir_of(path) if m else os.path.join(helpers.cgroup_v2_mount(), path.lstrip("/"))
    f = os.path.join(d, v1_file if m else v2_file)
    with open(f) as fh:
        return fh.read().strip(), f


def state_cgroup(sb):
    with open(os.path.join(sb.dir, "state.json")) as f:
        return "/" + json.load(f)["cgroupPath"]


def test_absolute_path_holds_the_container_and_its_limits(env):
    top = f"/cvtcg-{secrets.token_hex(4)}"
    path = f"{top}/ctr"
    try:
        sb = env.new_sandbox(bundle(env, path, {"pids": {"limit": 5},
                                                "memory": {"limit": 64 * MiB}}), start=True)
        init = sb.init_host_pid()
        assert state_cgroup(sb) == path
        assert_in(init, path)
        pids, f = limit_of(path, "pids", "pids.max", "pids.max")
        assert pids == "5", f
        mem, f = limit_of(path, "memory", "memory.limit_in_bytes", "memory.max")
        assert int(mem) == 64 * MiB, f
        # No node of the old layout, "<cgroupsPath>/<id>", is made.
        assert not node_files(f"{path}/{sb.id}", "cgroup.procs")
        # An exec'd process goes there too.
        pid, out = sb.exec(["sleep", "1000"])
        out.close()
        members = helpers.wait_until(lambda: len(procs_of(path)) >= 2 and procs_of(path),
                                     what="the init and the exec'd process in the cgroup")
        assert init in members
        for p in members:
            assert_in(p, path)
        # ps and update find it there too.
        p = env.cli.run("ps", "--format", "json", sb.id, check=True)
        assert set(json.loads(p.stdout)) == members
        env.cli.run("update", "--pids-limit", "9", sb.id, check=True)
        pids, f = limit_of(path, "pids", "pids.max", "pids.max")
        assert pids == "9", f
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        for v in members:
            helpers.wait_until(lambda: not helpers.pid_alive(v), what=f"pid {v} to be gone")
        assert_gone(path)
    finally:
        # The parent it made is left, as runc leaves it (others may share it).
        rmdir_quiet(path)
        rmdir_quiet(top)


def test_cgroup_namespace_sees_the_container_cgroup_as_root(env):
    top = f"/cvtcg-{secrets.token_hex(4)}"
    path = f"{top}/ctr"
    try:
        sb = env.new_sandbox(bundle(env, path, cgroupns=True), start=True)
        assert_in(sb.init_host_pid(), path)
        status, out = sb.run_exec(["cat", "/proc/self/cgroup"])
        assert status == 0, out
        seen = {}
        for line in out.decode().splitlines():
            _, ctrls, p = line.split(":", 2)
            for c in ctrls.split(","):
                seen[c] = p
        for k in managed_keys():
            assert seen.get(k) == "/", f"{k or 'unified'} seen as {seen.get(k)!r}:\n{out.decode()}"
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        assert_gone(path)
    finally:
        rmdir_quiet(path)
        rmdir_quiet(top)


def test_relative_path_goes_under_the_callers_parent(env):
    rel = f"cvtcg-{secrets.token_hex(4)}/ctr"
    path = helpers.relative_cgroup(rel)
    try:
        sb = env.new_sandbox(bundle(env, rel), start=True)
        assert state_cgroup(sb) == path
        assert_in(sb.init_host_pid(), path)
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        assert_gone(path)
    finally:
        rmdir_quiet(path)
        rmdir_quiet(os.path.dirname(path))


def test_default_is_the_container_id(env):
    sb = env.new_sandbox(bundle(env), start=True)
    path = helpers.default_cgroup(sb.id)
    assert state_cgroup(sb) == path
    assert_in(sb.init_host_pid(), path)
    limit, f = limit_of(path, "pids", "pids.max", "pids.max")
    assert limit == "1024", f
    p = sb.delete(force=True)
    assert p.returncode == 0, p.stderr
    assert_gone(path)


def test_boot_and_spawner_are_not_in_the_container_cgroup(env):
    sb = env.new_sandbox(bundle(env), start=True)
    path = helpers.default_cgroup(sb.id)
    status, out = sb.run_exec(["true"])
    assert status == 0, out
    spawners = [p for p in helpers.children(sb.boot_pid) if engines.comm(p) == "cvisor-spawner"]
    assert spawners, f"boot {sb.boot_pid} has no cvisor-spawner child after an exec"
    mine = helpers.cgroups_of(os.getpid())
    members = procs_of(path)
    assert sb.init_host_pid() in members
    for p in [sb.boot_pid] + spawners:
        # boot stays in the cgroup create was started in: ours.
        assert helpers.cgroups_of(p) == mine, f"pid {p} moved: {helpers.cgroups_of(p)}"
        assert p not in members, f"pid {p} is in the container's cgroup {path}"
    # `ps` lists the container's processes only.
    p = env.cli.run("ps", "--format", "json", sb.id, check=True)
    assert json.loads(p.stdout) == [sb.init_host_pid()]
    p = sb.delete(force=True)
    assert p.returncode == 0, p.stderr
    for v in [sb.boot_pid, sb.init_host_pid()] + spawners:
        helpers.wait_until(lambda: not helpers.pid_alive(v), what=f"pid {v} to be gone")
    assert_gone(path)


def test_delete_force_with_stopped_boot_leaves_nothing(env):
    # boot is outside the container's cgroup: delete --force must still
    # take it (by its pid) along with every container process.
    sb = env.new_sandbox(bundle(env), start=True)
    path = helpers.default_cgroup(sb.id)
    pid, out = sb.exec(["sleep", "1000"])
    out.close()
    victims = helpers.wait_until(lambda: len(procs_of(path)) >= 2 and procs_of(path),
                                 what="the init and the exec'd process in the cgroup")
    os.kill(sb.boot_pid, signal.SIGSTOP)
    try:
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        for v in list(victims) + [sb.boot_pid]:
            helpers.wait_until(lambda: not helpers.pid_alive(v), what=f"pid {v} to be gone")
        assert_gone(path)
        assert not os.path.exists(sb.dir)
    finally:
        try:
            os.kill(sb.boot_pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_systemd_form(env):
    """A "slice:prefix:name" cgroupsPath without --systemd-cgroup maps onto
    the nodes systemd would give the scope (cgroupfs, any host)."""
    tag = secrets.token_hex(4)
    slice_ = f"cvt-{tag}.slice"
    sid = helpers.new_id()
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    argv = ["create", "--bundle", b, sid]
    # systemd's nodes for the scope, the slice expanded as systemd does.
    path = f"/cvt.slice/cvt-{tag}.slice/cvisor-{sid}.scope"
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        code, out = env.cli.detached(*argv, check=False)
        assert code == 0, out
        with open(os.path.join(sb.dir, "state.json")) as f:
            st = json.load(f)
        sb.boot_pid = st["bootPid"]
        assert "/" + st["cgroupPath"] == path
        assert_in(st["pid"], path)
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        assert_gone(path)
    finally:
        rmdir_quiet(path)
        rmdir_quiet(f"/cvt.slice/cvt-{tag}.slice")
        rmdir_quiet("/cvt.slice")


def test_systemd_flag_refused_without_systemd(env):
    if os.path.exists("/run/systemd/system"):
        pytest.skip("systemd runs here: test_systemd_cgroup.py drives the systemd driver")
    sid = helpers.new_id()
    b = bundle(env, f"cvt.slice:cvisor:{sid}")
    code, out = env.cli.detached("--systemd-cgroup", "create", "--bundle", b, sid, check=False)
    assert code != 0
    assert "--systemd-cgroup: systemd is not running" in out, out
    assert not os.path.exists(os.path.join(env.root, sid))


def test_systemd_marker_without_systemd_on_the_bus_is_refused(env):
    # systemd's marker (sd_booted: /run/systemd/system) made in a private
    # mount namespace, so nothing else on the host sees it. The driver asks
    # the system bus (test_systemd_cgroup.py), so the marker alone is not
    # systemd: a clear error names it.
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) is not installed")
    sid = helpers.new_id()
    b = bundle(env, f"cvt.slice:cvisor:{sid}")
    script = ("mount -t tmpfs cvt /run && mkdir -p /run/systemd/system && "
              'exec "$@"')
    # Output to a file: a create that wrongly succeeded leaves boot
    # holding it, and the call must still return.
    with tempfile.TemporaryFile("w+") as f:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                            *env.cli.argv("--systemd-cgroup", "create", "--bundle", b, sid)],
                           stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=30)
        f.seek(0)
        out = f.read()
    assert p.returncode != 0, out
    assert "systemd is not running" in out and "system bus" in out, out
    assert not os.path.exists(os.path.join(env.root, sid))
    assert_gone(f"/cvt.slice/cvisor-{sid}.scope")


@pytest.mark.parametrize("bad,why", [("/a/../b", '".."'), ("x/./y", '"."'),
                                     ("noslice:p:n", '".slice"'), ("/", "root cgroup")])
def test_bad_cgroups_path_is_refused_naming_the_field(env, bad, why):
    sid = helpers.new_id()
    code, out = env.cli.detached("create", "--bundle", bundle(env, bad), sid, check=False)
    assert code != 0
    assert "linux.cgroupsPath" in out and why in out, out
    assert not os.path.exists(os.path.join(env.root, sid))


# --------------------------------------------------------------------------
# Engines: the limits are where they name the container's cgroup.


@pytest.fixture(scope="module")
def podman(cvisor, fixture_bundle):
    from test_podman import IMAGE, Podman

    pm = Podman(engines.need_binary("podman"), cvisor)
    try:
        pm.import_rootfs(os.path.join(fixture_bundle, "rootfs"), IMAGE)
        pm.image = IMAGE
        yield pm
    finally:
        pm.close()


def test_podman_pids_limit_in_its_cgroup(podman):
    name = engines.unique("cvt")
    marker = engines.unique("mark")
    try:
        podman("run", "-d", "--name", name, "--network", "none", "--pids-limit", "5",
               "--memory", "64m", podman.image, "sh", "-c", IDLE, marker)
        init = engines.find_init(marker)
        path = podman("inspect", "--format", "{{.State.CgroupPath}}", name).stdout.strip()
        assert path.startswith("/"), f"podman inspect CgroupPath {path!r}"
        pids, f = limit_of(path, "pids", "pids.max", "pids.max")
        assert pids == "5", f
        mem, f = limit_of(path, "memory", "memory.limit_in_bytes", "memory.max")
        assert int(mem) == 64 * MiB, f
        assert_in(init, path)
        podman("rm", "--force", "--time", "0", name)
        assert_gone(path)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


@pytest.fixture(scope="module")
def containerd(cvisor, fixture_bundle):
    from test_containerd import Containerd

    cd = Containerd(engines.need_binary("containerd"), engines.need_binary("ctr"), cvisor)
    cd.bundle_rootfs = os.path.join(fixture_bundle, "rootfs")
    try:
        yield cd
    finally:
        cd.close()


@pytest.mark.parametrize("explicit", [False, True])
def test_containerd_limits_in_its_cgroup(containerd, explicit):
    cid = engines.unique("c")
    containerd.ids.append(cid)
    marker = engines.unique("mark")
    # ctr's default cgroupsPath is /<namespace>/<id>; --cgroup names one.
    path = f"/{containerd.ns}/x-{cid}" if explicit else f"/{containerd.ns}/{cid}"
    rootfs = engines.copy_rootfs(containerd.bundle_rootfs,
                                 os.path.join(containerd.tmp, f"rootfs-{cid}"))
    opts = ["--cgroup", path] if explicit else []
    try:
        containerd("run", "-d", *containerd.run_opts(), *opts, "--memory-limit", str(64 * MiB),
                   "--cpu-quota", "50000", "--cpu-period", "100000", "--rootfs", rootfs, cid,
                   "sh", "-c", IDLE, marker)
        init = engines.find_init(marker)
        assert_in(init, path)
        mem, f = limit_of(path, "memory", "memory.limit_in_bytes", "memory.max")
        assert int(mem) == 64 * MiB, f
        quota, f = limit_of(path, "cpu", "cpu.cfs_quota_us", "cpu.max")
        assert quota.split()[0] == "50000", f
        containerd.remove(cid)
        assert_gone(path)
    finally:
        containerd.remove(cid)

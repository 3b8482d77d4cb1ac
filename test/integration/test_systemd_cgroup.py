"""--systemd-cgroup: the container's cgroup is a transient scope that
systemd makes over D-Bus (kernel/cgroup_systemd.c), as runc's and crun's
systemd drivers do.

systemd does not run on this host, so a stand-in (fake_systemd.py) owns
org.freedesktop.systemd1 on a private dbus-daemon that cvisor reaches
through DBUS_SYSTEM_BUS_ADDRESS. It does to the host's hierarchies what
systemd does for a scope (makes the node under the slice in the unified and
name=systemd hierarchies, moves the PIDs in; on stop kills and removes it)
and records every call, so the tests see both what cvisor asked and where
the container ended up.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import time

import pytest

import helpers
from test_cgroup_paths import assert_gone, bundle, limit_of, managed_keys, rmdir_quiet

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


def python_has_dbus():
    r = subprocess.run(["/usr/bin/python3", "-c", "import dbus, gi.repository.GLib"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


class Bus:
    """A private system-like bus, and optionally the fake systemd on it."""

    def __init__(self, d):
        self.dir = d
        self.sock = os.path.join(d, "bus")
        self.address = f"unix:path={self.sock}"
        cfg = os.path.join(d, "bus.conf")
        with open(cfg, "w") as f:
            f.write(BUS_CONFIG.format(sock=self.sock))
        self.daemon = subprocess.Popen(["dbus-daemon", f"--config-file={cfg}", "--nofork",
                                        "--nopidfile"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.fake = None
        helpers.wait_until(lambda: os.path.exists(self.sock), what="dbus-daemon's socket")

    def start_fake(self, mode="ok"):
        self.set_mode(mode)
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.fake = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fake_systemd.py"),
                                      self.dir], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "fake.log"), "w"))
        helpers.wait_until(lambda: os.path.exists(os.path.join(self.dir, "ready")),
                           what="the fake systemd on the bus")

    def set_mode(self, mode):
        with open(os.path.join(self.dir, "mode"), "w") as f:
            f.write(mode)

    def calls(self, method=None):
        try:
            with open(os.path.join(self.dir, "calls.jsonl")) as f:
                cs = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [c for c in cs if method is None or c["method"] == method]

    def close(self):
        for p in (self.fake, self.daemon):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture
def bus(env, monkeypatch):
    if not shutil.which("dbus-daemon"):
        pytest.skip("dbus-daemon is not installed (scripts/deps.sh installs it)")
    if not python_has_dbus():
        pytest.skip("/usr/bin/python3 lacks dbus or gi (python3-dbus, python3-gi)")
    d = os.path.join(env.root, f".sysd-bus-{secrets.token_hex(3)}")
    os.makedirs(d)
    b = Bus(d)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.address)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def fake(bus):
    bus.start_fake()
    return bus


def props_of(call):
    """{name: (type, value)} of a recorded a(sv)."""
    return {n: (t, v) for n, t, v in call["args"][2]}


def scope_names():
    tag = secrets.token_hex(3)
    sid = f"sysd-{helpers.new_id()}"
    return sid, f"sysdt-{tag}.slice", f"/sysdt.slice/sysdt-{tag}.slice/cvisor-{sid}.scope"


def clean(path):
    rmdir_quiet(path)
    parent = os.path.dirname(path)
    rmdir_quiet(parent)
    rmdir_quiet(os.path.dirname(parent))


def create(env, sid, b, *flags):
    return env.cli.detached("--systemd-cgroup", "create", "--bundle", b, *flags, sid, check=False)


def test_scope_holds_the_container_and_gets_the_limits(env, fake):
    sid, slice_, path = scope_names()
    unit = f"cvisor-{sid}.scope"
    res = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 50},
           "cpu": {"shares": 512, "quota": 50000, "period": 100000}}
    b = bundle(env, f"{slice_}:cvisor:{sid}", res)
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        code, out = create(env, sid, b)
        assert code == 0, out
        st = sb.state()
        init = st["pid"]
        with open(os.path.join(sb.dir, "state.json")) as f:
            saved = json.load(f)
        sb.boot_pid = saved["bootPid"]
        assert "/" + saved["cgroupPath"] == path
        assert saved["systemdUnit"] == unit

        # What systemd was asked for.
        (start,) = fake.calls("StartTransientUnit")
        assert start["args"][0] == unit and start["args"][1] == "replace"
        p = props_of(start)
        assert p["PIDs"] == ("au", [init])
        assert p["Delegate"] == ("b", True)
        assert p["Slice"] == ("s", slice_)
        assert p["DefaultDependencies"] == ("b", False)
        assert p["Description"][1] == f"cvisor container {sid}"
        assert p["TasksMax"] == ("t", 50)
        # systemd's copy of the device rules (runc's default list), so it
        # never re-applies "allow everything" over cvisor's.
        assert p["DevicePolicy"] == ("s", "strict")
        dev_type, allowed = p["DeviceAllow"]
        assert dev_type == "a(ss)"
        for entry in (["/dev/char/1:3", "rwm"], ["/dev/char/5:2", "rwm"], ["char-*", "m"],
                      ["block-*", "m"], ["char-pts", "rwm"]):
            assert entry in allowed, allowed
        assert p["CPUQuotaPerSecUSec"] == ("t", 500000)
        assert p["CPUQuotaPeriodUSec"] == ("t", 100000)
        if helpers.cgroup_v1_mount("memory"):
            assert p["MemoryLimit"] == ("t", 64 * MiB)
            assert p["CPUShares"] == ("t", 512)
        else:
            assert p["MemoryMax"] == ("t", 64 * MiB)
            assert p["CPUWeight"][0] == "t"

        # The init is in the scope: in name=systemd, which only "systemd"
        # (the fake) touches, and in every hierarchy cvisor manages.
        cg = helpers.cgroups_of(init)
        if "name=systemd" in cg:
            assert cg["name=systemd"] == path, cg
        for k in managed_keys():
            assert cg.get(k) == path, (k, cg)
        # cvisor wrote the limits into the scope's files as well.
        assert limit_of(path, "pids", "pids.max", "pids.max")[0] == "50"

        # The bus connection was boot's for the start only.
        with open(f"/proc/{init}/status") as f:
            sigign = int(next(line for line in f if line.startswith("SigIgn:")).split()[1], 16)
        assert not sigign & (1 << (signal.SIGPIPE - 1)), "SIGPIPE ignored in the container"

        # update: systemd first, then the files.
        env.cli.run("update", "--pids-limit", "70", sid, check=True)
        (setp,) = fake.calls("SetUnitProperties")
        assert setp["args"][0] == unit and setp["args"][1] is True
        assert dict((n, (t, v)) for n, t, v in setp["args"][2])["TasksMax"] == ("t", 70)
        assert limit_of(path, "pids", "pids.max", "pids.max")[0] == "70"
        # New device rules: systemd's copy is replaced (reset, then the list).
        rf = os.path.join(env.root, f".{sid}-res.json")
        with open(rf, "w") as f:
            json.dump({"devices": [{"allow": False, "access": "rwm"},
                                   {"allow": True, "type": "c", "major": 10, "minor": 200,
                                    "access": "rw"}]}, f)
        env.cli.run("update", "--resources", rf, sid, check=True)
        setp = fake.calls("SetUnitProperties")[-1]
        names = [n for n, _, _ in setp["args"][2]]
        assert names.count("DeviceAllow") == 2, names
        last = [v for n, _, v in setp["args"][2] if n == "DeviceAllow"]
        assert last[0] == [] and ["/dev/char/10:200", "rw"] in last[1], last

        env.cli.run("start", sid, check=True)
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        (stop,) = fake.calls("StopUnit")
        assert stop["args"] == [unit, "replace"]
        # The container was killed before: systemd's stop had nothing left
        # to SIGKILL after its timeout.
        assert not fake.calls("StopUnit-SIGKILL")
        assert_gone(path)
        assert not os.path.exists(sb.dir)
        assert not helpers.pid_alive(init)
    finally:
        clean(path)


def test_boot_keeps_no_bus_connection(env, fake):
    """boot's fds: the same as those of a container without the driver."""
    sid, slice_, path = scope_names()
    try:
        sb = helpers.Sandbox(env.cli, bundle(env, f"{slice_}:cvisor:{sid}"), sid)
        env.sandboxes.append(sb)
        code, out = create(env, sid, sb.bundle)
        assert code == 0, out
        with open(os.path.join(sb.dir, "state.json")) as f:
            sb.boot_pid = json.load(f)["bootPid"]
        plain = env.new_sandbox(bundle(env))
        with open(os.path.join(plain.dir, "state.json")) as f:
            plain.boot_pid = json.load(f)["bootPid"]
        assert helpers.settled_fd_count(sb.boot_pid) == helpers.settled_fd_count(plain.boot_pid)
        assert sb.delete(force=True).returncode == 0
    finally:
        clean(path)


def test_property_annotations(env, fake):
    sid, slice_, path = scope_names()
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    cfg_path = os.path.join(b, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["annotations"] = {"org.systemd.property.TimeoutStopUSec": "uint64 123000000",
                          "org.systemd.property.CollectMode": "'inactive-or-failed'",
                          "org.systemd.property.SendSIGKILL": "false",
                          "org.systemd.property.CPUWeight": "@t 77",
                          "unrelated": "x"}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        code, out = create(env, sid, b)
        assert code == 0, out
        p = props_of(fake.calls("StartTransientUnit")[0])
        assert p["TimeoutStopUSec"] == ("t", 123000000)
        assert p["CollectMode"] == ("s", "inactive-or-failed")
        assert p["SendSIGKILL"] == ("b", False)
        assert p["CPUWeight"] == ("t", 77)
        assert sb.delete(force=True).returncode == 0
        assert_gone(path)
    finally:
        clean(path)


def test_bad_property_annotation_is_refused(env, fake):
    sid, slice_, path = scope_names()
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    cfg_path = os.path.join(b, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["annotations"] = {"org.systemd.property.TimeoutStopUSec": "[1, 2]"}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    try:
        code, out = create(env, sid, b)
        assert code != 0
        assert 'annotations["org.systemd.property.TimeoutStopUSec"]' in out, out
        assert not os.path.exists(os.path.join(env.root, sid))
        assert_gone(path)
        assert not fake.calls("StartTransientUnit")
    finally:
        clean(path)


@pytest.mark.parametrize("mode,why", [("failed", 'the job ended "failed"'),
                                      ("error", "already loaded"),
                                      ("silent", "no JobRemoved signal")])
def test_failed_start_leaves_nothing(env, bus, mode, why):
    bus.start_fake(mode)
    sid, slice_, path = scope_names()
    unit = f"cvisor-{sid}.scope"
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    try:
        t0 = time.monotonic()
        code, out = create(env, sid, b)
        took = time.monotonic() - t0
        assert code != 0
        assert "systemd" in out and unit in out and why in out, out
        if mode == "silent":
            assert 9 < took < 30, took  # the bounded wait, 10 s
        assert not os.path.exists(os.path.join(env.root, sid))
        assert_gone(path)
        assert bus.calls("StartTransientUnit")
        if mode != "error":
            # The scope the fake made was stopped again, its init killed
            # first.
            assert [c["args"][0] for c in bus.calls("StopUnit")] == [unit]
            assert not bus.calls("StopUnit-SIGKILL")
        else:
            # A refused start (UnitExists of a running unit): the unit of
            # that name is someone else's; reset (which leaves a running
            # unit alone) and tried once more, never stopped.
            assert not bus.calls("StopUnit")
            assert len(bus.calls("StartTransientUnit")) == 2
        pids = [int(x) for x in os.listdir("/proc") if x.isdigit()]
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    assert sid.encode() not in f.read(), f"process {pid} of {sid} left"
            except FileNotFoundError:
                pass
    finally:
        clean(path)


def test_no_systemd_on_the_bus_is_refused(env, bus):
    sid, slice_, path = scope_names()
    code, out = create(env, sid, bundle(env, f"{slice_}:cvisor:{sid}"))
    assert code != 0
    assert "systemd is not running" in out and "org.freedesktop.systemd1" in out, out
    assert not os.path.exists(os.path.join(env.root, sid))
    assert_gone(path)


def test_no_bus_is_refused(env, monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={env.root}/no-such-bus")
    sid, slice_, path = scope_names()
    code, out = create(env, sid, bundle(env, f"{slice_}:cvisor:{sid}"))
    assert code != 0
    assert "systemd is not running" in out and "no-such-bus" in out, out
    assert not os.path.exists(os.path.join(env.root, sid))


def test_systemd_form_required(env, fake):
    sid = f"sysd-{helpers.new_id()}"
    code, out = create(env, sid, bundle(env, "/sysdt-abs/x"))
    assert code != 0
    assert "linux.cgroupsPath" in out and "slice:prefix:name" in out, out
    assert not fake.calls("StartTransientUnit")


def test_default_scope_without_cgroups_path(env, fake):
    """No cgroupsPath: runc's default scope, system.slice/cvisor-<id>.scope."""
    sid = f"sysd-{helpers.new_id()}"
    path = f"/system.slice/cvisor-{sid}.scope"
    had_slice = [os.path.exists(d) for d in helpers.cgroup_paths(None, "/system.slice")]
    try:
        sb = helpers.Sandbox(env.cli, bundle(env), sid)
        env.sandboxes.append(sb)
        code, out = create(env, sid, sb.bundle)
        assert code == 0, out
        (start,) = fake.calls("StartTransientUnit")
        assert start["args"][0] == f"cvisor-{sid}.scope"
        assert props_of(start)["Slice"] == ("s", "system.slice")
        assert helpers.cgroups_of(sb.state()["pid"]).get("", path) == path
        assert sb.delete(force=True).returncode == 0
        assert_gone(path)
    finally:
        rmdir_quiet(path)
        if not any(had_slice):
            rmdir_quiet("/system.slice")


def test_podman_with_the_systemd_cgroup_manager(env, fake, cvisor):
    """podman --cgroup-manager=systemd (its default on a systemd host) runs
    a container through cvisor's driver: podman makes conmon's scope, cvisor
    the container's, machine.slice:libpod:<id>, with podman's limits."""
    podman = shutil.which("podman")
    if not podman:
        pytest.skip("podman is not installed")
    from test_podman import IMAGE, Podman

    had_slice = [os.path.exists(d) for d in helpers.cgroup_paths(None, "/machine.slice")]
    pm = Podman(podman, cvisor)
    pm.base[pm.base.index("--cgroup-manager") + 1] = "systemd"
    pm.env["DBUS_SYSTEM_BUS_ADDRESS"] = fake.address
    # conmon runs the runtime with the environment containers.conf gives it.
    with open(os.path.join(pm.tmp, "containers.conf"), "a") as f:
        f.write('conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:'
                f'/sbin:/bin", "DBUS_SYSTEM_BUS_ADDRESS={fake.address}"]\n')
    scopes = []
    try:
        pm.import_rootfs(os.path.join(env.fixture, "rootfs"), IMAGE)
        p = pm("run", "--rm", "--pids-limit", "77", IMAGE, "cat", "/proc/self/cgroup")
        starts = fake.calls("StartTransientUnit")
        scopes = [f"/machine.slice/{c['args'][0]}" for c in starts]
        ours = [c for c in starts if not c["args"][0].startswith("libpod-conmon-")]
        assert len(ours) == 1, [c["args"][0] for c in starts]
        unit = ours[0]["args"][0]
        assert unit.startswith("libpod-") and unit.endswith(".scope"), unit
        pr = props_of(ours[0])
        assert pr["Slice"] == ("s", "machine.slice")
        assert pr["TasksMax"] == ("t", 77)
        assert f"0::/machine.slice/{unit}" in p.stdout.splitlines(), p.stdout
        assert [c["args"][0] for c in fake.calls("StopUnit")] == [unit]
        assert_gone(f"/machine.slice/{unit}")
    finally:
        pm.close()
        # conmon's scope (the fake does not collect empty scopes as systemd
        # does) empties once conmon and the `podman container cleanup` it
        # runs have exited, which takes a while on a loaded machine.
        deadline = time.monotonic() + 60
        for s in scopes:
            while True:
                rmdir_quiet(s)
                left = [d for d in helpers.cgroup_paths(None, s) if os.path.exists(d)]
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        if not any(had_slice):
            rmdir_quiet("/machine.slice")


def test_cgroup_manager_flag(env, fake):
    """crun's --cgroup-manager systemd|cgroupfs chooses the driver too."""
    sid, slice_, path = scope_names()
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        code, out = env.cli.detached("--cgroup-manager", "systemd", "create", "--bundle", b, sid,
                                     check=False)
        assert code == 0, out
        assert [c["args"][0] for c in fake.calls("StartTransientUnit")] == [f"cvisor-{sid}.scope"]
        assert sb.delete(force=True).returncode == 0
        assert_gone(path)
        # cgroupfs: the same path through cgroupfs, systemd not asked.
        sb2 = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb2)
        code, out = env.cli.detached("--cgroup-manager", "cgroupfs", "create", "--bundle", b, sid,
                                     check=False)
        assert code == 0, out
        assert len(fake.calls("StartTransientUnit")) == 1
        assert sb2.delete(force=True).returncode == 0
        assert_gone(path)
    finally:
        clean(path)
    p = env.cli.run("--cgroup-manager", "disabled", "state", "x")
    assert p.returncode != 0 and "--cgroup-manager" in p.stderr, p.stderr


def test_run_stops_the_scope_when_the_container_ends(env, fake):
    """`run`: the container's exit ends the sandbox, whose boot stops the
    scope; run's own delete then finds no unit, which is fine."""
    sid, slice_, path = scope_names()
    unit = f"cvisor-{sid}.scope"
    b = bundle(env, f"{slice_}:cvisor:{sid}", args=("sh", "-c", "exit 3"))
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        p = env.cli.run("--systemd-cgroup", "run", "--bundle", b, sid)
        assert p.returncode == 3, (p.returncode, p.stderr)
        assert [c["args"][0] for c in fake.calls("StopUnit")][:1] == [unit]
        assert not fake.calls("StopUnit-SIGKILL")
        env.cli.run("delete", "--force", sid)
        assert_gone(path)
        assert "warning" not in p.stderr, p.stderr
    finally:
        clean(path)


def test_features_lists_the_systemd_driver(env):
    feats = json.loads(env.cli.run("features", check=True).stdout)
    assert feats["linux"]["cgroup"]["systemd"] is True
    assert feats["linux"]["cgroup"]["systemdUser"] is False


def test_bundle_cannot_choose_a_scope(env, fake):
    """cvisor.systemdUnit/Slice in config.json are create's to set: without
    --systemd-cgroup, systemd is never asked for the bundle's unit."""
    sid = f"sysd-{helpers.new_id()}"
    b = bundle(env)
    cfg_path = os.path.join(b, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["cvisor.systemdUnit"] = "evil.scope"
    cfg["cvisor.systemdSlice"] = "evil.slice"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    sb = helpers.Sandbox(env.cli, b, sid)
    env.sandboxes.append(sb)
    code, out = env.cli.detached("create", "--bundle", b, sid, check=False)
    assert code == 0, out
    assert not fake.calls("StartTransientUnit")
    assert sb.delete(force=True).returncode == 0
    assert not fake.calls("StopUnit")


def test_containerd_with_systemd_cgroup(env, fake, cvisor, fixture_bundle):
    """containerd's runc shim with SystemdCgroup (ctr --runc-systemd-cgroup)
    passes --systemd-cgroup and a slice:prefix:name cgroupsPath."""
    import engines
    from test_containerd import Containerd

    containerd, ctr = shutil.which("containerd"), shutil.which("ctr")
    if not containerd or not ctr:
        pytest.skip("containerd or ctr is not installed")
    tag = secrets.token_hex(3)
    slice_ = f"sysdc-{tag}.slice"
    cd = Containerd(containerd, ctr, cvisor)
    cd.bundle_rootfs = os.path.join(fixture_bundle, "rootfs")
    cid = engines.unique("c")
    path = f"/sysdc.slice/{slice_}/cvt-{cid}.scope"
    try:
        cd.ids.append(cid)
        rootfs = engines.copy_rootfs(cd.bundle_rootfs, os.path.join(cd.tmp, f"rootfs-{cid}"))
        p = cd("run", "--rm", "--runc-systemd-cgroup", "--cgroup", f"{slice_}:cvt:{cid}",
               *cd.run_opts(), "--rootfs", rootfs, cid, "cat", "/proc/self/cgroup")
        assert f"0::{path}" in p.stdout.splitlines(), p.stdout
        (start,) = fake.calls("StartTransientUnit")
        assert start["args"][0] == f"cvt-{cid}.scope"
        assert props_of(start)["Slice"] == ("s", slice_)
        assert f"cvt-{cid}.scope" in [c["args"][0] for c in fake.calls("StopUnit")]
        assert not fake.calls("StopUnit-SIGKILL")
    finally:
        cd.close()
        clean(path)
    assert_gone(path)


def test_stale_failed_unit_is_reset_and_started(env, bus):
    """A failed scope of the same name (an earlier container's) answers
    UnitExists: cvisor resets it and starts again, as runc does."""
    bus.start_fake("stale")
    sid, slice_, path = scope_names()
    unit = f"cvisor-{sid}.scope"
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        code, out = create(env, sid, b)
        assert code == 0, out
        assert [c["args"][0] for c in bus.calls("StartTransientUnit")] == [unit, unit]
        assert [c["args"][0] for c in bus.calls("ResetFailedUnit")] == [unit]
        assert helpers.cgroups_of(sb.state()["pid"]).get("") == path
        assert sb.delete(force=True).returncode == 0
        assert_gone(path)
    finally:
        clean(path)


def test_delete_without_systemd_warns_and_deletes(env, bus):
    """systemd gone by delete time: a warning, and the container still goes
    (its processes and the nodes cvisor manages)."""
    bus.start_fake()
    sid, slice_, path = scope_names()
    b = bundle(env, f"{slice_}:cvisor:{sid}")
    try:
        sb = helpers.Sandbox(env.cli, b, sid)
        env.sandboxes.append(sb)
        code, out = create(env, sid, b)
        assert code == 0, out
        init = sb.state()["pid"]
        bus.fake.terminate()
        bus.fake.wait(timeout=10)
        p = sb.delete(force=True)
        assert p.returncode == 0, p.stderr
        assert "warning" in p.stderr and "systemd is not running" in p.stderr, p.stderr
        assert not os.path.exists(sb.dir)
        helpers.wait_until(lambda: not helpers.pid_alive(init), what="the init to die")
        # The nodes cvisor manages (unified, each known v1 controller):
        # only name=systemd, the fake's own, may stay.
        left = [d for d in helpers.cgroup_paths(None, path)
                if os.path.exists(d) and "/systemd/" not in d]
        assert not left, left
    finally:
        clean(path)

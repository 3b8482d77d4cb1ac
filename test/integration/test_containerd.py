"""containerd drives cvisor through its runc shim (io.containerd.runc.v2 with
the runc binary replaced by CVISOR_BIN, `ctr run --runc-binary`).

The tests start their own containerd (root, state and sockets under a temp
dir, the CRI plugin off) and stop it at the end. Containers run on a private
copy of the busybox rootfs (`ctr run --rootfs`, no image or snapshotter
needed). What `ctr` shows is checked against host-side facts (/proc, cgroups)
and runc's behaviour: every test passes with CVISOR_BIN=/usr/sbin/runc.
"""
import json
import os
import subprocess
import tempfile
import time

import pytest

import engines
import helpers
from engines import run

RUNC_STATE = "/run/containerd/runc"
IDLE = "trap 'exit 0' TERM; sleep 100000 & wait"
MiB = 1 << 20

CONFIG = """\
version = 2
root = "{tmp}/root"
state = "{tmp}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{tmp}/c.sock"

[ttrpc]
  address = "{tmp}/c.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
"""


class Containerd:
    def __init__(self, containerd, ctr, runtime):
        # Short path: the sockets must fit in sun_path.
        self.tmp = tempfile.mkdtemp(prefix="cvcd", dir="/tmp")
        self.address = os.path.join(self.tmp, "c.sock")
        self.ns = engines.unique("cvt")
        self.runtime = runtime
        self.ctr_base = [ctr, "--address", self.address, "--namespace", self.ns]
        self.ids = []
        conf = os.path.join(self.tmp, "config.toml")
        with open(conf, "w") as f:
            f.write(CONFIG.format(tmp=self.tmp))
        self.log = open(os.path.join(self.tmp, "containerd.log"), "w")
        self.proc = subprocess.Popen([containerd, "--config", conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        try:
            engines.wait_until(lambda: self.proc.poll() is not None or
                               self("version", check=False).returncode == 0,
                               timeout=30, step=0.1, what="containerd to serve")
            assert self.proc.poll() is None, f"containerd exited: {self.log_tail()}"
        except BaseException:
            self.close()
            raise

    def __call__(self, *args, check=True, timeout=engines.ENGINE_TIMEOUT):
        return run(self.ctr_base + list(args), check=check, timeout=timeout)

    def log_tail(self):
        with open(self.log.name) as f:
            return f.read()[-2000:]

    def run_detached(self, script, marker, env=()):
        """`ctr run -d` of `sh -c script marker` on a private rootfs copy;
        returns (container id, host pid of its init as found on the host)."""
        cid = engines.unique("c")
        self.ids.append(cid)
        rootfs = engines.copy_rootfs(self.bundle_rootfs, os.path.join(self.tmp, f"rootfs-{cid}"))
        self("run", "-d", *self.run_opts(env), "--rootfs", rootfs, cid, "sh", "-c", script, marker)
        return cid, engines.find_init(marker)

    def run_opts(self, env=()):
        opts = ["--runtime", "io.containerd.runc.v2", "--runc-binary", self.runtime,
                "--env", engines.PATH_ENV]
        for e in env:
            opts += ["--env", e]
        return opts

    def tasks(self):
        """{id: (pid, status)} from `ctr task ls`."""
        out = {}
        for line in self("task", "ls").stdout.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def remove(self, cid):
        self("task", "kill", "--signal", "SIGKILL", cid, check=False)
        self("task", "delete", "--force", cid, check=False)
        self("container", "delete", cid, check=False)

    def close(self):
        if self.proc.poll() is None:
            for cid in self.ids:
                self.remove(cid)
            self("namespace", "remove", self.ns, check=False)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()
        # Shims that outlived containerd are ours: they name our address.
        engines.kill_pids(engines.pids_with_arg(self.address))
        engines.umount_under(self.tmp)
        # ctr's default cgroupsPath is /<namespace>/<id>: drop our namespace's.
        for m in helpers.cgroup_mounts():
            d = m.dir_of(f"/{self.ns}")
            if d and os.path.isdir(d):
                for sub in sorted((os.path.join(r, n) for r, ds, _ in os.walk(d) for n in ds),
                                  key=len, reverse=True):
                    _rmdir(sub)
                _rmdir(d)
        # The shim keeps runtime state in /run/containerd/runc/<namespace>.
        subprocess.run(["rm", "-rf", "--one-file-system", self.tmp,
                        os.path.join(RUNC_STATE, self.ns)], timeout=60)


def _rmdir(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


@pytest.fixture(scope="module")
def containerd(cvisor, fixture_bundle):
    binary = engines.need_binary("containerd")
    ctr = engines.need_binary("ctr")
    cd = Containerd(binary, ctr, cvisor)
    cd.bundle_rootfs = os.path.join(fixture_bundle, "rootfs")
    try:
        yield cd
    finally:
        cd.close()


@pytest.fixture
def ctrd(containerd):
    """The module's containerd; containers a test made are removed after it."""
    before = len(containerd.ids)
    yield containerd
    for cid in containerd.ids[before:]:
        containerd.remove(cid)


NS = ("mnt", "pid", "net", "uts", "ipc")


# --------------------------------------------------------------------------


def test_run_attached_output(ctrd):
    cid = engines.unique("c")
    ctrd.ids.append(cid)
    rootfs = engines.copy_rootfs(ctrd.bundle_rootfs, os.path.join(ctrd.tmp, f"rootfs-{cid}"))
    p = ctrd("run", "--rm", *ctrd.run_opts(), "--rootfs", rootfs, cid,
             "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (p.returncode, p.stdout) == (3, "out\n"), p
    assert "err" in p.stderr, p.stderr


def test_task_pid_is_container_init(ctrd):
    marker = engines.unique("mark")
    cid, init = ctrd.run_detached(IDLE, marker)
    pid, status = ctrd.tasks()[cid]
    assert status == "RUNNING"
    assert engines.comm(pid) == "sh", \
        f"ctr task ls PID {pid} is {engines.comm(pid)!r} {engines.cmdline(pid)}, " \
        f"not the container's sh"
    assert pid == init, f"ctr task ls PID {pid}, the container init is {init}"


def test_exec_output_and_namespaces(ctrd):
    cid, init = ctrd.run_detached(IDLE, engines.unique("mark"))
    script = "echo exec-out; " + "; ".join(f"readlink /proc/self/ns/{n}" for n in NS)
    p = ctrd("task", "exec", "--exec-id", engines.unique("e"), cid, "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert lines[:1] == ["exec-out"], p.stdout
    inside = dict(zip(NS, lines[1:]))
    expected = {n: engines.ns_inode(init, n) for n in NS}
    assert inside == expected, f"exec'd process is not in the container's namespaces: " \
                               f"exec sees {inside}, the container init {init} has {expected}"


def test_task_ps_shows_host_pids(ctrd):
    cid, init = ctrd.run_detached(IDLE, engines.unique("mark"))
    p = ctrd("task", "ps", cid)
    listed = sorted(int(line.split()[0]) for line in p.stdout.splitlines()[1:] if line.strip())
    expected = engines.pids_in_pidns(init)
    assert listed == expected, \
        f"ctr task ps should list the host pids {expected} of the container's processes " \
        f"(init {init}), it lists:\n{p.stdout}"


def test_metrics_are_the_containers_cgroup(ctrd):
    fill = 16
    script = f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={fill} 2>/dev/null; {IDLE}"
    cid, init = ctrd.run_detached(script, engines.unique("mark"))
    # tmpfs pages are charged to the writer's memory cgroup: the container's.
    engines.wait_until(lambda: engines.memory_usage(init)[0] >= fill * MiB,
                       what=f"the container's memory cgroup to hold the {fill} MiB it wrote")
    m = json.loads(ctrd("task", "metrics", "--format", "json", cid).stdout)
    cg_bytes, cg_path = engines.memory_usage(init)
    if "memory" in m and "usage" in m["memory"] and isinstance(m["memory"]["usage"], dict):
        used = m["memory"]["usage"]["usage"]  # cgroup v1 metrics
    else:
        used = m.get("memory", {}).get("usage")  # cgroup v2 metrics
    assert used is not None and used > 0, f"no memory usage in ctr task metrics: {m}"
    assert fill * MiB <= used <= cg_bytes + 16 * MiB, \
        f"ctr task metrics memory usage {used} bytes; the container's own cgroup {cg_path} " \
        f"holds {cg_bytes} (at least the {fill} MiB it wrote)"
    n = len(engines.pids_in_pidns(init))
    assert m.get("pids", {}).get("current") == n, \
        f"ctr task metrics pids {m.get('pids')}, the container has {n} processes"


def test_pause_resume(ctrd):
    cid, init = ctrd.run_detached(IDLE, engines.unique("mark"))
    ctrd("task", "pause", cid)
    try:
        assert ctrd.tasks()[cid][1] == "PAUSED"
        assert engines.frozen(init), f"paused, but the container init {init} is not frozen"
    finally:
        ctrd("task", "resume", cid, check=False)
    assert ctrd.tasks()[cid][1] == "RUNNING"
    assert not engines.frozen(init), f"resumed, but the container init {init} is still frozen"


def test_kill_and_delete(ctrd):
    cid, init = ctrd.run_detached(IDLE, engines.unique("mark"))
    procs = engines.pids_in_pidns(init)
    ctrd("task", "kill", cid)  # SIGTERM: the container's trap exits 0
    engines.wait_until(lambda: ctrd.tasks()[cid][1] == "STOPPED", what=f"task {cid} to stop")
    engines.wait_until(lambda: not any(engines.alive(p) for p in procs),
                       what=f"the container's processes {procs} to exit")
    p = ctrd("task", "delete", cid)
    assert cid not in ctrd.tasks(), p
    ctrd("container", "delete", cid)
    assert cid not in ctrd("container", "ls", "--quiet").stdout.split()

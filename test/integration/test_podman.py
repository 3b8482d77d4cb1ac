"""podman drives cvisor as its OCI runtime (`podman --runtime CVISOR_BIN`).

Each test checks what a podman user sees and asserts what runc gives on the
same host (crun refuses hybrid cgroup hosts, so runc is the reference here;
every test passes with CVISOR_BIN=/usr/sbin/runc). Facts about a container
(its init pid, processes, namespaces, cgroups) come from /proc on the host,
not from the runtime under test.

podman gets a private set-up so the tests touch nothing shared: its own
containers.conf (CONTAINERS_CONF; the default ulimits need no
CAP_SYS_RESOURCE, cgroupfs because systemd is not pid 1), storage.conf, vfs
storage, runroot, tmpdir and an events file under a temp dir. Containers use
`--network none` (their own empty network namespace), which needs no CNI
plugin and changes no host firewall rule.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import engines
from engines import run

IMAGE = "localhost/cvisor-busybox"
INFRA_IMAGE = "localhost/cvisor-busybox-infra"
# A container that stays up with two processes (sh and sleep) until SIGTERM,
# then exits 0. The marker is $0, so it shows in the init's argv.
IDLE = "trap 'exit 0' TERM; sleep 100000 & wait"
MiB = 1 << 20

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{tmp}/events.log"
"""

STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{tmp}/root"
runroot = "{tmp}/runroot"
"""


class Podman:
    def __init__(self, podman, runtime):
        self.tmp = tempfile.mkdtemp(prefix="cvpm", dir="/tmp")
        with open(os.path.join(self.tmp, "containers.conf"), "w") as f:
            f.write(CONTAINERS_CONF.format(tmp=self.tmp))
        with open(os.path.join(self.tmp, "storage.conf"), "w") as f:
            f.write(STORAGE_CONF.format(tmp=self.tmp))
        self.env = dict(os.environ,
                        CONTAINERS_CONF=os.path.join(self.tmp, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(self.tmp, "storage.conf"))
        self.base = [podman,
                     "--root", os.path.join(self.tmp, "root"),
                     "--runroot", os.path.join(self.tmp, "runroot"),
                     "--tmpdir", os.path.join(self.tmp, "libpod"),
                     "--storage-driver", "vfs",
                     "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file",
                     "--network-config-dir", os.path.join(self.tmp, "net"),
                     "--runtime", runtime]

    def __call__(self, *args, check=True, timeout=engines.ENGINE_TIMEOUT):
        return run(self.base + list(args), check=check, env=self.env, timeout=timeout)

    def import_rootfs(self, rootfs, tag, changes=()):
        """`tar -C rootfs -c . | podman import [--change C]... - tag`."""
        argv = self.base + ["import"]
        for c in changes:
            argv += ["--change", c]
        argv += ["-", tag]
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        try:
            p = subprocess.run(argv, stdin=tar.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=self.env,
                               timeout=engines.ENGINE_TIMEOUT)
        finally:
            tar.stdout.close()
            tar.wait(timeout=engines.ENGINE_TIMEOUT)
        assert p.returncode == 0 and tar.returncode == 0, \
            f"podman import of {rootfs} failed: {p.stderr}"

    def close(self):
        self("pod", "rm", "--all", "--force", "--time", "0", check=False)
        self("rm", "--all", "--force", "--time", "0", check=False)
        engines.umount_under(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def podman(cvisor, fixture_bundle):
    pm = Podman(engines.need_binary("podman"), cvisor)
    try:
        rootfs = os.path.join(fixture_bundle, "rootfs")
        pm.import_rootfs(rootfs, IMAGE)
        # The pod's infra container: the same rootfs whose CMD stays up.
        pm.import_rootfs(rootfs, INFRA_IMAGE, changes=['CMD ["sleep", "2147483647"]'])
        yield pm
    finally:
        pm.close()


class Names:
    """Unique container/pod names for one test, force-removed at its end."""

    def __init__(self, pm):
        self.pm = pm
        self.containers = []
        self.pods = []

    def container(self):
        n = engines.unique("cvt")
        self.containers.append(n)
        return n

    def pod(self):
        n = engines.unique("cvpod")
        self.pods.append(n)
        return n

    def close(self):
        for n in reversed(self.containers):
            self.pm("rm", "--force", "--time", "0", n, check=False)
        for n in self.pods:
            self.pm("pod", "rm", "--force", "--time", "0", n, check=False)


@pytest.fixture
def names(podman):
    n = Names(podman)
    yield n
    n.close()


def start_idle(pm, names, *opts, script=IDLE):
    """`podman run -d` of a long-running container; returns (name, marker,
    host pid of its init as found on the host)."""
    name = names.container()
    marker = engines.unique("mark")
    run_opts = list(opts)
    if not any(o.startswith("--network") or o == "--pod" for o in run_opts):
        run_opts = ["--network", "none"] + run_opts
    pm("run", "-d", "--name", name, *run_opts, IMAGE, "sh", "-c", script, marker)
    return name, marker, engines.find_init(marker)


def inspect(pm, name, fmt):
    return pm("inspect", "--format", fmt, name).stdout.strip()


NS = ("mnt", "pid", "net", "uts", "ipc")


# --------------------------------------------------------------------------


def test_run_rm_output(podman, names):
    name = names.container()
    p = podman("run", "--rm", "--name", name, "--network", "none", IMAGE,
               "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (p.returncode, p.stdout) == (3, "out\n"), p
    assert "err" in p.stderr, p.stderr
    assert podman("container", "exists", name, check=False).returncode == 1, \
        "--rm left the container behind"


def test_exec_output_and_namespaces(podman, names):
    name, _, init = start_idle(podman, names, "--hostname", "exechost")
    script = "echo exec-out; hostname; " + "; ".join(f"readlink /proc/self/ns/{n}" for n in NS)
    p = podman("exec", name, "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert lines[:2] == ["exec-out", "exechost"], p.stdout
    inside = dict(zip(NS, lines[2:]))
    expected = {n: engines.ns_inode(init, n) for n in NS}
    assert inside == expected, f"exec'd process is not in the container's namespaces: " \
                               f"exec sees {inside}, the container init {init} has {expected}"


def test_top_lists_only_container_processes(podman, names):
    name, marker, init = start_idle(podman, names)
    p = podman("top", name, "pid", "ppid", "args")
    rows = [line.split(None, 2) for line in p.stdout.splitlines()[1:] if line.strip()]
    listed = {int(r[0]): r[2] if len(r) > 2 else "" for r in rows}
    # The container's processes as pids of its own namespace.
    expected = {engines.nspid(h)[-1] for h in engines.pids_in_pidns(init)}
    shown = "\n".join(p.stdout.splitlines()[:8])
    assert set(listed) == expected, \
        f"podman top should list the container's processes (pids {sorted(expected)}), " \
        f"it lists {len(listed)}, starting with:\n{shown}"
    assert marker in listed[1], f"pid 1 should be the container's command:\n{p.stdout}"


def test_cp_into_and_out_of_running_container(podman, names, tmp_path):
    hostname = engines.unique("cphost")
    cdir = "/" + engines.unique("cvcp")  # exists only inside the container
    script = f"mkdir {cdir} && echo made-inside > {cdir}/made && echo ready && {IDLE}"
    name, _, init = start_idle(podman, names, "--hostname", hostname, script=script)
    src = tmp_path / "in.txt"
    src.write_text("copied-in\n")
    try:
        engines.wait_until(lambda: "ready" in podman("logs", name).stdout,
                           what=f"the container to create {cdir}/made")
        cp_in = podman("cp", str(src), f"{name}:{cdir}/in.txt", check=False)
        assert not os.path.exists(cdir), \
            f"podman cp wrote into the HOST's {cdir}, not the container's filesystem"
        assert cp_in.returncode == 0, f"podman cp into the container failed: {cp_in.stderr}"
        assert podman("exec", name, "cat", f"{cdir}/in.txt").stdout == "copied-in\n"

        out = tmp_path / "made"
        podman("cp", f"{name}:{cdir}/made", str(out))
        assert out.read_text() == "made-inside\n"
        out = tmp_path / "hostname"
        podman("cp", f"{name}:/etc/hostname", str(out))
        assert out.read_text().strip() == hostname, \
            f"podman cp read /etc/hostname {out.read_text()!r}: the host's, not the " \
            f"container's ({hostname!r})"
    finally:
        # The path is unique to this test: if the copy landed on the host, remove it.
        shutil.rmtree(cdir, ignore_errors=True)


def test_inspect_pid_is_container_init(podman, names):
    name, marker, init = start_idle(podman, names)
    pid = int(inspect(podman, name, "{{.State.Pid}}"))
    assert engines.comm(pid) == "sh", \
        f"State.Pid {pid} is {engines.comm(pid)!r} {engines.cmdline(pid)}, not the container's sh"
    assert engines.root_differs_from_host(pid), f"/proc/{pid}/root is the host's root"
    assert pid == init, f"State.Pid {pid}, the container init is {init}"


_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _bytes(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", text)
    assert m and m.group(2) in _UNITS, f"unparsable size {text!r}"
    return float(m.group(1)) * _UNITS[m.group(2)]


def test_stats_reports_container_cgroup(podman, names):
    fill = 32
    script = f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={fill} 2>/dev/null; {IDLE}"
    name, _, init = start_idle(podman, names, script=script)
    # tmpfs pages are charged to the writer's memory cgroup: the container's.
    engines.wait_until(lambda: engines.memory_usage(init)[0] >= fill * MiB,
                       what=f"the container's memory cgroup to hold the {fill} MiB it wrote")
    p = podman("stats", "--no-stream", "--format", "json", name)
    st = json.loads(p.stdout)[0]
    used = _bytes(st["mem_usage"].split("/")[0])
    cg_bytes, cg_path = engines.memory_usage(init)
    assert used >= fill * MiB, \
        f"podman stats shows {st['mem_usage']} for a container holding {fill} MiB " \
        f"({cg_path} has {cg_bytes} bytes)"
    assert used <= cg_bytes + 16 * MiB, \
        f"podman stats shows {st['mem_usage']}, the container's cgroup {cg_path} {cg_bytes} bytes"
    n = len(engines.pids_in_pidns(init))
    assert int(st["pids"]) == n, f"podman stats PIDS {st['pids']}, the container has {n}"


def test_pause_unpause(podman, names):
    name, _, init = start_idle(podman, names)
    podman("pause", name)
    try:
        assert inspect(podman, name, "{{.State.Status}}") == "paused"
        assert engines.frozen(init), f"paused, but the container init {init} is not frozen"
    finally:
        podman("unpause", name, check=False)
    assert inspect(podman, name, "{{.State.Status}}") == "running"
    assert not engines.frozen(init), f"unpaused, but the container init {init} is still frozen"


def test_stop_and_rm(podman, names):
    name, _, init = start_idle(podman, names)
    procs = engines.pids_in_pidns(init)
    podman("stop", "--time", "10", name)
    assert inspect(podman, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    left = [p for p in procs if engines.alive(p)]
    assert not left, f"container processes {left} outlived podman stop"
    podman("rm", name)
    assert podman("container", "exists", name, check=False).returncode == 1


def test_tty(podman, names):
    p = podman("run", "--rm", "-t", "--name", names.container(), "--network", "none",
               IMAGE, "tty", check=False)
    assert (p.returncode, p.stdout.strip()) == (0, "/dev/pts/0"), p


def test_network_container_shares_netns(podman, names):
    x, _, init = start_idle(podman, names)
    p = podman("run", "--rm", "--name", names.container(), "--network", f"container:{x}",
               IMAGE, "readlink", "/proc/self/ns/net")
    inside = p.stdout.strip()
    assert inside != engines.host_ns("net"), \
        f"--network container:{x} put the container in the HOST's network namespace"
    assert inside == engines.ns_inode(init, "net"), \
        f"net namespace {inside}, container {x}'s is {engines.ns_inode(init, 'net')}"


def test_pod_shares_net_ipc_uts(podman, names):
    pod = names.pod()
    podman("pod", "create", "--name", pod, "--network", "none", "--share", "net,ipc,uts",
           "--infra-image", INFRA_IMAGE)
    names.containers.append(f"{pod}-infra")
    _, _, a = start_idle(podman, names, "--pod", pod)
    shared = ("net", "ipc", "uts")
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in shared) + "; hostname"
    p = podman("run", "--rm", "--pod", pod, "--name", names.container(), IMAGE, "sh", "-c", script)
    lines = p.stdout.splitlines()
    b = dict(zip(shared, lines))
    host = {n: engines.host_ns(n) for n in shared}
    in_a = {n: engines.ns_inode(a, n) for n in shared}
    assert all(b[n] != host[n] for n in shared) and all(in_a[n] != host[n] for n in shared), \
        f"pod members share the HOST's namespaces: host {host}, member a {in_a}, member b {b}"
    assert b == in_a, f"pod members do not share net/ipc/uts: a {in_a}, b {b}"
    assert lines[3:] == [pod], f"hostname in the pod is {lines[3:]}, not the pod's name {pod}"


def test_cgroupns_private_v2_root(podman, names):
    p = podman("run", "--rm", "--name", names.container(), "--network", "none",
               "--cgroupns=private", IMAGE, "cat", "/proc/self/cgroup")
    assert "0::/" in p.stdout.splitlines(), p.stdout


def test_cgroupns_private_every_hierarchy_at_root(podman, names):
    p = podman("run", "--rm", "--name", names.container(), "--network", "none",
               "--cgroupns=private", IMAGE, "cat", "/proc/self/cgroup")
    # With a private cgroup namespace the container's own cgroup is the
    # namespace root in every hierarchy (v1 controllers too, as runc shows).
    bad = [line for line in p.stdout.splitlines() if line.split(":", 2)[2] != "/"]
    assert not bad, f"hierarchies not at the cgroup namespace root:\n{p.stdout}"

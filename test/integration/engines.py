"""Shared helpers for the engine tests (test_podman.py, test_containerd.py).

These tests drive cvisor the way users do, through podman and containerd, and
check what the user sees against what runc gives. Facts about a container are
established from the host side, independently of what the runtime reports:
the container's init is found by a unique marker in its argv and by being pid
1 of its own pid namespace, and everything else (its processes, namespaces,
cgroups, frozen state) is read from /proc and /sys for that pid. Only /proc
entries are read, never files inside the container's root.
"""
import os
import secrets
import shutil
import signal
import subprocess
import time

import pytest

import helpers

# Every engine command is bounded: a hang fails the test instead of hanging CI.
ENGINE_TIMEOUT = 60.0
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unique(prefix):
    return f"{prefix}-{secrets.token_hex(4)}"


def need_binary(name):
    """Absolute path of `name`, or skips the calling test/module saying why."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (make deps installs it)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


def run(argv, timeout=ENGINE_TIMEOUT, check=True, env=None, stdin=subprocess.DEVNULL):
    """Runs a command, returns CompletedProcess (text); with check, a failure
    names the command, its exit code and both streams."""
    p = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {p.returncode}\n"
                             f"stdout: {p.stdout!r}\nstderr: {p.stderr!r}")
    return p


def wait_until(pred, timeout=15.0, step=0.05, what="condition"):
    """helpers.wait_until with the engines' longer default."""
    return helpers.wait_until(pred, timeout=timeout, step=step, what=what)


# --------------------------------------------------------------------------
# Facts about host processes, from /proc


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def cmdline(pid):
    raw = _read(f"/proc/{pid}/cmdline")
    return [] if raw is None else raw.decode(errors="replace").split("\0")[:-1]


def comm(pid):
    raw = _read(f"/proc/{pid}/comm")
    return None if raw is None else raw.decode(errors="replace").strip()


def nspid(pid):
    raw = _read(f"/proc/{pid}/status")
    for line in (raw or b"").decode().splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def alive(pid):
    raw = _read(f"/proc/{pid}/stat")
    return raw is not None and raw.rsplit(b")", 1)[1].split()[0] != b"Z"


def ns_inode(pid, ns):
    """'net:[4026531833]' style link of /proc/<pid>/ns/<ns>, None if gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{ns}")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        # PermissionError: a host process we may not inspect is not ours.
        return None


def host_ns(ns):
    return ns_inode(os.getpid(), ns)


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def find_init(marker, timeout=15.0):
    """Host pid of the container init whose argv contains `marker` and which
    is pid 1 of its own (nested) pid namespace."""
    def look():
        for pid in all_pids():
            if marker in cmdline(pid):
                ns = nspid(pid)
                if len(ns) > 1 and ns[-1] == 1:
                    return pid
        return None
    return wait_until(look, timeout=timeout, what=f"a container init with {marker!r} in argv")


def pids_in_pidns(init_pid):
    """Host pids of every live process in the pid namespace of `init_pid`."""
    want = ns_inode(init_pid, "pid")
    assert want, f"container init {init_pid} is gone"
    return sorted(p for p in all_pids() if ns_inode(p, "pid") == want and alive(p))


def root_differs_from_host(pid):
    """True when /proc/<pid>/root is not the host's root directory."""
    a = os.stat(f"/proc/{pid}/root/")
    b = os.stat("/")
    return (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)


# --------------------------------------------------------------------------
# cgroups (v1 controllers and the v2 hierarchy of a hybrid host, or pure v2)


def cgroups_of(pid):
    """{controller: path} from /proc/<pid>/cgroup; the v2 entry is ''."""
    assert _read(f"/proc/{pid}/cgroup") is not None, f"process {pid} is gone"
    return helpers.cgroups_of(pid)


def memory_usage(pid):
    """Bytes charged to the memory cgroup of `pid` (v1 usage_in_bytes, or v2
    memory.current), with the cgroup's path for messages. The hierarchies
    come from the mount table, the node from /proc/<pid>/cgroup."""
    text, path = helpers.read_cgroup_file(pid, "memory", "memory.usage_in_bytes", "memory.current")
    return int(text), os.path.dirname(path)


def frozen(pid):
    """True when the cgroup of `pid` is frozen, by the v1 freezer or by the
    v2 cgroup.freeze (a runtime may use either on a hybrid host)."""
    v1 = helpers.cgroup_dir(pid, "freezer") if helpers.cgroup_v1_mount("freezer") else None
    if v1:
        raw = _read(os.path.join(v1, "freezer.state"))
        if raw is not None and raw.strip() == b"FROZEN":
            return True
    v2 = helpers.cgroup_dir(pid)
    if v2:
        raw = _read(os.path.join(v2, "cgroup.events"))
        if raw is not None and b"frozen 1" in raw.split(b"\n"):
            return True
    return False


# --------------------------------------------------------------------------
# Clean-up of what a test run left behind


def umount_under(top):
    """Lazily unmounts every mount point under `top` (deepest first)."""
    top = os.path.realpath(top)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == top or mp.startswith(top + "/"):
                points.append(mp)
    for mp in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=15)


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pids_with_arg(arg):
    """Pids whose argv contains `arg` exactly (our unique socket paths)."""
    return [p for p in all_pids() if p != os.getpid() and arg in cmdline(p)]


def copy_rootfs(src, dest):
    """A private copy of the busybox rootfs (symlinks kept), so a container
    writing to its root never touches the shared fixture."""
    shutil.copytree(src, dest, symlinks=True)
    return dest

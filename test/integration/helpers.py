"""Shared helpers for the cvisor integration tests.

The tests drive a real `cvisor` binary (CVISOR_BIN) on the busybox bundle
(CVISOR_BUNDLE). Everything is time-bound: a hang must fail a test, never
hang CI.
"""
import contextlib
import copy
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref


import msgpack

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "rpc", "python"))

TIMEOUT = 10.0  # seconds, for every socket operation
CLI_TIMEOUT = 30.0  # seconds, for every CLI invocation
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The v1 controllers whose nodes every container gets when they are bound
# to a v1 hierarchy (kernel/cgroup.c's always_v1; cpuset only on demand).
CGROUP_V1_CTRLS = ("memory", "pids", "cpu", "cpuacct", "freezer")

M_STATE = "containerManager.ContainerRuntimeState"
M_START = "containerManager.StartRoot"
M_EXEC = "containerManager.ExecuteAsync"
M_WAIT = "containerManager.Wait"
M_WAITPID = "containerManager.WaitPID"
M_SIGNAL = "containerManager.Signal"
M_PROCS = "containerManager.Processes"


def client_module():
    import cvisor_client  # rpc/python, written by the RPC owner

    return cvisor_client


# Container inits are spawned with CLONE_PARENT: they are children of the
# `cvisor create` CLI and, once it exits, of its subreaper, as with runc
# under conmon or the containerd shim. The test process plays the engine:
# it is the subreaper and promptly reaps the processes it adopts (PID 1 of
# this machine does not reap orphans; and a pid namespace's init cannot
# finish exiting while a zombie of its namespace waits to be reaped).
# Children that subprocess.Popen started are left to Popen: the lock keeps
# the reaper from seeing one before it is registered.
_PR_SET_CHILD_SUBREAPER = 36
_popens = weakref.WeakSet()
_reaper_lock = threading.RLock()
_popen_init = subprocess.Popen.__init__


def _tracked_popen_init(self, *a, **kw):
    with _reaper_lock:
        _popen_init(self, *a, **kw)
        _popens.add(self)


def _reap_adopted_locked():
    mine = os.getpid()
    owned = {p.pid for p in list(_popens) if p.returncode is None}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in owned:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == b"Z" and int(fields[1]) == mine:
            try:
                os.waitpid(int(name), os.WNOHANG)
            except ChildProcessError:
                pass


def reap_adopted():
    """Reaps zombie children that no subprocess.Popen owns (adopted inits)."""
    with _reaper_lock:
        _reap_adopted_locked()


@contextlib.contextmanager
def reaper_paused():
    """Adopted processes stay zombies inside this block (an engine that has
    not reaped yet)."""
    with _reaper_lock:
        yield


def _reaper():
    while True:
        time.sleep(0.05)
        try:
            reap_adopted()
        except Exception:  # never let the reaper die with a test's error
            pass


def start_reaper():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    subprocess.Popen.__init__ = _tracked_popen_init
    threading.Thread(target=_reaper, name="reaper", daemon=True).start()


def new_id():
    return "tst-" + secrets.token_hex(4)


def wait_until(pred, timeout=TIMEOUT, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def pid_alive(pid):
    """True while /proc/<pid> exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def catches(pid, sig):
    """True once the process has a handler for sig (SigCgt)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    return False


def settled_fd_count(pid, samples=3, step=0.1, timeout=10):
    """The fd count of pid once it has not changed for `samples` readings."""
    deadline = time.monotonic() + timeout
    last, same = None, 0
    while time.monotonic() < deadline:
        n = fd_count(pid)
        same = same + 1 if n == last else 1
        last = n
        if same >= samples:
            return n
        time.sleep(step)
    raise AssertionError(f"fd count of {pid} did not settle")


def connect_retry(path, timeout=TIMEOUT):
    """A connected socket; a full listen backlog (AF_UNIX answers EAGAIN on a
    socket with a timeout instead of waiting) is waited out, not an error:
    boot accepts at its own pace."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def nspid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return []


# --------------------------------------------------------------------------
# cgroups, found from the mount table and /proc/<pid>/cgroup (a hybrid host
# mounts v2 at /sys/fs/cgroup/unified and v1 controllers beside it; a pure
# v2 host mounts v2 at /sys/fs/cgroup; nothing here assumes either).


class CgroupMount:
    def __init__(self, mnt, root, ctrls, name):
        self.mnt = mnt      # mount point
        self.root = root    # the hierarchy's path mounted there ("/" normally)
        self.ctrls = ctrls  # v1: frozenset of controllers; v2: None
        self.name = name    # v1 named hierarchy ("systemd") or None

    @property
    def v2(self):
        return self.ctrls is None

    def dir_of(self, path):
        """Host directory of the hierarchy path `path` ("/cvisor/x"), or None
        when this mount does not show it."""
        root = self.root.rstrip("/")
        if root and path != root and not path.startswith(root + "/"):
            return None
        rel = path[len(root):].lstrip("/")
        return os.path.join(self.mnt, rel) if rel else self.mnt


def _unescape_mountinfo(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def cgroup_mounts():
    """Every cgroup (v1) and cgroup2 mount of /proc/self/mountinfo, one per
    hierarchy (the first mount of each)."""
    mounts, seen = [], set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields, tail = pre.split(), post.split()
            if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
                continue
            root, mnt = _unescape_mountinfo(fields[3]), _unescape_mountinfo(fields[4])
            if tail[0] == "cgroup2":
                key, ctrls, name = "v2", None, None
            else:
                opts = tail[2].split(",")
                name = next((o[5:] for o in opts if o.startswith("name=")), None)
                ctrls = frozenset(o for o in opts if o in KNOWN_V1_CTRLS)
                if not ctrls and not name:
                    continue
                key = (ctrls, name)
            if key in seen:
                continue
            seen.add(key)
            mounts.append(CgroupMount(mnt, root, ctrls, name))
    return mounts


KNOWN_V1_CTRLS = frozenset(("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
                            "blkio", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"))


def cgroup_v2_mount():
    """Where the unified hierarchy is mounted, or None."""
    return next((m.mnt for m in cgroup_mounts() if m.v2), None)


def cgroup_v1_mount(ctrl):
    """The mount of the v1 hierarchy carrying `ctrl`, or None."""
    return next((m for m in cgroup_mounts() if not m.v2 and ctrl in m.ctrls), None)


def cgroup_layout():
    """"hybrid" (v2 plus v1 controllers), "v2" (unified only) or "v1"."""
    ms = cgroup_mounts()
    v2 = any(m.v2 for m in ms)
    v1 = any(not m.v2 and m.ctrls for m in ms)
    return "hybrid" if v2 and v1 else "v2" if v2 else "v1"


def need_cgroup_layout(*layouts):
    """Skips the calling test (visibly, with the reason) unless the host's
    cgroup layout is one of `layouts`."""
    import pytest

    got = cgroup_layout()
    if got not in layouts:
        pytest.skip(f"only meaningful on a {' or '.join(layouts)} cgroup host; this one is {got}")


def cgroups_of(pid):
    """{key: hierarchy path} from /proc/<pid>/cgroup: one key per v1
    controller or "name=x" hierarchy, and "" for the unified one."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(","):
                out[c] = path
    return out


def cgroup_dir(pid, ctrl=""):
    """Host directory of the cgroup of `pid` that holds controller `ctrl`:
    its v1 node when a v1 hierarchy carries `ctrl`, else its unified node if
    the unified hierarchy offers `ctrl` (ctrl "" is the unified node
    itself). None when no hierarchy has it."""
    cg = cgroups_of(pid)
    ms = cgroup_mounts()
    if ctrl:
        for m in ms:
            if not m.v2 and ctrl in m.ctrls:
                return m.dir_of(cg[ctrl]) if ctrl in cg else None
    for m in ms:
        if m.v2 and "" in cg:
            if ctrl and ctrl not in _v2_controllers(m.mnt):
                return None
            return m.dir_of(cg[""])
    return None


def _v2_controllers(mnt):
    try:
        with open(os.path.join(mnt, "cgroup.controllers")) as f:
            return f.read().split()
    except OSError:
        return []


def cgroup_dirs(pid):
    """Host directories of every cgroup of `pid`, one per mounted hierarchy
    (its nodes in v1 controllers cvisor does not manage are the parent's)."""
    cg = cgroups_of(pid)
    out = []
    for m in cgroup_mounts():
        key = "" if m.v2 else (f"name={m.name}" if m.name else next(iter(m.ctrls)))
        if key in cg:
            d = m.dir_of(cg[key])
            if d:
                out.append(d)
    return out


def read_cgroup_file(pid, ctrl, v1_file, v2_file):
    """(value text, path) of a controller file of pid's cgroup: `v1_file`
    when the controller is bound to v1, `v2_file` on the unified node."""
    d = cgroup_dir(pid, ctrl)
    assert d, f"no cgroup hierarchy carries the {ctrl} controller on this host"
    p = os.path.join(d, v1_file if cgroup_v1_mount(ctrl) else v2_file)
    with open(p) as f:
        return f.read().strip(), p


def cgroup_freezer_file(pid):
    """(path, is_v2) of the file saying whether pid's cgroup is frozen, the
    one cvisor's freezer uses: the unified node's cgroup.events when the
    unified hierarchy is mounted, else the v1 freezer's freezer.state."""
    d = cgroup_dir(pid)
    if d:
        return os.path.join(d, "cgroup.events"), True
    d = cgroup_dir(pid, "freezer")
    assert d, "no cgroup freezer on this host (neither cgroup2 nor a v1 freezer)"
    return os.path.join(d, "freezer.state"), False


def cgroup_frozen(pid):
    """True when pid's cgroup is frozen (see cgroup_freezer_file)."""
    path, v2 = cgroup_freezer_file(pid)
    with open(path) as f:
        text = f.read()
    return "frozen 1" in text.split("\n") if v2 else text.strip() == "FROZEN"


def default_cgroup(sid):
    """The hierarchy path ("/a/<sid>") of container `sid`'s cgroup when its
    spec has no linux.cgroupsPath: runc's default, the id as a relative
    path, under the parent of the caller's unified cgroup (under its memory
    cgroup where no unified hierarchy is mounted). The CLI runs in this
    process's cgroups, so this is where cvisor puts it."""
    return relative_cgroup(sid)


def relative_cgroup(rel):
    """Where cvisor (as runc) puts a relative linux.cgroupsPath `rel`."""
    cg = cgroups_of(os.getpid())
    if cgroup_v2_mount():
        parent = os.path.dirname(cg[""])
    else:
        parent = cg["memory"]
    return os.path.join(parent, rel)


def cgroup_paths(sid, rel=None):
    """Where container `sid`'s cgroup (hierarchy path `rel`, default
    default_cgroup(sid)) would be in every mounted hierarchy, v1 and v2:
    for checks that nothing is left behind."""
    rel = rel or default_cgroup(sid)
    return [d for d in (m.dir_of(rel) for m in cgroup_mounts()) if d]


def cgroup_procs_under(top):
    """Every pid in the v2 (or v1) node `top` and the nodes below it."""
    pids = []
    for d, _, _ in os.walk(top):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return pids


def status_of(code=0, sig=0):
    return (code << 8) | sig


# --------------------------------------------------------------------------
# A raw connection: our own framing, independent of the client under test,
# for hostile input and for the exact byte-level behaviour of the server.


class Closed(Exception):
    """The server closed the connection."""


class RawConn:
    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                         strict_map_key=False)
        self.msgid = 100

    def send(self, data, fds=()):
        fds = list(fds)
        if fds:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                    b"".join(int(fd).to_bytes(4, sys.byteorder, signed=True) for fd in fds))]
            n = self.sock.sendmsg([data], anc)
        else:
            n = 0
        if n < len(data):
            self.sock.sendall(data[n:])

    def request(self, method, arg=None, fds=()):
        self.msgid += 1
        self.send(msgpack.packb([0, self.msgid, method, [arg]], use_bin_type=True), fds)
        return self.msgid

    def recv(self):
        """Next message, or raises Closed on EOF/reset, socket.timeout on a hang."""
        while True:
            for msg in self.unpacker:
                return msg
            try:
                data = self.sock.recv(1 << 16)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(str(e)) from e
            if not data:
                raise Closed("EOF")
            self.unpacker.feed(data)

    def recv_reply(self, msgid):
        msg = self.recv()
        assert isinstance(msg, list) and len(msg) == 4 and msg[0] == 1, msg
        assert msg[1] == msgid, f"reply for msgid {msg[1]}, expected {msgid}: {msg}"
        return msg[2], msg[3]

    def call(self, method, arg=None, fds=()):
        err, res = self.recv_reply(self.request(method, arg, fds))
        if err is not None:
            raise RuntimeError(err)
        return res

    def expect_closed(self, timeout=TIMEOUT):
        """Drain until EOF; fails if the server keeps the connection open."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
        except (ConnectionResetError, BrokenPipeError):
            return

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------------
# CLI and sandboxes


class Cli:
    def __init__(self, binary, root):
        self.binary = binary
        self.root = root

    def argv(self, *args):
        return [self.binary, "--root", self.root, *map(str, args)]

    def run(self, *args, check=False, timeout=CLI_TIMEOUT, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.run(self.argv(*args), timeout=timeout, text=True, **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"cvisor {' '.join(map(str, args))} exited {p.returncode}: "
                                 f"stdout={p.stdout!r} stderr={p.stderr!r}")
        return p

    def detached(self, *args, check=True, timeout=CLI_TIMEOUT):
        """Runs a command whose children keep the stdio (create, run -d, exec -d):
        the output goes to a file so the call returns when the CLI does."""
        log = os.path.join(self.root, f".cli-{secrets.token_hex(3)}.log")
        with open(log, "w+") as f:
            p = subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                               timeout=timeout)
            f.seek(0)
            out = f.read()
        os.unlink(log)
        if check and p.returncode != 0:
            raise AssertionError(f"cvisor {' '.join(map(str, args))} exited {p.returncode}: {out}")
        return p.returncode, out


def fixture_config(bundle_dir):
    with open(os.path.join(bundle_dir, "config.json")) as f:
        return json.load(f)


def make_bundle(fixture_dir, dest, args=None, **overrides):
    """A bundle in `dest` sharing the fixture's rootfs (absolute root.path),
    with process.args replaced by `args` and top-level keys overridden
    (`process=` is merged into the process object instead)."""
    cfg = copy.deepcopy(fixture_config(fixture_dir))
    cfg.setdefault("root", {})["path"] = os.path.join(os.path.abspath(fixture_dir), "rootfs")
    if args is not None:
        cfg["process"]["args"] = list(args)
    for k, v in overrides.items():
        if k == "process":
            cfg["process"].update(v)
        else:
            cfg[k] = v
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    return dest


class Sandbox:
    def __init__(self, cli, bundle, sid=None):
        self.cli = cli
        self.root = cli.root
        self.bundle = bundle
        self.id = sid or new_id()
        self.dir = os.path.join(self.root, self.id)
        self.sock = os.path.join(self.dir, "control.sock")
        self.boot_pid = None
        self._init_host_pid = None
        self._clients = []

    # -- lifecycle through the CLI
    def create(self):
        pidfile = os.path.join(self.root, f".{self.id}.pid")
        self.cli.detached("create", "--bundle", self.bundle, "--pid-file", pidfile, self.id)
        # --pid-file names the container's init (the engine contract, as
        # runc); the boot process is recorded apart in state.json.
        with open(pidfile) as f:
            self._init_host_pid = int(f.read().strip())
        os.unlink(pidfile)
        with open(os.path.join(self.dir, "state.json")) as f:
            self.boot_pid = int(json.load(f)["bootPid"])
        return self

    def start(self):
        self.cli.run("start", self.id, check=True)
        return self

    def delete(self, force=True):
        args = ["delete"] + (["--force"] if force else []) + [self.id]
        return self.cli.run(*args)

    def state(self):
        p = self.cli.run("state", self.id, check=True)
        return json.loads(p.stdout)

    # -- RPC
    def client(self):
        c = client_module().Client(self.sock)
        for attr in ("sock", "_sock", "socket"):
            s = getattr(c, attr, None)
            if isinstance(s, socket.socket):
                s.settimeout(TIMEOUT)
        self._clients.append(c)
        return c

    def raw(self):
        return RawConn(self.sock)

    def call(self, method, arg=None, fds=()):
        with self.raw() as r:
            return r.call(method, arg, fds)

    def exec(self, argv, env=(), cwd="/", uid=0, gid=0, conn=None, stdin_fd=None):
        """ExecuteAsync with stdin /dev/null (or stdin_fd) and stdout+stderr a
        pipe. Returns (pid, reader file of the pipe)."""
        r, w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY) if stdin_fd is None else os.dup(stdin_fd)
        try:
            arg = exec_args(self.id, argv, env=env, cwd=cwd, uid=uid, gid=gid,
                            guest_fds=[0, 1, 2])
            own = conn is None
            conn = conn or self.raw()
            try:
                pid = conn.call(M_EXEC, arg, fds=[null, w, w])
            finally:
                if own:
                    conn.close()
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            os.close(null)
        return pid, os.fdopen(r, "rb")

    def run_exec(self, argv, **kw):
        """exec + WaitPID: returns (wait status, output bytes)."""
        with self.raw() as conn:
            pid, out = self.exec(argv, conn=conn, **kw)
            with out:
                status = conn.call(M_WAITPID, {"PID": pid, "CID": self.id})
                data = out.read()
        return status, data

    def init_host_pid(self):
        """The host PID of the root container's init, as --pid-file gave it."""
        return self._init_host_pid

    def cleanup(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        if os.path.exists(self.dir):
            try:
                self.delete(force=True)
            except subprocess.TimeoutExpired:
                pass
        # Last resort for a wedged sandbox: the boot we created, by its pid.
        for pid in (self.boot_pid, self._init_host_pid):
            if pid and pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def exec_args(cid, argv, env=(), cwd="/", uid=0, gid=0, guest_fds=(), files=None, **extra):
    arg = {
        "filename": "",
        "argv": list(argv),
        "envv": [PATH_ENV, *env],
        "wd": cwd,
        "KUID": uid,
        "KGID": gid,
        "ExtraKGIDs": [],
        "Capabilities": None,
        "StdioIsPty": False,
        "GuestFDs": list(guest_fds),
        "ContainerID": cid,
        "Files": len(guest_fds) if files is None else files,
    }
    arg.update(extra)
    return arg


def restore_detached(cli, img, bundle, rid=None):
    """`cvisor restore --detach` of the image directory img into a new
    sandbox (rid, or a fresh id): (rid, exit code, output)."""
    rid = rid or new_id()
    rc, out = cli.detached("restore", "--detach", "--image-path", img, "--bundle", bundle, rid,
                           check=False)
    return rid, rc, out

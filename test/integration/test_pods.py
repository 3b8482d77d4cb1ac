"""Pods: subcontainers in one sandbox (docs/API.md CreateSubcontainer,
StartSubcontainer, DestroySubcontainer; docs/DESIGN.md "Pods").

Through the RPC (the root fs donated as a detached mount, made here with
open_tree) and through the CLI with the CRI annotations."""
import ctypes
import json
import os
import signal
import socket
import subprocess
import time

import msgpack
import pytest

import helpers
from helpers import M_EXEC, M_PROCS, M_STATE, M_WAITPID, wait_until

M_CREATE = "containerManager.CreateSubcontainer"
M_SSTART = "containerManager.StartSubcontainer"
M_DESTROY = "containerManager.DestroySubcontainer"

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_open_tree = 428
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100


def open_tree(path):
    """A detached copy of the tree at path: what the CLI donates as the
    rootfs gofer FD."""
    fd = _libc.syscall(_SYS_open_tree, AT_FDCWD, path.encode(),
                       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


def sub_spec(env, args, **over):
    cfg = helpers.fixture_config(env.fixture)
    cfg["process"]["args"] = list(args)
    cfg["process"]["terminal"] = False
    for k, v in over.items():
        cfg[k] = v
    return cfg


def pod_id():
    return "pods" + helpers.new_id()[-10:]


def start_sub(sb, env, cid, args, medium=0, spec=None, hold=False, conn=None):
    """CreateSubcontainer + StartSubcontainer with stdio /dev/null (stdout a
    pipe) and the fixture's rootfs as a detached tree. Returns the read end
    of the output pipe."""
    spec = spec or sub_spec(env, args)
    tree = open_tree(os.path.join(env.fixture, "rootfs"))
    null = os.open("/dev/null", os.O_RDWR)
    r, w = os.pipe()
    try:
        own = conn is None
        conn = conn or sb.raw()
        try:
            conn.call(M_CREATE, {"CID": cid})
            res = conn.call(M_SSTART, {"Spec": spec, "Conf": {}, "CID": cid,
                                       "NumGoferFilestoreFDs": 0,
                                       "GoferMountConfs": [{"lower": 1, "upper": medium}],
                                       "Hold": hold, "Files": 4},
                            fds=[null, w, w, tree])
        finally:
            if own:
                conn.close()
    except BaseException:
        os.close(r)
        raise
    finally:
        for fd in (tree, null, w):
            os.close(fd)
    return os.fdopen(r, "rb"), res


def exec_in(sb, cid, argv):
    with sb.raw() as conn:
        r, w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY)
        try:
            arg = helpers.exec_args(cid, argv, guest_fds=[0, 1, 2])
            pid = conn.call(M_EXEC, arg, fds=[null, w, w])
        finally:
            os.close(w)
            os.close(null)
        with os.fdopen(r, "rb") as out:
            status = conn.call(M_WAITPID, {"PID": pid, "CID": cid})
            return pid, status, out.read()


def host_pids_of_cgroup_procs(sb, cid):
    procs = sb.call(M_PROCS, cid)
    return procs


@pytest.fixture
def pod(env):
    bundle = env.make_bundle(args=["sleep", "1000"])
    sb = env.new_sandbox(bundle, start=True)
    return sb


def test_sub_runs_in_its_own_pid_namespace(env, pod):
    cid = pod_id()
    out, _ = start_sub(pod, env, cid, ["sleep", "999"])
    out.close()
    assert pod.call(M_STATE, cid) == 2
    procs = pod.call(M_PROCS, cid)
    assert len(procs) == 1 and procs[0]["pid"] > 1, procs
    assert procs[0]["cmd"] == "sleep"
    # Processes("") lists both containers.
    allp = pod.call(M_PROCS, "")
    assert {p["pid"] for p in procs} < {p["pid"] for p in allp}
    assert len(allp) >= 2
    # An exec sees the sub's init as its pid 1, with the sub's command.
    pid, status, data = exec_in(pod, cid, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; "
                                                       "echo; echo $$"])
    assert status == 0, data
    lines = data.decode().split("\n")
    assert lines[0].strip() == "sleep 999"
    assert int(lines[1]) != pid and pid > 1
    # The root container's view is unchanged.
    _, _, data = exec_in(pod, pod.id, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"])
    assert data.decode().strip() == "sleep 1000"


def test_destroy_leaves_root_running(env, pod):
    cid = pod_id()
    out, _ = start_sub(pod, env, cid, ["sleep", "999"])
    out.close()
    procs = pod.call(M_PROCS, cid)
    assert procs
    pod.call(M_DESTROY, cid)
    assert pod.call(M_PROCS, cid) == []
    assert pod.call(M_STATE, cid) == 3
    assert pod.call(M_STATE, pod.id) == 2
    rest = pod.call(M_PROCS, "")
    assert [p["cmd"] for p in rest] == ["sleep"]
    assert {p["pid"] for p in rest}.isdisjoint({p["pid"] for p in procs})
    with pytest.raises(RuntimeError, match=f'container "{cid}" not found'):
        pod.call(M_DESTROY, cid)


def test_memory_overlay_writes_stay_out_of_the_bundle(env, pod):
    cid = pod_id()
    name = "pods-overlay-" + cid
    out, _ = start_sub(pod, env, cid, ["sh", "-c", f"echo hi > /{name}; echo done; "
                                                   "exec sleep 999"], medium=1)
    assert out.readline().strip() == b"done"
    _, status, data = exec_in(pod, cid, ["cat", "/" + name])
    out.close()
    assert status == 0 and data.strip() == b"hi"
    assert not os.path.exists(os.path.join(env.fixture, "rootfs", name))
    # The root container shares the bundle's rootfs: it does not see it either.
    _, status, _ = exec_in(pod, pod.id, ["test", "-e", "/" + name])
    assert status != 0
    pod.call(M_DESTROY, cid)


def test_readonly_root_is_erofs(env, pod):
    cid = pod_id()
    spec = sub_spec(env, ["sh", "-c", "touch /pods-ro 2>&1; sleep 999"])
    spec["root"]["readonly"] = True
    out, _ = start_sub(pod, env, cid, None, spec=spec)
    line = out.readline()
    out.close()
    assert b"Read-only file system" in line, line
    assert not os.path.exists(os.path.join(env.fixture, "rootfs", "pods-ro"))


def test_sub_init_is_boots_parents_child(env, pod):
    """The pid contract: the sub's init is not boot's child (CLONE_PARENT),
    its exit status still reaches Wait."""
    cid = pod_id()
    out, host_pid = start_sub(pod, env, cid, ["sh", "-c", "sleep 999"], hold=True)
    out.close()
    assert isinstance(host_pid, int) and host_pid > 1
    with open(f"/proc/{host_pid}/status") as f:
        st = f.read()
    ppid = int([l for l in st.splitlines() if l.startswith("PPid:")][0].split()[1])
    assert ppid != pod.boot_pid
    nspids = [l for l in st.splitlines() if l.startswith("NSpid:")][0].split()[1:]
    assert nspids[-1] == "1" and len(nspids) >= 3
    assert pod.call(M_STATE, cid) == 1  # held before execve
    pod.call("containerManager.ReleaseSubcontainer", cid)
    assert pod.call(M_STATE, cid) == 2
    pod.call("containerManager.Signal", {"CID": cid, "Signo": 9, "PID": 0, "Mode": 0})
    status = pod.call(helpers.M_WAIT, cid)
    assert status == 9
    assert pod.call(M_STATE, cid) == 3
    pod.call(M_DESTROY, cid)


def _start_err(pod, arg, fds):
    with pod.raw() as conn:
        err, _ = conn.recv_reply(conn.request(M_SSTART, arg, fds))
        # The connection and the sandbox carry on.
        assert conn.call(M_STATE, pod.id) == 2
    return err


def test_validation_errors(env, pod):
    cid = pod_id()
    spec = sub_spec(env, ["true"])
    null = os.open("/dev/null", os.O_RDWR)
    try:
        base = {"Spec": spec, "Conf": {}, "CID": cid, "NumGoferFilestoreFDs": 0}
        assert _start_err(pod, {**base, "Spec": None}, []) == "start arguments missing spec"
        assert _start_err(pod, {**base, "Conf": None}, []) == "start arguments missing config"
        assert _start_err(pod, {**base, "CID": ""}, []) == "start argument missing container ID"
        assert _start_err(pod, base, []) == \
            "start arguments must contain at least 4 FDs, but only got 0"
        assert _start_err(pod, {**base, "NumGoferFilestoreFDs": 2, "Files": 4},
                          [null] * 4) == \
            "start arguments must contain at least 6 FDs, but only got 4"
        tspec = sub_spec(env, ["true"])
        tspec["process"]["terminal"] = True
        assert _start_err(pod, {**base, "Spec": tspec}, []) == \
            "start arguments must contain at least 1 FDs, but only got 0"
        assert _start_err(pod, {**base, "Files": 4}, [null] * 4) == \
            f'trying to start a deleted container "{cid}"'
        assert "GoferMountConfs[0].upper" in _start_err(
            pod, {**base, "GoferMountConfs": [{"upper": 9}], "Files": 4}, [null] * 4)
        assert "StartArgs.CID" in _start_err(pod, {**base, "CID": 5}, [])
        # CreateSubcontainer
        pod.call(M_CREATE, {"CID": cid})
        assert pod.call(M_STATE, cid) == 1
        with pytest.raises(RuntimeError, match=f'^container "{cid}" already exists$'):
            pod.call(M_CREATE, {"CID": cid})
        with pytest.raises(RuntimeError, match="^start arguments must have at most 1 files for TTY$"):
            pod.call(M_CREATE, {"CID": cid + "x", "Files": 2}, fds=[null, null])
        with pytest.raises(RuntimeError, match=f'container "{pod.id}" has already been started'):
            pod.call(M_SSTART, {**base, "CID": pod.id, "Files": 4}, fds=[null] * 4)
        assert _start_err(pod, {**base, "Spec": tspec, "Files": 1}, [null]) == \
            "terminal enabled but no TTY provided. Did you set --console-socket on create?"
        # A failed start leaves the sub Stopped.
        assert pod.call(M_STATE, cid) == 3
        # A rootfs FD that is not a detached tree fails the start, named.
        cid2 = pod_id()
        pod.call(M_CREATE, {"CID": cid2})
        d = os.open(os.path.join(env.fixture, "rootfs"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            err = _start_err(pod, {**base, "CID": cid2, "Files": 4}, [null, null, null, d])
        finally:
            os.close(d)
        assert "detached mount" in err, err
        assert pod.call(M_STATE, cid2) == 3
        # DestroySubcontainer
        with pytest.raises(RuntimeError, match='^container "pods-nope" not found$'):
            pod.call(M_DESTROY, "pods-nope")
        with pytest.raises(RuntimeError, match="is the root container"):
            pod.call(M_DESTROY, pod.id)
        with pytest.raises(RuntimeError, match="cid"):
            pod.call(M_DESTROY, 7)
        # A sub in another container's cgroup would take it along when destroyed.
        cid3 = pod_id()
        pod.call(M_CREATE, {"CID": cid3})
        with open(os.path.join(pod.dir, "state.json")) as f:
            root_cg = json.load(f)["cgroupPath"]
        same = sub_spec(env, ["true"])
        same["cvisor.cgroupPath"] = root_cg
        tree = open_tree(os.path.join(env.fixture, "rootfs"))
        try:
            err = _start_err(pod, {**base, "Spec": same, "CID": cid3, "Files": 4},
                             [null, null, null, tree])
        finally:
            os.close(tree)
        assert err == (f'StartArgs.Spec.linux.cgroupsPath: "{root_cg}" is the cgroup of '
                       f'container "{pod.id}"'), err
        pod.call(M_DESTROY, cid3)
        pod.call(M_DESTROY, cid)
        pod.call(M_DESTROY, cid2)
    finally:
        os.close(null)


def test_not_started_sandbox_refuses(env):
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]))
    spec = sub_spec(env, ["true"])
    err = _start_err_created(sb, {"Spec": spec, "Conf": {}, "CID": "podsx"})
    assert err == "sandbox is not in started state, cannot start subcontainer: state=created"


def _start_err_created(sb, arg):
    with sb.raw() as conn:
        err, _ = conn.recv_reply(conn.request(M_SSTART, arg))
    return err


# --------------------------------------------------------------------------
# Through the CLI, with the CRI annotations


def cri_bundle(env, args, sandbox_id=None):
    ann = {"io.kubernetes.cri.container-type": "container" if sandbox_id else "sandbox"}
    if sandbox_id:
        ann["io.kubernetes.cri.sandbox-id"] = sandbox_id
    return env.make_bundle(args=args, annotations=ann)


def cli_create(env, cid, bundle):
    pidfile = os.path.join(env.root, f".{cid}.pid")
    env.cli.detached("create", "--bundle", bundle, "--pid-file", pidfile, cid)
    with open(pidfile) as f:
        pid = int(f.read())
    os.unlink(pidfile)
    return pid


def test_cli_pod(env):
    root = env.new_sandbox(cri_bundle(env, ["sleep", "1000"]), start=True)
    # The root container's root came as a detached mount from create too.
    with open(f"/proc/{root.boot_pid}/cmdline", "rb") as f:
        assert b"--root-fd" in f.read().split(b"\0")
    sub = pod_id()
    host = cli_create(env, sub, cri_bundle(env, ["sleep", "999"], root.id))
    st = json.loads(env.cli.run("state", sub, check=True).stdout)
    assert st["status"] == "created" and st["pid"] == host
    # No second sandbox: the sub's boot is the root's.
    with open(os.path.join(env.root, sub, "state.json")) as f:
        assert json.load(f)["bootPid"] == root.boot_pid
    assert not os.path.exists(f"/proc/{host}") or helpers.pid_alive(host)
    env.cli.run("start", sub, check=True)
    st = json.loads(env.cli.run("state", sub, check=True).stdout)
    assert st["status"] == "running" and st["pid"] == host
    with open(f"/proc/{host}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"999"]
    procs = root.call(M_PROCS, sub)
    assert [p["cmd"] for p in procs] == ["sleep"] and procs[0]["pid"] > 1
    p = env.cli.run("exec", sub, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '", check=True)
    assert p.stdout.strip() == "sleep 999"
    p = env.cli.run("ps", "--format", "json", sub, check=True)
    assert json.loads(p.stdout) == [host]
    # kill + wait on the sub leave the root running.
    env.cli.run("kill", sub, "KILL", check=True)
    p = env.cli.run("wait", sub, check=True)
    assert json.loads(p.stdout)["exitStatus"] == 137
    assert json.loads(env.cli.run("state", sub, check=True).stdout)["status"] == "stopped"
    assert json.loads(env.cli.run("state", root.id, check=True).stdout)["status"] == "running"
    env.cli.run("delete", sub, check=True)
    assert not os.path.exists(os.path.join(env.root, sub))
    assert root.call(M_STATE, root.id) == 2
    # A second sub, then deleting the root ends everything.
    sub2 = pod_id()
    host2 = cli_create(env, sub2, cri_bundle(env, ["sleep", "998"], root.id))
    env.cli.run("start", sub2, check=True)
    cg2 = helpers.cgroup_paths(sub2)
    assert any(os.path.isdir(d) for d in cg2)
    env.cli.run("delete", "--force", root.id, check=True)
    wait_until(lambda: not helpers.pid_alive(host2), what="sub init gone")
    assert not helpers.pid_alive(root.boot_pid)
    assert not os.path.exists(os.path.join(env.root, sub2))
    assert not any(os.path.isdir(d) for d in cg2 + helpers.cgroup_paths(root.id))
    with open("/proc/self/mountinfo") as f:
        assert sub2 not in f.read()


def test_cli_gofer_lifetime(env):
    """Each CLI subcontainer has its gofer (outside the sandbox, in the
    host's mount namespace); killing it kills that container only, and
    destroying the container ends the gofer."""
    root = env.new_sandbox(cri_bundle(env, ["sleep", "1000"]), start=True)
    subs = [pod_id(), pod_id()]
    hosts, gofers = {}, {}
    for s in subs:
        hosts[s] = cli_create(env, s, cri_bundle(env, ["sleep", "997"], root.id))
        env.cli.run("start", s, check=True)
        with open(os.path.join(env.root, s, "state.json")) as f:
            gofers[s] = json.load(f)["goferPid"]
        assert helpers.pid_alive(gofers[s])
        with open(f"/proc/{gofers[s]}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[1] == b"gofer"
        assert os.readlink(f"/proc/{gofers[s]}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    os.kill(gofers[subs[0]], signal.SIGKILL)
    wait_until(lambda: not helpers.pid_alive(hosts[subs[0]]), what="sub 0 killed")
    wait_until(lambda: root.call(M_STATE, subs[0]) == 3, what="sub 0 stopped")
    assert root.call(M_STATE, subs[1]) == 2 and root.call(M_STATE, root.id) == 2
    assert helpers.pid_alive(hosts[subs[1]])
    env.cli.run("delete", "--force", subs[1], check=True)
    wait_until(lambda: not helpers.pid_alive(gofers[subs[1]]), what="gofer 1 gone")
    assert not helpers.pid_alive(hosts[subs[1]])
    env.cli.run("delete", subs[0], check=True)
    assert root.call(M_PROCS, "") and root.call(M_STATE, root.id) == 2


def test_no_fd_leak_across_sub_cycles(env, pod):
    before = helpers.settled_fd_count(pod.boot_pid)
    for i in range(6):
        cid = pod_id()
        out, _ = start_sub(pod, env, cid, ["sleep", "999"], medium=i % 2)
        out.close()
        exec_in(pod, cid, ["true"])
        pod.call(M_DESTROY, cid)
        cid = pod_id()
        cli_create(env, cid, cri_bundle(env, ["sleep", "996"], pod.id))
        env.cli.run("start", cid, check=True)
        env.cli.run("delete", "--force", cid, check=True)
    # A failed start leaves nothing either.
    cid = pod_id()
    pod.call(M_CREATE, {"CID": cid})
    null = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(RuntimeError):
            pod.call(M_SSTART, {"Spec": sub_spec(env, ["true"]), "Conf": {}, "CID": cid,
                                "Files": 4}, fds=[null] * 4)
    finally:
        os.close(null)
    pod.call(M_DESTROY, cid)
    assert helpers.settled_fd_count(pod.boot_pid) == before
    assert [p["cmd"] for p in pod.call(M_PROCS, "")] == ["sleep"]


def test_cli_bind_mounts_come_from_the_gofer(env):
    """A bind mount of a pod container: its source resolved by the gofer on
    the host (a file and a directory, recursive or not), moved into place by
    the init; the options still apply (ro)."""
    root = env.new_sandbox(cri_bundle(env, ["sleep", "1000"]), start=True)
    src = os.path.join(env.root, ".pods-bind")
    os.makedirs(os.path.join(src, "d"), exist_ok=True)
    with open(os.path.join(src, "d", "f"), "w") as f:
        f.write("from-host\n")
    with open(os.path.join(src, "file"), "w") as f:
        f.write("a-file\n")
    sub = pod_id()
    b = cri_bundle(env, ["sleep", "995"], root.id)
    cfg = helpers.fixture_config(b)
    cfg["mounts"] = cfg.get("mounts", []) + [
        {"destination": "/mnt", "type": "bind", "source": os.path.join(src, "d"),
         "options": ["rbind", "ro"]},
        {"destination": "/etc/pods-file", "type": "none", "source": os.path.join(src, "file"),
         "options": ["bind"]},
    ]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    cli_create(env, sub, b)
    env.cli.run("start", sub, check=True)
    p = env.cli.run("exec", sub, "sh", "-c", "cat /mnt/f /etc/pods-file; touch /mnt/x 2>&1; "
                                             "grep -c ' /mnt ' /proc/self/mountinfo", check=False)
    out = p.stdout + p.stderr
    assert "from-host" in out and "a-file" in out, out
    assert "Read-only file system" in out, out
    assert not os.path.exists(os.path.join(src, "d", "x"))
    env.cli.run("delete", "--force", sub, check=True)


def test_cli_terminal_sub(env):
    """process.terminal in a pod container: the pty is made by create, its
    master sent to --console-socket and its replica given to
    CreateSubcontainer (runsc's way); it is the init's stdio and
    controlling terminal."""
    import test_tty
    root = env.new_sandbox(cri_bundle(env, ["sleep", "1000"]), start=True)
    sub = pod_id()
    b = cri_bundle(env, ["sh", "-c", "[ -t 0 ] && echo is-a-tty; read x; echo got-$x"],
                   root.id)
    cfg = helpers.fixture_config(b)
    cfg["process"]["terminal"] = True
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    rc, out = env.cli.detached("create", "--bundle", b, sub, check=False)
    assert rc != 0 and "--console-socket" in out, out
    listener, path = test_tty.listen_console(env.root)
    with listener:
        env.cli.detached("create", "--bundle", b, "--console-socket", path, sub)
        _, master = test_tty.recv_master(listener)
    try:
        env.cli.run("start", sub, check=True)
        out = test_tty.read_until(master, lambda o: b"is-a-tty" in o, "the tty check")
        os.write(master, b"pods\n")
        out += test_tty.read_until(master, lambda o: b"got-pods" in o, "the echo")
        assert b"got-pods" in out, out
        assert json.loads(env.cli.run("wait", sub, check=True).stdout)["exitStatus"] == 0
    finally:
        os.close(master)
    env.cli.run("delete", sub, check=True)


def _gofer_start(env, cid, gofer_end, conn):
    null = os.open("/dev/null", os.O_RDWR)
    try:
        return conn.request(M_SSTART, {"Spec": sub_spec(env, ["sleep", "994"]), "Conf": {},
                                       "CID": cid, "Files": 4},
                            fds=[null, null, null, gofer_end])
    finally:
        os.close(null)


def test_slow_gofer_never_blocks_the_reactor(env, pod):
    """A gofer connection that does not answer: the start waits, every other
    call is served meanwhile; its hang-up fails the start, naming why. A
    gofer that answers with an error fails the start with its text. A gofer
    that answers, then hangs up, kills that container only."""
    cid = pod_id()
    pod.call(M_CREATE, {"CID": cid})
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with pod.raw() as conn:
        msgid = _gofer_start(env, cid, theirs.fileno(), conn)
        theirs.close()
        req = msgpack.unpackb(ours.recv(4096), raw=False)
        assert req[0] == 0 and req[2] == "Gofer.RootTree", req
        t0 = time.monotonic()
        for _ in range(20):
            assert pod.call(M_STATE, pod.id) == 2
        assert time.monotonic() - t0 < 2
        ours.close()
        err, _ = conn.recv_reply(msgid)
    assert err == f'starting container "{cid}": the container\'s gofer hung up before answering', err
    assert pod.call(M_STATE, cid) == 3

    cid = pod_id()
    pod.call(M_CREATE, {"CID": cid})
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with pod.raw() as conn, ours:
        msgid = _gofer_start(env, cid, theirs.fileno(), conn)
        theirs.close()
        req = msgpack.unpackb(ours.recv(4096), raw=False)
        ours.send(msgpack.packb([1, req[1], "no such root", {"Files": 0}]))
        err, _ = conn.recv_reply(msgid)
    assert err == f'starting container "{cid}": the container\'s gofer: no such root', err

    cid = pod_id()
    pod.call(M_CREATE, {"CID": cid})
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with pod.raw() as conn:
        msgid = _gofer_start(env, cid, theirs.fileno(), conn)
        theirs.close()
        req = msgpack.unpackb(ours.recv(4096), raw=False)
        tree = open_tree(os.path.join(env.fixture, "rootfs"))
        ours.sendmsg([msgpack.packb([1, req[1], None, {"Files": 1}])],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, tree.to_bytes(4, "little"))])
        os.close(tree)
        err, _ = conn.recv_reply(msgid)
        assert err is None, err
    assert pod.call(M_STATE, cid) == 2
    ours.close()
    wait_until(lambda: pod.call(M_STATE, cid) == 3, what="the sub killed on its gofer's hang-up")
    assert pod.call(M_STATE, pod.id) == 2
    pod.call(M_DESTROY, cid)


def test_cli_self_overlay(env):
    """dev.cvisor.overlay: self: the upper layer is a directory on disk (the
    filestore create donates), here in the container's state directory;
    the bundle's rootfs is untouched and delete removes it."""
    root = env.new_sandbox(cri_bundle(env, ["sleep", "1000"]), start=True)
    sub = pod_id()
    name = "pods-self-" + sub
    b = env.make_bundle(args=["sh", "-c", f"echo kept > /{name}; exec sleep 993"],
                        annotations={"io.kubernetes.cri.container-type": "container",
                                     "io.kubernetes.cri.sandbox-id": root.id,
                                     "dev.cvisor.overlay": "self"})
    cli_create(env, sub, b)
    env.cli.run("start", sub, check=True)
    upper = os.path.join(env.root, sub, "overlay", "upper", name)
    # The shell's `>` makes the file before echo writes into it: wait for
    # the contents, not for the name (reading at once raced the write).

    def contents():
        try:
            with open(upper) as f:
                return f.read()
        except FileNotFoundError:
            return None
    wait_until(lambda: contents() == "kept\n", what="the write in the self upper layer")
    assert not os.path.exists(os.path.join(env.fixture, "rootfs", name))
    env.cli.run("delete", "--force", sub, check=True)
    assert not os.path.exists(os.path.join(env.root, sub))
    # Through the RPC, self needs its filestore.
    cid = pod_id()
    root.call(M_CREATE, {"CID": cid})
    null = os.open("/dev/null", os.O_RDWR)
    try:
        err = _start_err(root, {"Spec": sub_spec(env, ["true"]), "Conf": {}, "CID": cid,
                                "GoferMountConfs": [{"lower": 1, "upper": 2}], "Files": 4},
                         [null] * 4)
        assert err.startswith('StartArgs.GoferMountConfs[0].upper: the "self" medium needs '
                              'its filestore'), err
        cid = pod_id()
        root.call(M_CREATE, {"CID": cid})
        err = _start_err(root, {"Spec": sub_spec(env, ["true"]), "Conf": {}, "CID": cid,
                                "NumGoferFilestoreFDs": 1,
                                "GoferMountConfs": [{"lower": 1, "upper": 2}], "Files": 5},
                         [null] * 5)
        assert "must be a directory" in err, err
    finally:
        os.close(null)


def test_start_races(env, pod):
    """A destroy racing the start, and a client leaving mid-start: whatever
    wins, nothing of the container is left and boot's fds are back."""
    before = helpers.settled_fd_count(pod.boot_pid)
    for _ in range(3):
        cid = pod_id()
        pod.call(M_CREATE, {"CID": cid})
        tree = open_tree(os.path.join(env.fixture, "rootfs"))
        null = os.open("/dev/null", os.O_RDWR)
        conn = pod.raw()
        try:
            msgid = conn.request(M_SSTART, {"Spec": sub_spec(env, ["sleep", "992"]), "Conf": {},
                                            "CID": cid, "Files": 4},
                                 fds=[null, null, null, tree])
        finally:
            os.close(tree)
            os.close(null)
        pod.call(M_DESTROY, cid)
        err, _ = conn.recv_reply(msgid)
        conn.close()
        assert err is None or "deleted" in err or "starting container" in err, err
        assert pod.call(M_PROCS, cid) == [] and pod.call(M_STATE, cid) == 3
        # The client leaves before the answer.
        cid = pod_id()
        pod.call(M_CREATE, {"CID": cid})
        tree = open_tree(os.path.join(env.fixture, "rootfs"))
        null = os.open("/dev/null", os.O_RDWR)
        with pod.raw() as conn:
            conn.request(M_SSTART, {"Spec": sub_spec(env, ["sleep", "991"]), "Conf": {},
                                    "CID": cid, "Files": 4}, fds=[null, null, null, tree])
        os.close(tree)
        os.close(null)
        time.sleep(0.2)  # a held (1), running (2) or failed (3) start: all end with the destroy
        pod.call(M_DESTROY, cid)
        assert pod.call(M_PROCS, cid) == []
    assert [p["cmd"] for p in pod.call(M_PROCS, "")] == ["sleep"]
    assert helpers.settled_fd_count(pod.boot_pid) == before

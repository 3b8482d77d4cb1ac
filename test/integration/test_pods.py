"""Pods: subcontainers in one sandbox (docs/API.md CreateSubcontainer,
StartSubcontainer, DestroySubcontainer; docs/DESIGN.md "Pods").

Through the RPC (the root fs donated as a detached mount, made here with
open_tree) and through the CLI with the CRI annotations."""
import ctypes
import json
import os
import signal
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
    host = [helpers.nspid(p) for p in []]
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

"""Sandbox lifecycle: create/start states, isolation seen from inside,
pause/resume, and what delete must leave behind (nothing)."""
import os
import select
import signal
import stat
import time

import pytest

import helpers
from helpers import M_PROCS, M_SIGNAL, M_START, M_STATE, M_WAIT


def test_runtime_state_created_then_running(sandbox):
    st = os.stat(sandbox.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert helpers.pid_alive(sandbox.boot_pid)
    assert sandbox.call(M_STATE, sandbox.id) == 1
    sandbox.start()
    assert sandbox.call(M_STATE, sandbox.id) == 2
    # An unknown container reports "stopped", as in runsc.
    assert sandbox.call(M_STATE, "nope") == 3


def test_runtime_state_through_client(sandbox):
    with sandbox.client() as c:
        assert c.call(M_STATE, sandbox.id) == 1
        assert c.call(M_START, sandbox.id) is None
        assert c.call(M_STATE, sandbox.id) == 2


def test_start_root_twice(sandbox):
    cm = helpers.client_module()
    with sandbox.client() as c:
        c.call(M_START, sandbox.id)
        with pytest.raises(cm.RemoteError) as e:
            c.call(M_START, sandbox.id)
    assert str(e.value).startswith("sandbox is not in created state, cannot start root container")
    assert e.value.message.startswith("sandbox is not in created state")


def test_processes_lists_init(running_sandbox):
    procs = running_sandbox.call(M_PROCS, running_sandbox.id)
    assert isinstance(procs, list) and procs
    init = [p for p in procs if p["pid"] == 1]
    assert len(init) == 1, procs
    init = init[0]
    assert init["ppid"] == 0
    assert init["cmd"] == "sh"
    assert init["uid"] == 0
    for key in ("uid", "pid", "ppid", "pgid", "threads", "c", "tty", "stime", "time", "cmd"):
        assert key in init, key
    assert init["threads"] == [1]
    assert init["tty"] == "?"
    # Sorted by PID, and an unknown container has an empty list.
    assert [p["pid"] for p in procs] == sorted(p["pid"] for p in procs)
    assert running_sandbox.call(M_PROCS, "nope") == []


def test_processes_sees_workload_children(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        pid, out = sb.exec(["sh", "-c", "sleep 30 & echo started; wait"], conn=conn)
        with out:
            assert out.readline() == b"started\n"
            # The forked child may not have exec'd sleep yet: poll.
            def sleeping_kid():
                procs = sb.call(M_PROCS, sb.id)
                kids = [p for p in procs if p["ppid"] == pid]
                return procs if [k["cmd"] for k in kids] in (["sleep"], ["exe"]) else None
            procs = helpers.wait_until(sleeping_kid, timeout=5, what="the child to exec sleep")
            assert pid in {p["pid"] for p in procs}, procs
            sb.call(M_SIGNAL, {"CID": sb.id, "Signo": 9, "PID": 0, "Mode": 1})


def test_hostname(running_sandbox):
    status, out = running_sandbox.run_exec(["hostname"])
    assert status == 0
    assert out == b"cvisor\n"


def test_rootfs_is_pivoted(running_sandbox, fixture_bundle):
    status, out = running_sandbox.run_exec(["cat", "/etc/passwd"])
    assert status == 0
    with open(os.path.join(fixture_bundle, "rootfs", "etc", "passwd"), "rb") as f:
        assert out == f.read()
    assert b"alice:x:1000" in out
    # The host's root is not reachable: the bundle has no /etc/debian_version.
    status, _ = running_sandbox.run_exec(["test", "-e", "/etc/debian_version"])
    assert status == 1 << 8


def test_masked_paths(running_sandbox, fixture_bundle):
    """/proc/kcore when the host has it (this kernel may not: CONFIG_PROC_KCORE),
    and every other masked file the host does have, reads empty: /dev/null
    is bound over it (head bounds the read should it be the real thing)."""
    masked = helpers.fixture_config(fixture_bundle)["linux"]["maskedPaths"]
    assert "/proc/kcore" in masked
    files = [p for p in masked if os.path.isfile(p)]
    assert files, f"none of {masked} exists on this host"
    for path in files:
        status, out = running_sandbox.run_exec(["sh", "-c", f"head -c 16 {path} | wc -c"])
        assert status == 0
        assert out.strip() == b"0", (path, out)
    # The host's own copies are not all empty (so the check above can fail).
    nonempty = []
    for path in files:
        with open(path, "rb") as f:
            nonempty.append(f.read(16) != b"")
    assert any(nonempty)


def test_sys_is_read_only(running_sandbox):
    status, out = running_sandbox.run_exec(["sh", "-c", "grep ' /sys ' /proc/mounts"])
    assert status == 0, out
    opts = out.splitlines()[0].split()[3].split(b",")
    assert b"ro" in opts, out
    status, _ = running_sandbox.run_exec(["sh", "-c", "mkdir /sys/cvisor-test"])
    assert status != 0


def test_pid_namespace(running_sandbox):
    status, out = running_sandbox.run_exec(["sh", "-c", "echo $$; cat /proc/1/comm"])
    assert status == 0
    pid, comm = out.split()
    assert 1 < int(pid) < 1000
    assert comm == b"sh"


def test_memory_and_pids_limits(running_sandbox):
    # The init's own cgroups, found from /proc/<pid>/cgroup and the mount
    # table: v1 files where the controller is bound to v1, v2 files else.
    sb = running_sandbox
    init = sb.init_host_pid()
    limit, path = helpers.read_cgroup_file(init, "memory", "memory.limit_in_bytes", "memory.max")
    # The container's cgroup is runc's default for a spec without
    # linux.cgroupsPath (test_cgroup_paths.py covers the others).
    want = helpers.default_cgroup(sb.id)
    assert int(limit) == 268435456, path
    assert path.endswith(want + "/memory.limit_in_bytes") or path.endswith(want + "/memory.max"), path
    pids, path = helpers.read_cgroup_file(init, "pids", "pids.max", "pids.max")
    assert pids == "1024", path
    assert path.endswith(want + "/pids.max"), path


def test_v1_nodes_for_managed_controllers_on_hybrid_host(running_sandbox):
    # Only a host with v1 controllers has v1 nodes; limits go there and
    # membership goes through the unified node.
    helpers.need_cgroup_layout("hybrid", "v1")
    sb = running_sandbox
    cg = helpers.cgroups_of(sb.init_host_pid())
    want = helpers.default_cgroup(sb.id)
    for ctrl in helpers.CGROUP_V1_CTRLS:
        if helpers.cgroup_v1_mount(ctrl):
            assert cg.get(ctrl) == want, f"{ctrl}: {cg.get(ctrl)!r}, want {want!r}"
            d = helpers.cgroup_dir(sb.init_host_pid(), ctrl)
            with open(os.path.join(d, "cgroup.procs")) as f:
                assert sb.init_host_pid() in [int(x) for x in f.read().split()]


def _assert_all_gone(sb, init_pid):
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="boot process to exit")
    if init_pid:
        helpers.wait_until(lambda: not helpers.pid_alive(init_pid), what="init to exit")
    assert not os.path.exists(sb.sock)
    assert not os.path.exists(sb.dir)
    left = [p for p in helpers.cgroup_paths(sb.id) if os.path.exists(p)]
    assert not left, f"cgroups left after delete: {left}"


def test_delete_force_running(running_sandbox):
    sb = running_sandbox
    init_pid = sb.init_host_pid()
    assert init_pid and helpers.pid_alive(init_pid)
    # Its nodes exist in every hierarchy it is in (so their absence after
    # the delete means something), and they are the sandbox's.
    dirs = helpers.cgroup_dirs(init_pid)
    assert helpers.cgroup_dir(init_pid) in dirs, "the init has no unified cgroup"
    mine = [d for d in dirs if d.endswith(helpers.default_cgroup(sb.id))]
    assert mine and all(os.path.isdir(d) for d in mine), dirs
    with sb.raw() as conn:
        pid, out = sb.exec(["sleep", "1000"], conn=conn)
        out.close()
    p = sb.delete(force=True)
    assert p.returncode == 0, p.stderr
    _assert_all_gone(sb, init_pid)
    left = [d for d in mine if os.path.exists(d)]
    assert not left, f"cgroups left after delete: {left}"


def test_delete_created_sandbox(sandbox):
    init_pid = sandbox.init_host_pid()
    p = sandbox.delete(force=True)
    assert p.returncode == 0, p.stderr
    _assert_all_gone(sandbox, init_pid)


def test_delete_after_exit(env):
    sb = env.new_sandbox(env.make_bundle(args=["sh", "-c", "exit 0"]), start=True)
    init_pid = sb.init_host_pid()
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="sandbox to end")
    assert sb.state()["status"] == "stopped"
    p = sb.delete(force=False)
    assert p.returncode == 0, p.stderr
    _assert_all_gone(sb, init_pid)


def test_sandbox_ends_with_root_init(running_sandbox):
    sb = running_sandbox
    with sb.raw() as waiter:
        mid = waiter.request(M_WAIT, sb.id)
        time.sleep(0.2)
        # The init traps TERM and exits 0.
        sb.call(M_SIGNAL, {"CID": sb.id, "Signo": signal.SIGTERM, "PID": 0, "Mode": 0})
        err, res = waiter.recv_reply(mid)
        assert err is None and res == 0
        waiter.expect_closed()
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="boot to exit")
    with pytest.raises(OSError):
        helpers.RawConn(sb.sock).call(M_STATE, sb.id)


def test_pause_resume_rpc(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        pid, out = sb.exec(["sh", "-c", "while :; do echo x; sleep 0.02; done"], conn=conn)
        with out:
            fd = out.fileno()
            os.set_blocking(fd, False)

            def drain():
                n = 0
                while True:
                    try:
                        b = os.read(fd, 65536)
                    except BlockingIOError:
                        return n
                    if not b:
                        return n
                    n += len(b)

            helpers.wait_until(lambda: select.select([fd], [], [], 0.1)[0], what="output")
            init = sb.init_host_pid()
            assert conn.call("Lifecycle.Pause") is None
            assert helpers.cgroup_frozen(init), helpers.cgroup_freezer_file(init)
            time.sleep(0.1)
            drain()
            time.sleep(0.5)
            assert drain() == 0, "a paused container kept running"
            assert conn.call("Lifecycle.Resume") is None
            assert not helpers.cgroup_frozen(init), helpers.cgroup_freezer_file(init)
            time.sleep(0.5)
            assert drain() > 0, "the container did not run again after Resume"
            with pytest.raises(RuntimeError, match="sandbox is not paused"):
                conn.call("Lifecycle.Resume")
            sb.call(M_SIGNAL, {"CID": sb.id, "Signo": 9, "PID": pid, "Mode": 0})

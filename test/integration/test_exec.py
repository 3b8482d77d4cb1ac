"""containerManager.ExecuteAsync and WaitPID."""
import os
import time

import pytest

import helpers
from helpers import M_EXEC, M_PROCS, M_WAITPID, exec_args


def test_exec_donated_stdio_and_status(running_sandbox):
    sb = running_sandbox
    cm = helpers.client_module()
    r, w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY)
    with sb.client() as c:
        arg = exec_args(sb.id, ["sh", "-c", "echo out; echo err >&2; exit 5"],
                        guest_fds=[0, 1, 2])
        pid = c.call(M_EXEC, arg, fds=(null, w, w))
        os.close(w)
        os.close(null)
        assert isinstance(pid, int) and 1 < pid < 1000, pid
        with os.fdopen(r, "rb") as out:
            data = out.read()
        assert sorted(data.split()) == [b"err", b"out"]
        assert c.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 5 << 8
        # The registry entry was consumed by the first WaitPID.
        with pytest.raises(cm.RemoteError) as e:
            c.call(M_WAITPID, {"PID": pid, "CID": sb.id})
        assert str(e.value) == f"waiting for PID {pid}: no such process"


def test_exec_stdin_pipe(running_sandbox):
    sb = running_sandbox
    ir, iw = os.pipe()
    os.write(iw, b"hello through stdin\n")
    os.close(iw)
    status, out = sb.run_exec(["cat"], stdin_fd=ir)
    os.close(ir)
    assert status == 0
    assert out == b"hello through stdin\n"


def test_five_waitpids_pipelined(running_sandbox):
    sb = running_sandbox
    with sb.client() as c:
        pids = {}
        # Each process ends when the test tells it to (no timing involved).
        for k in (5, 4, 3, 2, 1):
            arg = exec_args(sb.id, ["sh", "-c",
                                    f"while [ ! -e /tmp/go{k} ]; do sleep 0.02; done; exit {k}"])
            pids[k] = c.call(M_EXEC, arg)
        sent = []
        for k in (5, 4, 3, 2, 1):
            mid = c.send(M_WAITPID, {"PID": pids[k], "CID": sb.id})
            sent.append((mid, k))
        want = dict(sent)
        arrived = []
        # Ended in the opposite order of the requests: each reply comes
        # when its process ends, not in request order.
        for k in (1, 2, 3, 4, 5):
            status, _ = sb.run_exec(["touch", f"/tmp/go{k}"])
            assert status == 0
            mid, err, res, fds = c.recv()
            assert err is None, err
            assert mid in want, mid
            assert res == want[mid] << 8, (mid, res)
            arrived.append(want[mid])
    assert arrived == [1, 2, 3, 4, 5]


def test_exec_user_env_cwd(running_sandbox):
    sb = running_sandbox
    status, out = sb.run_exec(["sh", "-c", 'id -u; id -g; echo "$HOME"; pwd; echo "$FOO"'],
                              env=["FOO=bar", "FOO=baz"], cwd="/etc", uid=1000, gid=1000)
    assert status == 0, out
    assert out.decode().split("\n")[:5] == ["1000", "1000", "/home/alice", "/etc", "baz"]


def test_exec_root_default_home_and_caps(running_sandbox):
    status, out = running_sandbox.run_exec(
        ["sh", "-c", 'echo "$HOME"; grep CapEff /proc/self/status'])
    assert status == 0
    lines = out.decode().split("\n")
    assert lines[0] == "/root"
    assert int(lines[1].split()[1], 16) == 0  # nil Capabilities: none, uid 0 too (as runc)
    status, out = running_sandbox.run_exec(["sh", "-c", "grep CapEff /proc/self/status"], uid=1000)
    assert int(out.split()[1], 16) == 0  # other uids: none


def test_exec_by_absolute_path_and_filename(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        r, w = os.pipe()
        # argv[0] names no file: the binary must come from `filename` (busybox
        # picks the applet from argv[0]'s basename, "sh").
        arg = exec_args(sb.id, ["/nonexistent/sh", "-c", "echo $0"], filename="/bin/sh",
                        guest_fds=[1])
        pid = conn.call(M_EXEC, arg, fds=[w])
        os.close(w)
        with os.fdopen(r, "rb") as out:
            assert out.read() == b"/nonexistent/sh\n"
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 0


def test_exec_errors(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        def err(arg, fds=()):
            with pytest.raises(RuntimeError) as e:
                conn.call(M_EXEC, arg, fds=fds)
            return str(e.value)

        assert err(exec_args(sb.id, ["nosuchbin"])).startswith(
            'error finding executable "nosuchbin" in PATH')
        assert err(exec_args(sb.id, ["true"], env=["NOEQUALS"])) == \
            "resolving env: invalid variable: NOEQUALS"
        assert err(exec_args("nope", ["true"])) == 'container "nope" not found'
        null = os.open("/dev/null", os.O_RDONLY)
        try:
            assert err(exec_args(sb.id, ["true"], guest_fds=[0, 1, 2], files=1), fds=[null]) == \
                "length of payload files does not match length of file descriptor array"
            assert err(exec_args(sb.id, ["true"], guest_fds=[-1], files=1), fds=[null]) == \
                "guest file descriptors must be 0 or greater"
        finally:
            os.close(null)
        assert "ExecArgs.argv" in err(exec_args(sb.id, []))
        # Still working afterwards.
        pid = conn.call(M_EXEC, exec_args(sb.id, ["true"]))
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 0


def test_waitpid_errors(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        def err(arg):
            with pytest.raises(RuntimeError) as e:
                conn.call(M_WAITPID, arg)
            return str(e.value)

        assert err({"PID": 0, "CID": sb.id}) == "PID (0) must be positive"
        assert err({"PID": -5, "CID": sb.id}) == "PID (-5) must be positive"
        assert err({"PID": 999, "CID": sb.id}) == "waiting for PID 999: no such process"
        assert err({"PID": 5, "CID": "nope"}).endswith('container "nope" not found')


def test_exec_pids_are_in_root_pidns(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        pid, out = sb.exec(["sh", "-c", "echo $$; exec sleep 30"], conn=conn)
        with out:
            inner = int(out.readline())
        assert inner == pid
        procs = {p["pid"]: p for p in conn.call(M_PROCS, sb.id)}
        # Its parent (the boot) is outside the sandbox.
        assert procs[pid]["ppid"] == 0, procs
        conn.call(helpers.M_SIGNAL, {"CID": sb.id, "Signo": 9, "PID": pid, "Mode": 0})
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 9


def test_exec_waitpid_on_init(running_sandbox):
    """WaitPID of a non-exec'd PID falls back to the container's processes."""
    sb = running_sandbox
    with sb.raw() as w:
        mid = w.request(M_WAITPID, {"PID": 1, "CID": sb.id})
        time.sleep(0.2)
        sb.call(helpers.M_SIGNAL, {"CID": sb.id, "Signo": 15, "PID": 0, "Mode": 0})
        err, res = w.recv_reply(mid)
        assert err is None and res == 0


def test_exec_signal_state_is_clean(running_sandbox):
    """Exec'd processes (and the init) start with no blocked signals and
    SIGPIPE at its default: nothing leaks from the boot process's own
    signal handling (signalfd, SIGPIPE ignored)."""
    sb = running_sandbox
    status, out = sb.run_exec(["sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status; "
                                           "grep -E '^Sig(Blk|Ign)' /proc/1/status"])
    assert status == 0
    fields = [line.split() for line in out.decode().splitlines()]
    blk = [int(v, 16) for k, v in fields if k == "SigBlk:"]
    ign = [int(v, 16) for k, v in fields if k == "SigIgn:"]
    assert blk == [0, 0], out
    sigpipe = 1 << (13 - 1)
    assert not any(i & sigpipe for i in ign), out

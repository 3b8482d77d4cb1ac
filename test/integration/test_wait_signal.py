"""containerManager.Wait and Signal (modes 0-3)."""
import signal
import time

import pytest

import helpers
from helpers import M_PROCS, M_SIGNAL, M_WAIT, M_WAITPID


def sig(sb, signo, pid=0, mode=0, cid=None):
    return {"CID": cid or sb.id, "Signo": int(signo), "PID": pid, "Mode": mode}


def test_kill_all_with_two_waits_in_flight(running_sandbox):
    sb = running_sandbox
    with sb.raw() as a, sb.raw() as b, sb.raw() as c:
        ma = a.request(M_WAIT, sb.id)
        mb = b.request(M_WAIT, sb.id)
        # Some workload besides the init, which must die too.
        pid, out = sb.exec(["sleep", "1000"], conn=c)
        out.close()
        time.sleep(0.2)
        assert c.call(M_SIGNAL, sig(sb, signal.SIGKILL, mode=1)) is None
        assert a.recv_reply(ma) == (None, 9)
        assert b.recv_reply(mb) == (None, 9)
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="boot to exit")


def test_kill_all_client_pipelined(running_sandbox):
    sb = running_sandbox
    with sb.client() as c1, sb.client() as c2:
        m1 = c1.send(M_WAIT, sb.id)
        m2 = c2.send(M_WAIT, sb.id)
        time.sleep(0.2)
        sb.call(M_SIGNAL, sig(sb, signal.SIGKILL, mode=1))
        for c, m in ((c1, m1), (c2, m2)):
            mid, err, res, fds = c.recv()
            assert (mid, err, res) == (m, None, 9)


def test_signal_init_trapped_term(running_sandbox):
    sb = running_sandbox
    with sb.raw() as w:
        mid = w.request(M_WAIT, sb.id)
        time.sleep(0.1)
        sb.call(M_SIGNAL, sig(sb, signal.SIGTERM))
        assert w.recv_reply(mid) == (None, 0)


def test_signal_mode0_exec_pid(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        pid, out = sb.exec(["sleep", "1000"], conn=conn)
        out.close()
        mid = conn.request(M_WAITPID, {"PID": pid, "CID": sb.id})
        # Signal 0 is a liveness probe: nothing happens.
        assert sb.call(M_SIGNAL, sig(sb, 0, pid=pid)) is None
        assert sb.call(M_SIGNAL, sig(sb, signal.SIGTERM, pid=pid)) is None
        assert conn.recv_reply(mid) == (None, signal.SIGTERM)
    # The init is untouched.
    assert sb.call(helpers.M_STATE, sb.id) == 2
    with pytest.raises(RuntimeError) as e:
        sb.call(M_SIGNAL, sig(sb, signal.SIGTERM, pid=pid))
    assert "no such process" in str(e.value)


def test_signal_mode3_process_group(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        # setsid: the group leader is a sh whose pgid is its own pid, with two
        # sleeps in its group (setsid forks first if it is already a leader).
        pid, out = sb.exec(["setsid", "sh", "-c", "sleep 1000 & sleep 1000 & echo ok; wait"],
                           conn=conn)
        with out:
            assert out.readline() == b"ok\n"

        def group():
            procs = conn.call(M_PROCS, sb.id)
            leaders = [p for p in procs if p["cmd"] == "sh" and p["pid"] == p["pgid"]
                       and p["pid"] != 1]
            if not leaders:
                return None
            pg = leaders[0]["pgid"]
            members = [p for p in procs if p["pgid"] == pg]
            # A just-forked child is still "sh" until it runs sleep; busybox
            # may run the applet by re-executing /proc/self/exe ("exe").
            kids = [p["cmd"] for p in members if p["pid"] != pg]
            if len(members) != 3 or not all(k in ("sleep", "exe") for k in kids):
                return None
            return pg, members

        pgid, members = helpers.wait_until(group, what="a process group of three")
        assert [p["cmd"] for p in members if p["pid"] == pgid] == ["sh"]
        assert conn.call(M_SIGNAL, sig(sb, signal.SIGKILL, pid=pgid, mode=3)) is None

        def gone():
            alive = {p["pid"] for p in conn.call(M_PROCS, sb.id)}
            return not alive & {p["pid"] for p in members}

        helpers.wait_until(gone, what="the process group to die")
        assert 1 in {p["pid"] for p in conn.call(M_PROCS, sb.id)}
        with pytest.raises(RuntimeError) as e:
            conn.call(M_SIGNAL, sig(sb, signal.SIGKILL, pid=pgid, mode=3))
        assert str(e.value) == f"no such process group with PGID {pgid}"


def test_signal_errors(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        def err(arg):
            with pytest.raises(RuntimeError) as e:
                conn.call(M_SIGNAL, arg)
            return str(e.value)

        assert err(sig(sb, 15, cid="nope")) == 'container "nope" not found'
        assert err(sig(sb, 15, pid=-3)) == "PID (-3) must be positive"
        assert err(sig(sb, 15, pid=5, mode=1)) == \
            "PID (5) cannot be set when signaling all processes"
        assert err(sig(sb, 15, pid=0, mode=3)) == "PGID must be set when signaling a process group"
        assert err(sig(sb, 15, mode=2)) == "no TTY attached"
        assert "999" in err(sig(sb, 15, pid=999))
        assert "1000" in err(sig(sb, 1000))
        assert "9" in err(sig(sb, 15, mode=9))
        assert conn.call(helpers.M_STATE, sb.id) == 2


def test_wait_errors(sandbox):
    with sandbox.raw() as conn:
        with pytest.raises(RuntimeError) as e:
            conn.call(M_WAIT, "nope")
        assert str(e.value) == 'container "nope" not found'
        with pytest.raises(RuntimeError) as e:
            conn.call(M_WAIT, sandbox.id)
        assert str(e.value) == f'container "{sandbox.id}" not started'

"""No single client can stall a sandbox: each test is the attack, run
against a live boot, followed by the work an honest client must still be
able to do."""
import json
import os
import signal
import socket
import sys
import time

import msgpack
import pytest

import helpers
from helpers import M_EXEC, M_SIGNAL, M_STATE, M_WAITPID, exec_args

FLOOD_FDS = 256  # fds each flooding connection attaches (two sendmsgs: SCM_MAX_FD is 253)
MAX_FLOOD_CONNS = 200  # below boot's connection limit, so the fds do the damage


def boot_nofile(pid):
    """Soft RLIMIT_NOFILE of pid."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError(f"no 'Max open files' in /proc/{pid}/limits")


def scm(fds):
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
             b"".join(int(fd).to_bytes(4, sys.byteorder, signed=True) for fd in fds))]


def test_fd_flood_cannot_starve_other_clients(running_sandbox):
    sb = running_sandbox
    boot = sb.boot_pid
    soft = boot_nofile(boot)
    nconns = min(soft // FLOOD_FDS + 2, MAX_FLOOD_CONNS)
    if nconns * FLOOD_FDS <= soft:
        print(f"note: RLIMIT_NOFILE {soft} is too high for {MAX_FLOOD_CONNS} connections to "
              "fill boot's fd table; the flood still runs")
    unrelated = sb.raw()  # an honest client, connected before the attack
    assert unrelated.call(M_STATE, sb.id) == 2
    # The first exec starts the container's exec spawner, whose socket and
    # spare intermediate boot keeps from then on: part of the baseline.
    assert sb.run_exec(["/bin/true"])[0] == 0
    base = helpers.settled_fd_count(boot)

    # Each flooding connection half-sends an ExecuteAsync (its Files can
    # never be claimed) with FLOOD_FDS fds attached, and then waits.
    msg = msgpack.packb([0, 1, M_EXEC, [exec_args(sb.id, ["/bin/true"], files=128)]],
                        use_bin_type=True)
    null = os.open("/dev/null", os.O_RDONLY)
    flood = []
    try:
        for _ in range(nconns):
            try:
                s = helpers.connect_retry(sb.sock)
                flood.append(s)
                s.sendmsg([msg[:20]], scm([null] * 253))
                s.sendmsg([msg[20:24]], scm([null] * (FLOOD_FDS - 253)))
            except OSError:
                pass  # the server may drop a hoarding connection: that is the defence
        os.close(null)
        null = -1
        peak = helpers.settled_fd_count(boot)
        print(f"boot fds: {base} before the flood of {nconns} connections, {peak} after "
              f"(RLIMIT_NOFILE {soft})")

        # The honest client still runs a process, with stdio fds...
        pid, out = sb.exec(["/bin/echo", "still here"], conn=unrelated)
        with out:
            assert unrelated.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 0
            assert out.read() == b"still here\n"
        # ...and a new connection is accepted and answered.
        with sb.raw() as fresh:
            assert fresh.call(M_STATE, sb.id) == 2
        assert peak >= base + 2 * FLOOD_FDS, f"the flood did not reach boot ({base} -> {peak})"
        # Room stays free for the sandbox's own work (spawning, pidfds).
        assert peak < soft - 256, f"queued fds filled boot's fd table: {peak} of {soft}"
    finally:
        if null >= 0:
            os.close(null)
        for s in flood:
            s.close()
    helpers.wait_until(lambda: helpers.fd_count(boot) <= base, what="boot's fds back to baseline")
    assert helpers.settled_fd_count(boot) == base
    unrelated.close()


def test_idle_connections_do_not_lock_out_the_cli(running_sandbox, cli):
    sb = running_sandbox
    idle = []
    try:
        for _ in range(300):
            idle.append(helpers.connect_retry(sb.sock))
        state = json.loads(cli.run("state", sb.id, check=True).stdout)
        assert state["id"] == sb.id and state["status"] == "running", state
        cli.run("delete", "--force", sb.id, check=True)
        helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="boot to exit")
        assert not os.path.exists(sb.dir)
    finally:
        for s in idle:
            s.close()


PAD = 8 << 20  # bytes of padding in each WaitPID's argument
NWAITS = 32
RSS_BOUND_KIB = 48 << 10


def test_parked_waitpid_does_not_pin_its_request(running_sandbox):
    sb = running_sandbox
    boot = sb.boot_pid
    pid, out = sb.exec(["/bin/sleep", "1000"])
    out.close()
    with sb.raw() as c:
        assert c.call(M_STATE, sb.id) == 2
    rss0 = helpers.vm_rss_kib(boot)
    pad = "p" * PAD
    conns, mids = [], []
    try:
        for _ in range(NWAITS):
            c = sb.raw()
            conns.append(c)
            mids.append(c.request(M_WAITPID, {"PID": pid, "CID": sb.id, "Pad": pad}))
            # Answered after the WaitPID was handled (in order): it is parked.
            assert c.call(M_STATE, sb.id) == 2
        rss_parked = helpers.vm_rss_kib(boot)
        sb.call(M_SIGNAL, {"CID": sb.id, "Signo": int(signal.SIGKILL), "PID": pid, "Mode": 0})
        for c, m in zip(conns, mids):
            assert c.recv_reply(m) == (None, helpers.status_of(sig=signal.SIGKILL))
    finally:
        for c in conns:
            c.close()
    if os.environ.get("CVISOR_SANITIZED"):
        pytest.skip("ASan's quarantine holds freed memory: VmRSS says nothing there "
                    f"(parked: {rss0} -> {rss_parked} KiB)")
    print(f"boot VmRSS {rss0} -> {rss_parked} KiB with {NWAITS} padded WaitPIDs parked")
    assert rss_parked - rss0 < RSS_BOUND_KIB, (
        f"{NWAITS} parked WaitPIDs padded to {PAD} bytes grew boot's VmRSS "
        f"{rss0} -> {rss_parked} KiB")

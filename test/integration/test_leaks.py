"""The boot process must not leak fds or memory across many calls."""
import os
import time

import helpers
from helpers import M_EXEC, M_STATE, M_WAITPID, exec_args

BATCH = 20


def cycles(sb, conn, n, with_stdio=False):
    """n ExecuteAsync(/bin/true)+WaitPID, pipelined BATCH at a time."""
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        fds = []
        mids = []
        for _ in range(k):
            if with_stdio:
                f = [os.open("/dev/null", os.O_RDWR) for _ in range(3)]
                fds += f
                mids.append(conn.request(M_EXEC, exec_args(sb.id, ["/bin/true"],
                                                           guest_fds=[0, 1, 2]), fds=f))
            else:
                mids.append(conn.request(M_EXEC, exec_args(sb.id, ["/bin/true"])))
        for fd in fds:
            os.close(fd)
        pids = [pid for err, pid in recv_all(conn, mids)]
        mids = [conn.request(M_WAITPID, {"PID": p, "CID": sb.id}) for p in pids]
        assert [st for err, st in recv_all(conn, mids)] == [0] * k
        done += k


def recv_all(conn, mids):
    """Replies to mids (they may come in any order), as (error, result) in
    the order of mids; any error fails."""
    got = {}
    while len(got) < len(mids):
        msg = conn.recv()
        assert msg[0] == 1 and msg[1] in mids and msg[1] not in got, msg
        assert msg[2] is None, msg[2]
        got[msg[1]] = (msg[2], msg[3])
    return [got[m] for m in mids]


def test_no_fd_or_rss_growth_over_1000_execs(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        cycles(sb, conn, 100)  # warm up the allocator and any caches
        fds0 = helpers.fd_count(sb.boot_pid)
        rss0 = helpers.vm_rss_kib(sb.boot_pid)
        cycles(sb, conn, 500)
        cycles(sb, conn, 500, with_stdio=True)
        assert conn.call(M_STATE, sb.id) == 2
        fds1 = helpers.fd_count(sb.boot_pid)
        rss1 = helpers.vm_rss_kib(sb.boot_pid)
    assert fds1 == fds0, f"boot fds {fds0} -> {fds1} after 1000 exec+WaitPID"
    if os.environ.get("CVISOR_SANITIZED"):
        return  # ASan's quarantine holds freed memory: RSS says nothing there
    assert rss1 - rss0 <= 1024, f"boot VmRSS {rss0} KiB -> {rss1} KiB after 1000 exec+WaitPID"


def test_no_fd_growth_over_connections(running_sandbox):
    sb = running_sandbox
    with sb.raw() as c:
        c.call(M_STATE, sb.id)
    # The boot process closes a finished connection from its next loop
    # iteration: take the baseline once the count has settled.
    before = helpers.settled_fd_count(sb.boot_pid)
    for _ in range(200):
        with sb.raw() as c:
            c.call(M_STATE, sb.id)
    # Connections that go away with calls still parked.
    for _ in range(50):
        c = sb.raw()
        c.request(helpers.M_WAIT, sb.id)
        c.close()
    helpers.wait_until(lambda: helpers.fd_count(sb.boot_pid) == before, timeout=5,
                       what=f"boot fd count back to {before}")


def test_no_zombies_after_execs(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        cycles(sb, conn, 40)
        # Exec'd but never waited for: the process still gets reaped.
        for _ in range(10):
            conn.call(M_EXEC, exec_args(sb.id, ["/bin/true"]))

    def no_zombies():
        for c in helpers.children(sb.boot_pid):
            try:
                with open(f"/proc/{c}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return False
            except FileNotFoundError:
                pass
        return True

    helpers.wait_until(no_zombies, timeout=5, what="the boot's zombie children to be reaped")

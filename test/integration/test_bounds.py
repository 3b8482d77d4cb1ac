"""Boot's memory and connection table stay bounded under clients that never
wait for their execs and under many clients at once."""
import os
import resource
import selectors
import socket
import time

import pytest

import msgpack

import helpers
from helpers import M_EXEC, M_STATE, M_WAITPID, exec_args

KEEP_EXITED = 1024  # TASK_REGISTRY_KEEP_EXITED (kernel/model.h)
PIPELINE = 64
WARMUP = 1100  # > KEEP_EXITED: past it the registry holds a steady number of tasks


def unwaited_execs(sb, conn, n):
    """n ExecuteAsync(/bin/true), pipelined, never waited for. Returns the pids."""
    pids = []
    done = 0
    while done < n:
        k = min(PIPELINE, n - done)
        mids = [conn.request(M_EXEC, exec_args(sb.id, ["/bin/true"])) for _ in range(k)]
        got = {}
        while len(got) < k:
            msg = conn.recv()
            assert msg[0] == 1 and msg[1] in mids and msg[2] is None, msg
            got[msg[1]] = msg[3]
        pids += [got[m] for m in mids]
        done += k
    return pids


def settled_rss(pid):
    """VmRSS once the last execs' exits have been reaped (it stops moving)."""
    last = helpers.vm_rss_kib(pid)
    for _ in range(20):
        time.sleep(0.1)
        cur = helpers.vm_rss_kib(pid)
        if cur == last:
            return cur
        last = cur
    return last


def test_unwaited_execs_keep_rss_flat(running_sandbox):
    sb = running_sandbox
    # Under ASan RSS means nothing (its quarantine holds freed memory) and an
    # exec is ten times slower: only the registry's behaviour is checked.
    sanitized = bool(os.environ.get("CVISOR_SANITIZED"))
    n = KEEP_EXITED + 300 if sanitized else 10000
    with sb.raw() as conn:
        conn.sock.settimeout(120)  # a loaded 2-core host runs ~30 execs/s
        # Warm-up: allocator, caches, and the registry filled to its bound.
        first = unwaited_execs(sb, conn, 0 if sanitized else WARMUP)
        rss0 = settled_rss(sb.boot_pid)
        t0 = time.monotonic()
        pids = unwaited_execs(sb, conn, n)
        took = time.monotonic() - t0
        rss1 = settled_rss(sb.boot_pid)
        print(f"boot VmRSS {rss0} KiB after the warm-up, {rss1} KiB after {n} more "
              f"({took:.1f} s)")

        # An entry past the bound was forgotten, and WaitPID says so (the
        # last TASK_FORGOTTEN_MAX forgotten pids are remembered as such).
        old = pids[-KEEP_EXITED - 100]
        assert pids.count(old) == 1 and old not in first, "pid reused: cannot tell"
        err, res = conn.recv_reply(conn.request(M_WAITPID, {"PID": old, "CID": sb.id}))
        assert err == (f"waiting for PID {old}: the process exited and its status was "
                       f"forgotten: a container keeps the exit status of only its "
                       f"{KEEP_EXITED} most recently exited processes nobody waited for"), err
        # A recent un-waited exec still has its status.
        assert conn.call(M_WAITPID, {"PID": pids[-1], "CID": sb.id}) == 0
        # And a fresh exec is waited for as ever.
        pid = conn.call(M_EXEC, exec_args(sb.id, ["/bin/sh", "-c", "exit 3"]))
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == helpers.status_of(3)
        assert conn.call(M_STATE, sb.id) == 2
    if sanitized:
        pytest.skip("RSS not checked under ASan (its quarantine holds freed memory); "
                    "the registry's bound was")
    assert abs(rss1 - rss0) <= 512, (
        f"boot VmRSS {rss0} KiB -> {rss1} KiB over {n} un-waited execs")


def test_exec_start_failure_leaves_no_entry(running_sandbox):
    """Execs that fail to start (their client already gone) are not kept."""
    sb = running_sandbox
    with sb.raw() as conn:
        # The failure reply itself: the exec never started.
        err, _ = conn.recv_reply(conn.request(M_EXEC, exec_args(sb.id, ["/no/such/binary"])))
        assert err and "/no/such/binary" in err, err
    for _ in range(50):
        with sb.raw() as conn:
            conn.request(M_EXEC, exec_args(sb.id, ["/no/such/binary"]))
    # Boot stays healthy and answers.
    with sb.raw() as conn:
        assert conn.call(M_STATE, sb.id) == 2


CLIENTS = 1000
CALLS = 100


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft >= need, soft


def test_many_clients_pipelining(running_sandbox):
    """1000 clients at once, each pipelining 100 ContainerRuntimeState calls:
    every reply arrives and is right."""
    sb = running_sandbox
    ok, soft = raise_nofile(CLIENTS + 64)
    if not ok:
        import pytest
        pytest.skip(f"RLIMIT_NOFILE hard limit {soft} < {CLIENTS + 64}: cannot open the clients")
    with open(f"/proc/{sb.boot_pid}/limits") as f:
        boot_nofile = [l for l in f if l.startswith("Max open files")][0].split()[3]
    if int(boot_nofile) < CLIENTS + 512:
        import pytest
        pytest.skip(f"boot's RLIMIT_NOFILE ({boot_nofile}) cannot hold {CLIENTS} clients")

    sel = selectors.DefaultSelector()
    socks = []
    t0 = time.monotonic()
    try:
        for i in range(CLIENTS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(helpers.TIMEOUT)
            s.connect(sb.sock)
            s.setblocking(False)
            out = b"".join(msgpack.packb([0, m, M_STATE, [sb.id]]) for m in range(CALLS))
            st = {"out": out, "unp": msgpack.Unpacker(raw=False), "got": 0, "i": i}
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        connected = time.monotonic() - t0
        open_clients = CLIENTS
        deadline = time.monotonic() + 120
        while open_clients:
            assert time.monotonic() < deadline, (
                f"{open_clients} clients still waiting for replies after 120 s")
            for key, ev in sel.select(timeout=helpers.TIMEOUT):
                s, st = key.fileobj, key.data
                if ev & selectors.EVENT_WRITE and st["out"]:
                    try:
                        n = s.send(st["out"])
                        st["out"] = st["out"][n:]
                    except BlockingIOError:
                        pass
                    if not st["out"]:
                        sel.modify(s, selectors.EVENT_READ, st)
                if ev & selectors.EVENT_READ:
                    try:
                        data = s.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    assert data, f"client {st['i']} closed by boot after {st['got']} replies"
                    st["unp"].feed(data)
                    for msg in st["unp"]:
                        assert msg == [1, st["got"], None, 2], (st["i"], msg)
                        st["got"] += 1
                    if st["got"] == CALLS:
                        sel.unregister(s)
                        open_clients -= 1
        took = time.monotonic() - t0
        print(f"{CLIENTS} clients x {CALLS} pipelined calls: connected in {connected:.2f} s, "
              f"all {CLIENTS * CALLS} replies in {took:.2f} s")
        # Nobody was refused or evicted: the table holds them all.
        with sb.raw() as conn:
            assert conn.call(M_STATE, sb.id) == 2
    finally:
        sel.close()
        for s in socks:
            s.close()

"""Usage.Collect, Usage.UsageFD and containerManager.Event (docs/API.md)
against a running container, their argument errors, and the `usage` and
`events` CLI verbs."""
import array
import json
import os
import socket
import struct
import subprocess

import msgpack

import pytest

import helpers

KEYS = ("Unknown", "System", "Anonymous", "PageCache", "Mapped", "Tmpfs", "Ramdiskfs", "Total")


def call_err(sb, method, arg=None):
    with sb.raw() as r:
        err, res = r.recv_reply(r.request(method, arg))
        assert err is not None, f"{method}({arg!r}) answered {res!r}"
        assert r.call("containerManager.ContainerRuntimeState", sb.id) == 2
        return err


def usage_fd_call(sb, arg):
    """Usage.UsageFD over a plain socket: (error, result, received fds)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(helpers.TIMEOUT)
    s.connect(sb.sock)
    fds = []
    try:
        s.sendall(msgpack.packb([0, 7, "Usage.UsageFD", [arg]], use_bin_type=True))
        up = msgpack.Unpacker(raw=False, strict_map_key=False)
        while True:
            for msg in up:
                assert msg[0] == 1 and msg[1] == 7, msg
                return msg[2], msg[3], fds
            data, anc, _, _ = s.recvmsg(1 << 16, socket.CMSG_SPACE(16 * 4))
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[: len(payload) - len(payload) % a.itemsize])
                    fds.extend(a)
            assert data, "connection closed"
            up.feed(data)
    finally:
        s.close()


def read_u64(fd):
    return struct.unpack("<Q", os.pread(fd, 8, 0))[0]


def test_collect(running_sandbox):
    sb = running_sandbox
    for full in (False, True):
        u = sb.call("Usage.Collect", {"Full": full})
        assert set(KEYS) <= set(u), u
        assert u["Total"] > 0, u
        if full:
            assert u["Unknown"] == 0
            assert u["Anonymous"] + u["PageCache"] + u["Tmpfs"] + u["System"] == u["Total"]
        else:
            assert u["Unknown"] + u["Mapped"] == u["Total"]
    assert sb.call("Usage.Collect")["Total"] > 0  # nil argument: Full false
    assert "MemoryUsageOpts.Full" in call_err(sb, "Usage.Collect", {"Full": "yes"})


def test_usage_fd_tracks_memory(running_sandbox):
    sb = running_sandbox
    err, res, fds = usage_fd_call(sb, {"Version": 1})
    assert err is None, err
    assert res == {"Files": 1} and len(fds) == 1, (res, fds)
    fd = fds[0]
    try:
        seals = __import__("fcntl").fcntl(fd, 1034)  # F_GET_SEALS
        assert seals & 0x2 and seals & 0x4, seals  # F_SEAL_SHRINK, F_SEAL_GROW
        assert os.fstat(fd).st_size == 16
        first = read_u64(fd)
        assert first > 0
        assert "watcher usage memfd refresh (timer 100 ms" in sb.call("debug.Stacks")
        # Grow the container's memory (page cache charged to its cgroup)
        # while the fd is held: the value the controller writes changes.
        pid, out = sb.exec(["sh", "-c", "head -c 20000000 /dev/zero > /big; sleep 3; rm -f /big"])
        with out:
            helpers.wait_until(lambda: read_u64(fd) != first, what="the usage fd changing")
            assert read_u64(fd) > 0
            sb.call("containerManager.WaitPID", {"PID": pid, "CID": sb.id})
    finally:
        os.close(fd)


def test_usage_fd_bad_version(running_sandbox):
    sb = running_sandbox
    for arg in ({"Version": 2}, {"Version": 0}):
        err, res, fds = usage_fd_call(sb, arg)
        assert fds == [] and res is None
        assert "MemoryUsageFileOpts.Version" in err and "unsupported version" in err, err
    err, _, fds = usage_fd_call(sb, {})
    assert fds == [] and "MemoryUsageFileOpts.Version" in err, err


def test_event(running_sandbox):
    sb = running_sandbox
    out = sb.call("containerManager.Event", sb.id)
    ev = out["event"]
    assert ev["type"] == "stats" and ev["id"] == sb.id
    d = ev["data"]
    assert d["pids"]["current"] >= 1
    assert d["memory"]["usage"]["usage"] > 0
    assert "limit" in d["memory"]["usage"]
    assert set(d["cpu"]["usage"]) >= {"total", "kernel", "user"}
    assert out["containerUsage"][sb.id] == d["cpu"]["usage"]["total"]
    err = call_err(sb, "containerManager.Event", "nosuch")
    assert 'container "nosuch" not found' in err
    assert call_err(sb, "containerManager.Event", 5)


def test_event_lists_the_container_network_interfaces(running_sandbox):
    """network_interfaces: every interface of the container's network
    namespace but lo, with runc's counters. One end of a veth pair is moved
    in from the host."""
    import secrets
    import subprocess
    sb = running_sandbox
    d = sb.call("containerManager.Event", sb.id)["event"]["data"]
    assert d["network_interfaces"] == [], d["network_interfaces"]  # only lo there
    name = "cvt" + secrets.token_hex(3)
    r = subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a veth pair here: {r.stderr.strip()}")
    try:
        moved = subprocess.run(["ip", "link", "set", name, "netns", str(sb.init_host_pid())],
                               capture_output=True, text=True)
        assert moved.returncode == 0, moved.stderr
        d = sb.call("containerManager.Event", sb.id)["event"]["data"]
    finally:
        # Deleting the host end removes the pair, wherever the other end is.
        subprocess.run(["ip", "link", "del", name + "p"], capture_output=True)
    (nic,) = d["network_interfaces"]
    assert nic["name"] == name
    assert set(nic) == {"name", "rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                        "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}


def test_cli_usage_and_events(running_sandbox, cli):
    sb = running_sandbox
    p = cli.run("usage", sb.id, check=True)
    u = json.loads(p.stdout)
    assert set(KEYS) <= set(u) and u["Total"] > 0
    p = cli.run("usage", "--full", sb.id, check=True)
    assert json.loads(p.stdout)["Unknown"] == 0
    p = cli.run("usage", "--fd", sb.id, check=True)
    fdv = json.loads(p.stdout)
    assert fdv["Total"] > 0 and "Mapped" in fdv
    p = cli.run("events", "--stats", sb.id, check=True)
    lines = p.stdout.splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == sb.id
    assert ev["data"]["pids"]["current"] >= 1
    p = cli.run("events", "--stats", "--interval", "bogus", sb.id)
    assert p.returncode != 0 and "--interval" in p.stderr
    p = cli.run("events", "--stats", "nosuch-container")
    assert p.returncode != 0


def test_cli_events_stream_ends_with_container(running_sandbox, cli):
    sb = running_sandbox
    proc = subprocess.Popen(cli.argv("events", "--interval", "100ms", sb.id),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert json.loads(first)["type"] == "stats"
        second = proc.stdout.readline()
        assert json.loads(second)["type"] == "stats"
        sb.call("containerManager.Signal", {"CID": sb.id, "Signo": 9, "Mode": 1})
        rest = proc.stdout.read()
        for line in rest.splitlines():
            json.loads(line)
        assert proc.wait(timeout=helpers.CLI_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_usage_leaves_no_fds_behind(running_sandbox, cli):
    sb = running_sandbox
    # The first UsageFD makes the one memfd boot keeps for good.
    _, _, fds = usage_fd_call(sb, {"Version": 1})
    for fd in fds:
        os.close(fd)
    before = helpers.settled_fd_count(sb.boot_pid)
    held = []
    for _ in range(3):
        sb.call("Usage.Collect", {"Full": True})
        sb.call("Usage.Collect", {"Full": False})
        err, _, fds = usage_fd_call(sb, {"Version": 1})
        assert err is None
        held.extend(fds)
        usage_fd_call(sb, {"Version": 9})
        sb.call("containerManager.Event", sb.id)
        call_err(sb, "containerManager.Event", "nosuch")
        cli.run("usage", "--fd", sb.id, check=True)
        cli.run("events", "--stats", sb.id, check=True)
    try:
        assert helpers.settled_fd_count(sb.boot_pid) == before
        assert len(held) == 3
    finally:
        for fd in held:
            os.close(fd)

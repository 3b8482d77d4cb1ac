"""Hostile input on the control socket. Every case must get a clear error
(asserted on its text) and leave the sandbox serving: a new connection
works after each case, and so does the same one when the stream is still
in sync."""
import os
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import msgpack
import pytest

import helpers
from helpers import (M_EXEC, M_PROCS, M_SIGNAL, M_START, M_STATE, M_WAIT, M_WAITPID, Closed,
                     exec_args)

MSGID = 7
MiB = 1 << 20


@pytest.fixture(scope="module")
def shared(module_env):
    return module_env.new_sandbox(start=True)


def pk(obj):
    return msgpack.packb(obj, use_bin_type=True)


def req(method, arg, msgid=MSGID):
    return pk([0, msgid, method, [arg]])


def raw_str(b):
    """A msgpack str holding arbitrary bytes (possibly invalid UTF-8)."""
    assert len(b) < 256
    return bytes([0xD9, len(b)]) + b


def nested(depth):
    v = 1
    for _ in range(depth):
        v = [v]
    return v


@dataclass
class Case:
    name: str
    build: Callable[[str], bytes]
    # Substrings the error must contain; None: the call succeeds.
    errors: Optional[list] = field(default_factory=list)
    exact: Optional[str] = None  # the whole error string
    result: object = "unchecked"  # expected result when it succeeds
    any_reply: bool = False  # any answer (error or result) is fine
    nfds: int = 0
    msgid: Optional[int] = MSGID  # msgid the reply must carry (None: unknown)
    closed: bool = False  # the server must close the connection after answering
    noreply: bool = False  # a notification: no answer at all


def st(sid):
    return req(M_STATE, sid)


def ex(sid, **kw):
    arg = exec_args(sid, ["true"])
    for k, v in kw.items():
        if v is DEL:
            del arg[k]
        else:
            arg[k] = v
    return req(M_EXEC, arg)


DEL = object()
INVALID = ["invalid message:"]


def sg(sid, signo=15, pid=0, mode=0, cid=None):
    return req(M_SIGNAL, {"CID": cid or sid, "Signo": signo, "PID": pid, "Mode": mode})


CASES = [
    # --- bad frames
    Case("not_array", lambda s: pk({"a": 1}), INVALID, msgid=None),
    Case("not_array_int", lambda s: pk(42), INVALID, msgid=None),
    Case("three_elements", lambda s: pk([0, MSGID, M_STATE]), INVALID, msgid=None),
    Case("five_elements", lambda s: pk([0, MSGID, M_STATE, [s], 1]), INVALID, msgid=None),
    Case("type_1_response", lambda s: pk([1, MSGID, None, None]), INVALID, msgid=None),
    Case("type_3", lambda s: pk([3, MSGID, M_STATE, [s]]), INVALID, msgid=None),
    Case("type_2_notification", lambda s: pk([2, M_STATE, [s]]), noreply=True),
    Case("type_2_notification_unknown", lambda s: pk([2, "no.such", [None]]), noreply=True),
    Case("msgid_negative", lambda s: pk([0, -1, M_STATE, [s]]), INVALID, msgid=None),
    Case("msgid_string", lambda s: pk([0, "7", M_STATE, [s]]), INVALID, msgid=None),
    Case("msgid_2_40", lambda s: pk([0, 2**40, M_STATE, [s]]), INVALID, msgid=None),
    Case("msgid_float", lambda s: pk([0, 7.0, M_STATE, [s]]), INVALID, msgid=None),
    Case("method_int", lambda s: pk([0, MSGID, 5, [s]]), INVALID, msgid=None),
    Case("method_nil", lambda s: pk([0, MSGID, None, [s]]), INVALID, msgid=None),
    Case("params_not_array", lambda s: pk([0, MSGID, M_STATE, s]), INVALID, msgid=None),
    Case("params_empty", lambda s: pk([0, MSGID, M_STATE, []]), INVALID, msgid=None),
    Case("params_two", lambda s: pk([0, MSGID, M_STATE, [s, s]]), INVALID, msgid=None),
    Case("nesting_100", lambda s: req(M_STATE, nested(100)),
         ["invalid message: nesting deeper than 32"], msgid=None),
    # --- methods
    Case("unknown_method", lambda s: req("no.such", None), exact="unknown method"),
    Case("method_1mib", lambda s: req("m" * MiB, None), exact="unknown method"),
    Case("method_invalid_utf8",
         lambda s: bytes([0x94, 0x00, MSGID]) + raw_str(b"\xff\xfeState") + pk([s]),
         exact="unknown method"),
    Case("start_root_again", lambda s: req(M_START, s),
         ["sandbox is not in created state, cannot start root container"]),
    # --- wrong types
    Case("state_int", lambda s: req(M_STATE, 5), ["expected string"]),
    Case("state_map", lambda s: req(M_STATE, {"a": 1}), ["expected string"]),
    Case("state_nil", lambda s: req(M_STATE, None), ["expected string"]),
    Case("state_invalid_utf8",
         lambda s: bytes([0x94, 0x00, MSGID]) + pk(M_STATE) + bytes([0x91]) + raw_str(b"\xff\xfe"),
         any_reply=True),
    Case("exec_argv_int", lambda s: ex(s, argv=1), ["ExecArgs.argv", "expected array"]),
    Case("exec_argv_ints", lambda s: ex(s, argv=[1, 2]), ["ExecArgs.argv", "string"]),
    Case("exec_argv_missing", lambda s: ex(s, argv=DEL), ["ExecArgs.argv"]),
    Case("exec_argv_empty", lambda s: ex(s, argv=[]), ["ExecArgs.argv"]),
    Case("exec_envv_string", lambda s: ex(s, envv="PATH=/bin"), ["ExecArgs.envv", "expected array"]),
    Case("exec_envv_no_equals", lambda s: ex(s, envv=["FOO"]),
         exact="resolving env: invalid variable: FOO"),
    Case("exec_filename_int", lambda s: ex(s, filename=3), ["filename", "expected string"]),
    Case("exec_kuid_negative", lambda s: ex(s, KUID=-1), ["KUID"]),
    Case("exec_kuid_2_33", lambda s: ex(s, KUID=2**33), ["KUID"]),
    Case("exec_guestfds_strings", lambda s: ex(s, GuestFDs=["a"], Files=0), ["GuestFDs"]),
    Case("exec_capabilities_string", lambda s: ex(s, Capabilities="x"), ["Capabilities"]),
    Case("exec_cid_int", lambda s: ex(s, ContainerID=5), ["ContainerID", "expected string"]),
    Case("exec_missing_binary", lambda s: ex(s, argv=["nosuchbin"]),
         ['error finding executable "nosuchbin" in PATH']),
    Case("exec_files_mismatch", lambda s: ex(s, GuestFDs=[0, 1, 2], Files=1), nfds=1,
         exact="length of payload files does not match length of file descriptor array"),
    Case("exec_guest_fd_negative", lambda s: ex(s, GuestFDs=[-1], Files=1), nfds=1,
         exact="guest file descriptors must be 0 or greater"),
    Case("exec_arg_not_map", lambda s: req(M_EXEC, [1, 2]), ["expected map"]),
    Case("exec_argv_100000", lambda s: ex(s, argv=["true"] + ["x"] * 100000), any_reply=True),
    Case("waitpid_pid_string", lambda s: req(M_WAITPID, {"PID": "x", "CID": s}), ["PID"]),
    Case("waitpid_pid_0", lambda s: req(M_WAITPID, {"PID": 0, "CID": s}),
         exact="PID (0) must be positive"),
    Case("waitpid_pid_negative", lambda s: req(M_WAITPID, {"PID": -5, "CID": s}),
         exact="PID (-5) must be positive"),
    Case("waitpid_unknown_pid", lambda s: req(M_WAITPID, {"PID": 999, "CID": s}),
         exact="waiting for PID 999: no such process"),
    Case("signal_mode_9", lambda s: sg(s, mode=9), ["Mode", "9"]),
    Case("signal_signo_string", lambda s: sg(s, signo="TERM"), ["Signo"]),
    Case("signal_signo_1000", lambda s: sg(s, signo=1000), ["Signo", "1000"]),
    Case("signal_signo_0_probe", lambda s: sg(s, signo=0), None, result=None),
    Case("signal_pid_negative", lambda s: sg(s, pid=-3), exact="PID (-3) must be positive"),
    Case("signal_all_with_pid", lambda s: sg(s, pid=4, mode=1),
         exact="PID (4) cannot be set when signaling all processes"),
    Case("signal_group_pgid_0", lambda s: sg(s, mode=3),
         exact="PGID must be set when signaling a process group"),
    Case("signal_tty_none", lambda s: sg(s, mode=2), exact="no TTY attached"),
    # --- unknown containers in every method
    Case("unknown_cid_state", lambda s: req(M_STATE, "nope"), None, result=3),
    Case("unknown_cid_processes", lambda s: req(M_PROCS, "nope"), None, result=[]),
    Case("unknown_cid_exec", lambda s: ex("nope"), exact='container "nope" not found'),
    Case("unknown_cid_wait", lambda s: req(M_WAIT, "nope"), exact='container "nope" not found'),
    Case("unknown_cid_waitpid", lambda s: req(M_WAITPID, {"PID": 5, "CID": "nope"}),
         ['container "nope" not found']),
    Case("unknown_cid_signal", lambda s: sg(s, cid="nope"), exact='container "nope" not found'),
    # --- files
    Case("files_200", lambda s: ex(s, GuestFDs=list(range(200)), Files=200), exact="too many files"),
    Case("files_2_but_1", lambda s: ex(s, GuestFDs=[0, 1], Files=2), nfds=1,
         exact="request declares 2 files but 1 arrived"),
    Case("files_negative", lambda s: ex(s, Files=-1), ["Files"]),
    # --- sizes and garbage (the stream cannot be resynchronised: closed)
    Case("string_17mib", lambda s: req(M_STATE, "a" * (17 * MiB)), ["message too large"],
         msgid=None, closed=True),
    Case("garbage_c1", lambda s: b"\xc1\xc1", ["invalid message: cannot parse msgpack"],
         msgid=None, closed=True),
]


def check_new_connection(sb):
    with sb.raw() as c:
        assert c.call(M_STATE, sb.id) == 2
    assert helpers.pid_alive(sb.boot_pid)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile(shared, case):
    sb = shared
    data = case.build(sb.id)
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(case.nfds)]
    with sb.raw() as conn:
        try:
            conn.send(data, fds)
        except (BrokenPipeError, ConnectionResetError):
            assert case.closed, "the server dropped a connection it should have kept"
        finally:
            for fd in fds:
                os.close(fd)
        if case.noreply:
            mid = conn.request(M_STATE, sb.id)
            assert conn.recv_reply(mid) == (None, 2), "a notification was answered"
        else:
            msg = conn.recv()
            assert isinstance(msg, list) and len(msg) == 4 and msg[0] == 1, msg
            if case.msgid is not None:
                assert msg[1] == case.msgid, msg
            err, res = msg[2], msg[3]
            if case.any_reply:
                assert err is None or (isinstance(err, str) and err), msg
            elif case.errors is None:
                assert err is None, err
                if case.result != "unchecked":
                    assert res == case.result
            else:
                assert isinstance(err, str), f"expected an error, got {msg}"
                assert res is None
                if case.exact is not None:
                    assert err == case.exact
                for want in case.errors:
                    assert want in err, f"{want!r} not in {err!r}"
            if case.closed:
                conn.expect_closed()
            else:
                assert conn.call(M_STATE, sb.id) == 2
    check_new_connection(sb)


def test_garbage_on_second_connection(shared):
    sb = shared
    with sb.raw() as first:
        assert first.call(M_STATE, sb.id) == 2
        with sb.raw() as second:
            second.send(b"\xc1\xc1")
            msg = second.recv()
            assert msg[2] == "invalid message: cannot parse msgpack"
            second.expect_closed()
        assert first.call(M_STATE, sb.id) == 2
        # A truncated frame, then hang up mid-message.
        with sb.raw() as third:
            third.send(req(M_STATE, sb.id)[:-3])
        assert first.call(M_STATE, sb.id) == 2
        # Half a frame on a live connection: the rest completes it later.
        with sb.raw() as fourth:
            frame = req(M_STATE, sb.id)
            fourth.send(frame[:5])
            assert first.call(M_STATE, sb.id) == 2
            time.sleep(0.05)
            fourth.send(frame[5:])
            assert fourth.recv_reply(MSGID) == (None, 2)
        assert first.call(M_STATE, sb.id) == 2


def test_client_library_survives_garbage_elsewhere(shared):
    cm = helpers.client_module()
    with shared.client() as c:
        assert c.call(M_STATE, shared.id) == 2
        with shared.client() as bad:
            bad.raw_send(b"\xc1\xc1")
            # A connection-level error (no msgid), then the server hangs up.
            assert bad.recv() == (None, "invalid message: cannot parse msgpack", None, [])
            with pytest.raises(cm.ProtocolError, match="connection closed by the sandbox"):
                bad.recv()
        assert c.call(M_STATE, shared.id) == 2
        with pytest.raises(cm.RemoteError) as e:
            c.call("no.such.method")
        assert str(e.value) == "unknown method"
        assert c.call(M_STATE, shared.id) == 2


@pytest.mark.parametrize("header", [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff"],
                         ids=["array32", "map32"])
def test_huge_container_header(shared, header):
    """A header announcing 4G elements is not refused by itself: the framer
    counts bytes as they come, so the server waits for the rest and keeps
    serving everyone else; once more than the 16 MiB limit has arrived it
    answers "message too large" (no msgid: the header never got that far)
    and hangs up. The first message on the connection is that error, so
    the header alone got no answer."""
    sb = shared
    with sb.raw() as conn:
        conn.send(header)
        # The single-threaded server has read the header by the time it has
        # answered a connection opened after it: it has not answered it.
        check_new_connection(sb)
        assert not select.select([conn.sock], [], [], 0)[0], "the server answered the header alone"
        filler = b"\xc0" * (1 << 20)  # nils: valid elements (and map keys/values)
        try:
            for _ in range(17):
                conn.send(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still writing: the answer is queued
        assert conn.recv() == [1, None, "message too large (limit 16777216 bytes)", None]
        conn.expect_closed()
    check_new_connection(sb)


def test_unclaimed_fds_are_closed(shared):
    sb = shared
    with sb.raw() as conn:
        assert conn.call(M_STATE, sb.id) == 2
        before = helpers.fd_count(sb.boot_pid)
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(3)]
        try:
            for _ in range(5):
                assert conn.call(M_STATE, sb.id, fds=fds) == 2
            # Declared files on an error path are closed too.
            with pytest.raises(RuntimeError):
                conn.call(M_EXEC, exec_args(sb.id, ["nosuchbin"], guest_fds=[0, 1, 2]), fds=fds)
            with pytest.raises(RuntimeError):
                conn.call(M_EXEC, exec_args("nope", ["true"], guest_fds=[0, 1, 2]), fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        assert conn.call(M_STATE, sb.id) == 2
        helpers.wait_until(lambda: helpers.fd_count(sb.boot_pid) == before, timeout=3,
                           what=f"boot fd count back to {before} "
                                f"(now {helpers.fd_count(sb.boot_pid)})")


# The connection limit follows boot's RLIMIT_NOFILE: (soft - 1 - 16 - 256) / 2
# (rpc/server.c). A boot started with a soft limit of 785 allows 256.
NOFILE_FOR_256 = 785


@pytest.fixture
def conn_limited(env):
    """A running sandbox whose boot has the soft RLIMIT_NOFILE that makes
    its connection limit 256 (boot inherits the CLI's, the CLI ours)."""
    import resource
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_FOR_256, old[1]))
    try:
        return env.new_sandbox(start=True)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def test_too_many_connections(conn_limited):
    """Idle connections past the limit push out the least recently active
    idle ones, each told why; a connection waiting for a reply stays."""
    sb = conn_limited
    keep = sb.raw()
    keep.request(M_WAIT, sb.id)  # parked while the init runs: never dropped
    assert keep.call(M_STATE, sb.id) == 2
    conns = []
    try:
        for _ in range(300):
            conns.append(helpers.connect_retry(sb.sock, helpers.TIMEOUT))
        # The listen queue is first in, first out: once a newer connection
        # is answered, boot has accepted (and evicted for) all 300, before
        # any of them sends a request.
        probe = helpers.connect_retry(sb.sock, helpers.TIMEOUT)
        conns.append(probe)
        probe.sendall(req(M_STATE, sb.id, msgid=9999))
        un = msgpack.Unpacker(raw=False)
        while True:
            data = probe.recv(4096)
            assert data, "the probe connection was closed"
            un.feed(data)
            got = next(iter(un), None)
            if got is not None:
                assert got[1] == 9999 and got[3] == 2, got
                break
        conns.pop().close()  # its place is free again; the evictions are done
        ok = dropped = 0
        for i, s in enumerate(conns):
            try:
                s.sendall(req(M_STATE, sb.id, msgid=i))
            except OSError:
                pass  # dropped and already closed by the server
        for s in conns:
            un = msgpack.Unpacker(raw=False)
            msg = None
            try:
                while msg is None:
                    data = s.recv(4096)
                    if not data:
                        break
                    un.feed(data)
                    for m in un:
                        msg = m
                        break
            except (ConnectionResetError, BrokenPipeError):
                pass
            if msg is None:
                dropped += 1
            elif msg[2] is None:
                assert msg[3] == 2
                ok += 1
            else:
                assert msg[2].startswith("connection closed: idle while the connection table "
                                         "was full"), msg
                dropped += 1
        # keep + 300 + the probe = 302 connections for 256 places.
        assert dropped >= 302 - 256, (ok, dropped)
        assert ok == 300 - dropped, (ok, dropped)
        assert keep.call(M_STATE, sb.id) == 2
    finally:
        for s in conns:
            s.close()
        keep.close()
    helpers.wait_until(lambda: _new_conn_ok(sb), what="the sandbox to accept again")


def _new_conn_ok(sb):
    try:
        with sb.raw() as c:
            return c.call(M_STATE, sb.id) == 2
    except (OSError, Closed, RuntimeError, AssertionError):
        return False  # still over the limit: refused with "too many connections"


def test_too_many_connections_message(conn_limited):
    """A dropped idle connection is told why; so is a new connection refused
    because every one of the 256 waits for a reply."""
    sb = conn_limited
    conns = []
    told = False
    try:
        for _ in range(270):
            conns.append(helpers.connect_retry(sb.sock, 2))
        for s in conns[:14]:
            try:
                data = s.recv(4096)
            except OSError:
                continue
            if data and b"connection closed: idle while the connection table was full" in data:
                told = True
    finally:
        for s in conns:
            s.close()
    assert told
    helpers.wait_until(lambda: _new_conn_ok(sb), what="the sandbox to accept again")

    busy = []
    try:
        for _ in range(256):
            c = helpers.RawConn(sb.sock)
            busy.append(c)
            c.request(M_WAIT, sb.id)  # parked while the init runs
            assert c.call(M_STATE, sb.id) == 2
        with helpers.RawConn(sb.sock) as extra:
            err, res = extra.recv_reply(None)
            assert (err, res) == ("too many connections (limit 256)", None)
            extra.expect_closed()
    finally:
        for c in busy:
            c.close()
    helpers.wait_until(lambda: _new_conn_ok(sb), what="the sandbox to accept again")


def test_pipelined_calls_out_of_order(shared):
    """A parked call does not block later calls on the same connection."""
    sb = shared
    with sb.raw() as conn:
        pid, out = sb.exec(["sleep", "0.5"], conn=conn)
        out.close()
        m1 = conn.request(M_WAITPID, {"PID": pid, "CID": sb.id})
        m2 = conn.request(M_STATE, sb.id)
        assert conn.recv_reply(m2) == (None, 2)
        assert conn.recv_reply(m1) == (None, 0)

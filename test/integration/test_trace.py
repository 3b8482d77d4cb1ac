"""Trace sessions and strace (docs/API.md: containerManager.CreateTraceSession,
DeleteTraceSession, ListTraceSessions, Logging.Change's strace keys): points
from the controller, seccomp notifications of the armed syscalls and the
proc connector, sent to a remote SOCK_SEQPACKET sink."""
import json
import os
import socket
import struct
import time

import msgpack
import pytest

import helpers

MSG_START, MSG_CLONE_INFO, MSG_EXECVE_INFO, MSG_EXIT_NOTIFY, MSG_TASK_EXIT = 1, 2, 3, 4, 5
MSG_RAW, MSG_OPEN = 6, 7
CTX = ["time", "thread_id", "group_id", "container_id", "credentials", "cwd", "process_name",
       "parent_thread_group_id"]


class TraceCli(helpers.Cli):
    """The CLI with global flags before the verb (--trace-syscalls, --log)."""

    def __init__(self, binary, root, *flags):
        super().__init__(binary, root)
        self.flags = list(flags)

    def argv(self, *args):
        return [self.binary, "--root", self.root, *self.flags, *map(str, args)]


def traced_sandbox(env, *flags, start=False, args=("sleep", "100")):
    cli = TraceCli(env.cvisor, env.root, *flags)
    sb = helpers.Sandbox(cli, env.make_bundle(args=list(args)), sid="trace-" + helpers.new_id())
    env.sandboxes.append(sb)
    sb.create()
    if start:
        sb.start()
    return sb


def point(name, ctx=CTX, **kw):
    return {"name": name, "context_fields": list(ctx), **kw}


def session(points, sinks=({"name": "remote"},), files=None, force=False, **kw):
    """CreateTraceSession's argument; Files defaults to one per remote sink."""
    if files is None:
        files = sum(1 for s in sinks if s.get("name") == "remote")
    arg = {"Config": {"name": "Default", "points": list(points), "sinks": list(sinks), **kw},
           "Files": files}
    if force:
        arg["Force"] = True
    return arg


def seqpacket():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b.settimeout(helpers.TIMEOUT)
    return a, b


def read_msgs(sock, until, timeout=helpers.TIMEOUT):
    """Messages (type, dropped, payload) until until(list) holds."""
    out = []
    deadline = time.monotonic() + timeout
    while not until(out):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(1 << 16)
        except socket.timeout:
            raise AssertionError(f"timed out; got {[(t, p) for t, _, p in out]}")
        hs, typ, dropped = struct.unpack_from("<HHI", data)
        assert hs >= 8
        out.append((typ, dropped, msgpack.unpackb(data[hs:], raw=False)))
    return out


def call_err(sb, method, arg=None, fds=()):
    with sb.raw() as r:
        err, res = r.recv_reply(r.request(method, arg, fds=fds))
        assert err is not None, f"{method}({arg!r}) answered {res!r}"
        # The connection and the sandbox carry on.
        assert r.call(helpers.M_STATE, sb.id) in (1, 2)
        return err

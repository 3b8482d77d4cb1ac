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


def test_acceptance_start_execve_openat_exit_in_order(env):
    sb = traced_sandbox(env, "--trace-syscalls", "default")
    a, b = seqpacket()
    with a, b:
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("container/start"), point("sentry/execve"),
                                point("sentry/task_exit"), point("syscall/openat/enter")]),
                       fds=[a.fileno()]) is None
        a.close()
        sb.start()
        status, out = sb.run_exec(["cat", "/etc/hostname"])
        assert status == 0 and out.strip()

        def cat_pid(msgs):
            return next((m["context_data"]["thread_id"] for t, _, m in msgs
                         if t == MSG_EXECVE_INFO and m["binary_path"] == "/bin/cat"), None)

        def done(msgs):
            pid = cat_pid(msgs)
            return pid and any(t == MSG_TASK_EXIT and m["context_data"]["thread_id"] == pid
                               for t, _, m in msgs)

        msgs = read_msgs(b, done)
    types = [t for t, _, _ in msgs]
    i_start = types.index(MSG_START)
    start = msgs[i_start][2]
    assert start["id"] == sb.id and start["args"] == ["sleep", "100"]
    i_exec = next(i for i, (t, _, m) in enumerate(msgs)
                  if t == MSG_EXECVE_INFO and m["binary_path"] == "/bin/cat")
    assert msgs[i_exec][2]["argv"] == ["cat", "/etc/hostname"]
    i_open = next(i for i, (t, _, m) in enumerate(msgs)
                  if t == MSG_OPEN and m["pathname"] == "/etc/hostname")
    pid = cat_pid(msgs)
    i_exit = next(i for i, (t, _, m) in enumerate(msgs)
                  if t == MSG_TASK_EXIT and m["context_data"]["thread_id"] == pid)
    assert i_start < i_exec < i_open < i_exit, types
    # Root-namespace pids (the exec'd cat is not pid 1) and the container id.
    assert pid > 1
    for i in (i_exec, i_open, i_exit):
        ctx = msgs[i][2]["context_data"]
        assert ctx["container_id"] == sb.id
        assert ctx["thread_id"] == pid and ctx["thread_group_id"] == pid
        assert ctx["time_ns"] > 0
    assert msgs[i_start][2]["context_data"]["thread_id"] == 1
    # The exit names cat even when it was reaped before boot read the event.
    assert msgs[i_exit][2]["context_data"]["process_name"] == "cat"
    assert msgs[i_open][2]["flags"] & 3 == os.O_RDONLY
    assert msgs[i_open][2]["context_data"]["credentials"]["effective_uid"] == 0
    # The runtime's own set-up before the exec is not reported.
    assert not any(t == MSG_OPEN and "cap_last_cap" in m["pathname"] for t, _, m in msgs)
    # Nothing was dropped.
    assert all(d == 0 for _, d, _ in msgs)
    lst = sb.call("containerManager.ListTraceSessions")
    assert lst == [{"name": "Default", "sinks": [{"name": "remote",
                                                 "status": {"DroppedCount": 0}}]}]


def test_clone_exit_notify_and_raw_points(env):
    sb = traced_sandbox(env, "--trace-syscalls", "default", start=True)
    a, b = seqpacket()
    nr_openat = 257
    with a, b:
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("sentry/clone"), point("sentry/exit_notify_parent"),
                                point(f"syscall/sysno/{nr_openat}/enter", ctx=["container_id"])]),
                       fds=[a.fileno()]) is None
        a.close()
        status, _ = sb.run_exec(["sh", "-c", "cat /etc/hostname >/dev/null; exit 3"])
        assert status == helpers.status_of(3)

        def done(msgs):
            return any(t == MSG_EXIT_NOTIFY and m["exit_status"] == 3 << 8 for t, _, m in msgs)

        msgs = read_msgs(b, done)
    clones = [m for t, _, m in msgs if t == MSG_CLONE_INFO]
    # sh forks cat: a clone made inside the container, with both pids.
    assert any(m["context_data"]["process_name"] == "sh" and m["created_thread_id"] > 1
               for m in clones), clones
    raw = [m for t, _, m in msgs if t == MSG_RAW]
    assert raw and all(m["sysno"] == nr_openat and set(m["context_data"]) == {"container_id"}
                       for m in raw)
    exits = [m for t, _, m in msgs if t == MSG_EXIT_NOTIFY]
    assert all("cwd" not in m["context_data"] for m in exits)


def test_full_sink_drops_and_counts_while_rpcs_stay_prompt(env):
    sb = traced_sandbox(env, "--trace-syscalls", "openat", start=True)
    a, b = seqpacket()  # b is never read until the end
    # A small send buffer: the queue fills after a few messages.
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with a, b:
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("syscall/openat/enter")]), fds=[a.fileno()]) is None
        a.close()
        with sb.raw() as conn:
            pid, out = sb.exec(["sh", "-c", "i=0; while [ $i -lt 300 ]; do "
                                "read x </etc/hostname; i=$((i+1)); done"], conn=conn)
            with out:
                # The loop runs while the sink is full: calls keep answering.
                worst = 0.0
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    t0 = time.monotonic()
                    conn.call(helpers.M_STATE, sb.id)
                    worst = max(worst, time.monotonic() - t0)
                    lst = conn.call("containerManager.ListTraceSessions")
                    if lst[0]["sinks"][0]["status"]["DroppedCount"] >= 200:
                        break
                    time.sleep(0.01)
                assert conn.call(helpers.M_WAITPID, {"PID": pid, "CID": sb.id}) == 0
                assert worst < 1.0, worst
        dropped = sb.call("containerManager.ListTraceSessions")[0]["sinks"][0]["status"][
            "DroppedCount"]
        assert 200 <= dropped <= 301
        # What was queued arrives; a later message carries the dropped count.
        b.setblocking(False)
        got = []
        while True:
            try:
                got.append(struct.unpack_from("<HHI", b.recv(1 << 16)))
            except BlockingIOError:
                break
        assert got and all(t == MSG_OPEN for _, t, _ in got)
        sb.run_exec(["cat", "/etc/hostname"])
        b.settimeout(helpers.TIMEOUT)
        _, typ, d = struct.unpack_from("<HHI", b.recv(1 << 16))
        assert typ == MSG_OPEN and d == dropped


def test_create_errors_name_the_field_and_change_nothing(env):
    sb = traced_sandbox(env, "--trace-syscalls", "openat,chdir", start=True)
    M = "containerManager.CreateTraceSession"
    assert call_err(sb, M, {}) == "CreateTraceSessionArgs.Config: missing"
    assert call_err(sb, M, None) == "CreateTraceSessionArgs: expected map, got nil"
    err = call_err(sb, M, {"Config": {"name": "Other"}})
    assert err == 'SessionConfig.name: only a single "Default" session is supported (got "Other")'
    err = call_err(sb, M, {"Config": {"name": "Default", "points": "x"}})
    assert err == "CreateTraceSessionArgs.Config.points: expected array, got string", err
    cases = [
        ([point("sentry/nope")], 'point "sentry/nope" not found'),
        ([point("syscall/read/enter")],
         'point "syscall/read/enter" not found: syscall read is not armed with a schematised '
         "point (cvisor --trace-syscalls; syscall/sysno/N/enter for the raw form)"),
        ([point("syscall/sysno/0/enter")],
         'point "syscall/sysno/0/enter" not found: syscall 0 is not armed (cvisor '
         "--trace-syscalls)"),
        ([point("syscall/openat/exit")],
         'point "syscall/openat/exit" not found: exit points need the syscall\'s result, which '
         "a seccomp CONTINUE answer never sees"),
        ([point("container/start", ctx=["nope"])],
         'point "container/start": context field "nope" not found'),
        ([{"name": "container/start", "optional_fields": ["nope"]}],
         'point "container/start": optional field "nope" not found'),
    ]
    for points, want in cases:
        assert call_err(sb, M, session(points, sinks=[{"name": "null"}])) == want
    # ignore_missing skips what cannot be had.
    assert sb.call(M, session([point("sentry/nope"), point("syscall/read/enter"),
                               point("container/start", ctx=["nope"])],
                              sinks=[{"name": "null"}], ignore_missing=True)) is None
    assert call_err(sb, M, session([], sinks=[{"name": "null"}])) == \
        'session "Default" already exists'
    assert sb.call(M, session([], sinks=[{"name": "null"}], force=True)) is None
    # Sinks, with Force so that only the sinks can be wrong.
    err = call_err(sb, M, session([], sinks=[{"name": "bogus"}], force=True))
    assert err == 'sink "bogus" not found'
    err = call_err(sb, M, session([], sinks=[{"name": "remote"}], files=0, force=True))
    assert err == ("SessionConfig.sinks[0]: the remote sink needs an fd (one per remote sink, "
                   "in order; 0 given)")
    s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with s1, s2:
        err = call_err(sb, M, session([], force=True), fds=[s1.fileno()])
        assert err == "SessionConfig.sinks[0]: the remote sink's fd is not a SOCK_SEQPACKET socket"
        lone = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with lone:
            err = call_err(sb, M, session([], force=True), fds=[lone.fileno()])
            assert err == "SessionConfig.sinks[0]: the remote sink's socket is not connected"
        a, b = seqpacket()
        with a, b:
            err = call_err(sb, M, session([], sinks=[{"name": "null"}], files=1, force=True),
                           fds=[a.fileno()])
            assert err == "CreateTraceSession: 1 fds for 0 remote sinks"
    err = call_err(sb, M, session([], sinks=[{"name": "null"}] * 9, force=True))
    assert err == "SessionConfig.sinks: 9 sinks (at most 8)"
    # Every refusal left the null session of the Force above.
    assert sb.call("containerManager.ListTraceSessions") == [
        {"name": "Default", "sinks": [{"name": "null", "status": {"DroppedCount": 0}}]}]


def test_delete_and_list(env):
    sb = traced_sandbox(env, start=True)  # nothing armed: fixed points only
    D, L = "containerManager.DeleteTraceSession", "containerManager.ListTraceSessions"
    assert sb.call(L) == []
    assert call_err(sb, D, "Default") == 'session "Default" not found'
    err = call_err(sb, "containerManager.CreateTraceSession",
                   session([point("syscall/openat/enter")], sinks=[{"name": "null"}]))
    assert "syscall openat is not armed" in err
    a, b = seqpacket()
    with a, b:
        before = helpers.settled_fd_count(sb.boot_pid)
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("container/start"), point("sentry/task_exit")]),
                       fds=[a.fileno()]) is None
        # The sink's fd and the proc connector's socket.
        assert helpers.settled_fd_count(sb.boot_pid) == before + 2
        assert call_err(sb, D, "Other") == 'session "Other" not found'
        assert call_err(sb, D, 5).startswith("DeleteTraceSession name: ")
        assert sb.call(D, "Default") is None
        assert sb.call(L) == []
        assert helpers.settled_fd_count(sb.boot_pid) == before
        # The sandbox's side of the sink is closed: the reader sees EOF.
        a.close()
        b.settimeout(helpers.TIMEOUT)
        assert b.recv(100) == b""


def test_no_leaks_across_sessions_and_execs(env):
    sb = traced_sandbox(env, "--trace-syscalls", "default", start=True)
    sb.run_exec(["true"])
    before = helpers.settled_fd_count(sb.boot_pid)
    for i in range(3):
        a, b = seqpacket()
        with a, b:
            assert sb.call("containerManager.CreateTraceSession",
                           session([point("sentry/execve"), point("sentry/clone"),
                                    point("syscall/openat/enter")], force=True),
                           fds=[a.fileno()]) is None
            assert sb.run_exec(["cat", "/etc/hostname"])[0] == 0
    assert sb.call("containerManager.DeleteTraceSession", "Default") is None
    # Each exec's listener is closed once its process is gone.
    assert helpers.settled_fd_count(sb.boot_pid) == before


def test_flag_errors(env, cli):
    p = TraceCli(env.cvisor, env.root, "--trace-syscalls", "clone3").run("list")
    assert p.returncode == 1
    assert "clone3 cannot be armed" in p.stderr
    p = TraceCli(env.cvisor, env.root, "--trace-syscalls", "openat,nosuch").run("list")
    assert p.returncode == 1
    assert 'unknown syscall "nosuch"' in p.stderr


def strace_lines(log):
    with open(log) as f:
        return [line for line in f if "strace: " in line]


def test_strace_lines(env):
    log = os.path.join(env.root, "trace-strace.log")
    sb = traced_sandbox(env, "--trace-syscalls", "default", "--log", log, start=True)
    L = "Logging.Change"
    err = call_err(sb, L, {"SetStrace": True, "EnableStrace": True, "StraceAllowlist": ["read"]})
    assert err == 'error configuring strace: syscall "read" is not armed (cvisor --trace-syscalls)'
    assert sb.call(L, {"SetStrace": True, "EnableStrace": True,
                       "StraceAllowlist": ["openat", "execve"]}) is None
    status, _ = sb.run_exec(["cat", "/etc/hostname"])
    assert status == 0
    lines = strace_lines(log)
    assert any('openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = ?' in line for line in lines), lines
    assert any('execve("/bin/cat", ["cat", "/etc/hostname"]) = ?' in line for line in lines)
    assert not any(" chdir(" in line for line in lines)
    n = len(lines)
    assert sb.call(L, {"SetStrace": True, "EnableStrace": False}) in (0, None)
    sb.run_exec(["cat", "/etc/hostname"])
    assert len(strace_lines(log)) == n
    # Empty allowlist: every armed syscall.
    sb.call(L, {"SetStrace": True, "EnableStrace": True})
    sb.run_exec(["sh", "-c", "cd /etc"])
    assert any(' chdir("/etc") = ?' in line for line in strace_lines(log))


def test_cli_trace_and_debug_strace(env):
    log = os.path.join(env.root, "trace-cli.log")
    cli = TraceCli(env.cvisor, env.root, "--trace-syscalls", "default", "--log", log)
    sb = helpers.Sandbox(cli, env.make_bundle(args=["sleep", "100"]),
                         sid="trace-" + helpers.new_id())
    env.sandboxes.append(sb)
    sb.create()
    path = os.path.join(env.root, "trace-mon.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(helpers.TIMEOUT)
    cfg = os.path.join(env.root, "trace-session.json")
    with open(cfg, "w") as f:
        json.dump({"trace_session": {
            "name": "Default", "points": [point("container/start"), point("syscall/openat/enter")],
            "sinks": [{"name": "remote", "config": {"endpoint": path}}]}}, f)
    with srv:
        cli.run("trace", "create", "--config", cfg, sb.id, check=True)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(helpers.TIMEOUT)
            p = cli.run("trace", "create", "--config", cfg, sb.id)
            assert p.returncode == 1 and 'session "Default" already exists' in p.stderr
            srv.settimeout(0.2)
            try:
                srv.accept()[0].close()  # the refused create's connection
            except socket.timeout:
                pass
            sb.start()
            msgs = read_msgs(conn, lambda m: any(t == MSG_START for t, _, _ in m))
            assert msgs[-1][2]["id"] == sb.id
            p = cli.run("trace", "list", sb.id, check=True)
            assert json.loads(p.stdout) == {
                "name": "Default", "sinks": [{"name": "remote", "status": {"DroppedCount": 0}}]}
            cli.run("trace", "delete", sb.id, check=True)
            assert cli.run("trace", "list", sb.id, check=True).stdout == ""
            p = cli.run("trace", "delete", sb.id)
            assert p.returncode == 1 and 'session "Default" not found' in p.stderr
    with open(cfg, "w") as f:
        json.dump({"name": "Default", "sinks": [{"name": "remote", "config": {}}]}, f)
    p = cli.run("trace", "create", "--config", cfg, sb.id)
    assert p.returncode == 1 and "sinks[0].config.endpoint: missing" in p.stderr
    p = cli.run("trace", "create", sb.id)
    assert p.returncode == 1 and "--config FILE is required" in p.stderr
    gone = {"name": "remote", "config": {"endpoint": os.path.join(env.root, "nobody.sock")}}
    with open(cfg, "w") as f:
        json.dump({"name": "Default", "sinks": [gone, {"name": "null"}]}, f)
    p = cli.run("trace", "create", "--config", cfg, sb.id)
    assert p.returncode == 1 and "remote sink: connecting to" in p.stderr
    with open(cfg, "w") as f:
        json.dump({"name": "Default", "sinks": [dict(gone, ignore_setup_error=True),
                                                {"name": "null"}]}, f)
    p = cli.run("trace", "create", "--config", cfg, sb.id)
    assert p.returncode == 0 and "sink dropped (ignore_setup_error)" in p.stderr
    assert json.loads(cli.run("trace", "list", sb.id, check=True).stdout)["sinks"] == [
        {"name": "null", "status": {"DroppedCount": 0}}]

    cli.run("debug", "--strace", "openat", sb.id, check=True)
    sb.run_exec(["cat", "/etc/hostname"])
    assert any('"/etc/hostname"' in line for line in strace_lines(log))
    p = cli.run("debug", "--strace", "read", sb.id)
    assert p.returncode == 1 and 'syscall "read" is not armed' in p.stderr
    cli.run("debug", "--strace", "off", sb.id, check=True)


def test_spec_denial_outranks_the_trace_filter(env):
    """ERRNO of the spec's profile wins over the trace filter's NOTIFY: the
    denied chdir fails and is never reported."""
    cli = TraceCli(env.cvisor, env.root, "--trace-syscalls", "default")
    cfg = helpers.fixture_config(env.fixture)
    linux = dict(cfg["linux"])
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["chdir"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": 1}]}
    sb = helpers.Sandbox(cli, env.make_bundle(args=["sleep", "100"], linux=linux),
                         sid="trace-" + helpers.new_id())
    env.sandboxes.append(sb)
    sb.create()
    sb.start()
    a, b = seqpacket()
    with a, b:
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("syscall/chdir/enter"), point("syscall/openat/enter")]),
                       fds=[a.fileno()]) is None
        status, out = sb.run_exec(["sh", "-c", "cd /etc || echo denied; cat /etc/hostname"])
        assert status == 0 and b"denied" in out
        msgs = read_msgs(b, lambda m: any(t == MSG_OPEN and p["pathname"] == "/etc/hostname"
                                          for t, _, p in m))
    assert not any(t == 13 for t, _, _ in msgs), msgs  # no Chdir message
    stacks = sb.call("debug.Stacks")
    assert "watcher seccomp listener of " + sb.id in stacks
    assert "trace session Default: 1 sinks (remote dropped 0)" in stacks


def test_execve_point_needs_arming(env):
    sb = traced_sandbox(env, start=True)
    err = call_err(sb, "containerManager.CreateTraceSession",
                   session([point("sentry/execve")], sinks=[{"name": "null"}]))
    assert err == 'point "sentry/execve" not found: execve is not armed (cvisor --trace-syscalls)'
    # Nothing armed: no listener, nothing in the way.
    assert "seccomp listener" not in sb.call("debug.Stacks")


def test_traced_in_a_user_namespace_and_without_privileges(env):
    """The trace filter goes in while the process still has CAP_SYS_ADMIN of
    its own user namespace, whatever the spec's no_new_privs and user."""
    import subprocess
    import tempfile
    host_base = 100000
    # Under /tmp itself: the mapped root must be able to reach it.
    top = tempfile.mkdtemp(prefix="trace-userns-", dir=env.root)
    os.chmod(top, 0o755)
    os.chmod(env.root, 0o755)
    rootfs = os.path.join(top, "rootfs")
    subprocess.run(["cp", "-a", os.path.join(env.fixture, "rootfs"), str(rootfs)], check=True)
    subprocess.run(["chown", "-R", f"{host_base}:{host_base}", str(rootfs)], check=True)
    linux = dict(helpers.fixture_config(env.fixture)["linux"])
    linux["namespaces"] = linux["namespaces"] + [{"type": "user"}]
    maps = [{"containerID": 0, "hostID": host_base, "size": 65536}]
    linux["uidMappings"] = linux["gidMappings"] = maps
    dest = env.make_bundle(args=["sleep", "100"], linux=linux,
                           process={"noNewPrivileges": True, "user": {"uid": 1000, "gid": 1000}})
    cfg = helpers.fixture_config(dest)
    cfg["root"]["path"] = str(rootfs)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)
    cli = TraceCli(env.cvisor, env.root, "--trace-syscalls", "default")
    sb = helpers.Sandbox(cli, dest, sid="trace-" + helpers.new_id())
    env.sandboxes.append(sb)
    sb.create()
    a, b = seqpacket()
    with a, b:
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("sentry/execve"), point("syscall/openat/enter")]),
                       fds=[a.fileno()]) is None
        sb.start()
        status, out = sb.run_exec(["cat", "/etc/hostname"], uid=1000, gid=1000)
        assert status == 0 and out.strip()
        msgs = read_msgs(b, lambda m: any(t == MSG_OPEN and p["pathname"] == "/etc/hostname"
                                          for t, _, p in m))
    execs = [p["binary_path"] for t, _, p in msgs if t == MSG_EXECVE_INFO]
    assert "/bin/sleep" in execs and "/bin/cat" in execs
    opened = next(p for t, _, p in msgs if t == MSG_OPEN and p["pathname"] == "/etc/hostname")
    # Credentials as the host sees them (boot reads /proc from the host's user namespace).
    assert opened["context_data"]["credentials"]["effective_uid"] == host_base + 1000


def test_subcontainer_is_traced_under_its_own_id(env):
    import test_pods
    sb = traced_sandbox(env, "--trace-syscalls", "default", start=True)
    a, b = seqpacket()
    with a, b:
        assert sb.call("containerManager.CreateTraceSession",
                       session([point("sentry/execve", ctx=["container_id"]),
                                point("syscall/openat/enter", ctx=["container_id"]),
                                point("container/start", ctx=["container_id"]),
                                point("sentry/task_exit", ctx=["container_id"])]),
                       fds=[a.fileno()]) is None
        cid = "trace-sub-" + helpers.new_id()[-8:]
        out, _ = test_pods.start_sub(sb, env, cid, ["sleep", "100"])
        out.close()
        _, status, data = test_pods.exec_in(sb, cid, ["cat", "/etc/hostname"])
        assert status == 0 and data.strip()
        msgs = read_msgs(b, lambda m: any(t == MSG_OPEN and p["pathname"] == "/etc/hostname"
                                          for t, _, p in m))
        # Its tasks are forgotten with it: the sub's sleep exits after the
        # container (and its id) is gone, and the sandbox carries on.
        assert sb.call(test_pods.M_DESTROY, cid) is None
        assert sb.run_exec(["true"])[0] == 0
        read_msgs(b, lambda m: any(t == MSG_TASK_EXIT and p["context_data"]["container_id"] == sb.id
                                   for t, _, p in m))
    by_path = {(t, p.get("binary_path") or p.get("pathname")): p["context_data"]["container_id"]
               for t, _, p in msgs}
    assert by_path[(MSG_EXECVE_INFO, "/bin/sleep")] == cid
    assert by_path[(MSG_EXECVE_INFO, "/bin/cat")] == cid
    assert by_path[(MSG_OPEN, "/etc/hostname")] == cid
    starts = [p for t, _, p in msgs if t == MSG_START]
    assert [(p["id"], p["args"], p["context_data"]["container_id"]) for p in starts] == \
        [(cid, ["sleep", "100"], cid)]

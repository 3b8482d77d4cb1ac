"""Observability methods (docs/API.md "Metrics", "Logging.Change",
"debug.Stacks", "containerManager.ProcfsDump", "Profile.*") against a
running container, their argument errors, and the CLI verbs that print them."""
import json
import os
import re

import pytest

import helpers


def call_err(sb, method, arg=None):
    """The error string of a call that must fail (the connection stays usable)."""
    with sb.raw() as r:
        err, res = r.recv_reply(r.request(method, arg))
        assert err is not None, f"{method}({arg!r}) answered {res!r}"
        # The same connection still serves.
        assert r.call("containerManager.ContainerRuntimeState", sb.id) == 2
        return err


def samples(export, name):
    return [d for d in export["Data"] if d["name"] == name]


# ---- Metrics -----------------------------------------------------------------

def test_metrics_registration_and_export(running_sandbox):
    sb = running_sandbox
    status, out = sb.run_exec(["true"])
    assert status == 0
    reg = sb.call("Metrics.GetRegisteredMetrics")
    names = {m["prometheus_name"]: m for m in reg["Metrics"]}
    for n in ("cvisor_rpc_calls_total", "cvisor_rpc_errors_total", "cvisor_rpc_latency_seconds",
              "cvisor_containers", "cvisor_tasks", "cvisor_execs_started_total",
              "cvisor_execs_failed_total", "cvisor_signals_sent_total",
              "cvisor_loop_iterations_total", "cvisor_loop_callback_seconds_total"):
        assert n in names, n
    lat = names["cvisor_rpc_latency_seconds"]
    assert lat["type"] == "distribution" and lat["prometheus_type"] == "histogram"
    assert lat["fields"][0]["field_name"] == "method"
    assert "containerManager.ExecuteAsync" in lat["fields"][0]["allowed_values"]

    exp = sb.call("Metrics.Export", {"only_metrics": ""})
    assert exp["ExportedAt"] > 0
    calls = {d["labels"]["method"]: d["value"] for d in samples(exp, "cvisor_rpc_calls_total")}
    assert calls["containerManager.ExecuteAsync"] >= 1
    assert calls["containerManager.WaitPID"] >= 1
    assert calls["containerManager.StartRoot"] == 1
    (started,) = samples(exp, "cvisor_execs_started_total")
    assert started["value"] >= 1
    conts = {d["labels"]["state"]: d["value"] for d in samples(exp, "cvisor_containers")}
    assert conts["running"] == 1
    tasks = {d["labels"]["state"]: d["value"] for d in samples(exp, "cvisor_tasks")}
    assert tasks["running"] >= 1
    (it,) = samples(exp, "cvisor_loop_iterations_total")
    assert it["value"] > 0
    (cb,) = samples(exp, "cvisor_loop_callback_seconds_total")
    assert cb["value"] > 0
    hists = samples(exp, "cvisor_rpc_latency_seconds")
    ex = [h for h in hists if h["labels"]["method"] == "containerManager.ExecuteAsync"][0]
    assert ex["histogram"]["count"] >= 1 and ex["histogram"]["sum"] > 0
    assert ex["histogram"]["buckets"][-1][0] == float("inf")
    assert ex["histogram"]["buckets"][-1][1] == ex["histogram"]["count"]

    # The filter is a POSIX ERE on the Prometheus name.
    only = sb.call("Metrics.Export", {"only_metrics": "^cvisor_execs_"})
    assert {d["name"] for d in only["Data"]} == {"cvisor_execs_started_total",
                                                 "cvisor_execs_failed_total"}
    # nil argument: everything.
    assert len(sb.call("Metrics.Export")["Data"]) >= len(exp["Data"])


def test_metrics_count_errors_and_signals(running_sandbox):
    sb = running_sandbox
    before = sb.call("Metrics.Export", {"only_metrics": "errors|signals"})
    err = call_err(sb, "containerManager.Signal", {"CID": "nope", "Signo": 0})
    assert "not found" in err
    sb.call("containerManager.Signal", {"CID": sb.id, "Signo": 0, "PID": 0, "Mode": 0})
    after = sb.call("Metrics.Export", {"only_metrics": "errors|signals"})

    def val(e, name, method=None):
        for d in samples(e, name):
            if method is None or d["labels"].get("method") == method:
                return d["value"]
        raise AssertionError(name)
    assert val(after, "cvisor_rpc_errors_total", "containerManager.Signal") == \
        val(before, "cvisor_rpc_errors_total", "containerManager.Signal") + 1
    assert val(after, "cvisor_signals_sent_total") == val(before, "cvisor_signals_sent_total") + 1


def test_metrics_export_argument_errors(running_sandbox):
    sb = running_sandbox
    err = call_err(sb, "Metrics.Export", {"only_metrics": "("})
    assert err.startswith("MetricsExportOpts.only_metrics: invalid regular expression (:"), err
    err = call_err(sb, "Metrics.Export", {"only_metrics": 5})
    assert err.startswith("MetricsExportOpts.only_metrics: "), err
    err = call_err(sb, "Metrics.Export", "x")
    assert err.startswith("MetricsExportOpts: expected map"), err


def test_export_metrics_cli_prints_prometheus_text(running_sandbox, cli):
    sb = running_sandbox
    p = cli.run("export-metrics", sb.id, check=True)
    text = p.stdout
    assert "# HELP cvisor_rpc_calls_total " in text
    assert "# TYPE cvisor_rpc_calls_total counter" in text
    assert "# TYPE cvisor_rpc_latency_seconds histogram" in text
    assert re.search(r'^cvisor_rpc_latency_seconds_bucket\{method="[^"]+",le="\+Inf"\} \d+$',
                     text, re.M)
    assert re.search(r'^cvisor_containers\{state="running"\} 1$', text, re.M)
    # Every line is a comment or a well-formed sample (what a scraper parses).
    sample = re.compile(r'^cvisor_[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? '
                        r'(\+Inf|-?[0-9.e+-]+)$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    p = cli.run("export-metrics", "--only-metrics", "^cvisor_tasks$", sb.id, check=True)
    assert "cvisor_tasks{" in p.stdout and "cvisor_rpc" not in p.stdout
    p = cli.run("export-metrics", "--only-metrics", "[", sb.id)
    assert p.returncode != 0 and "only_metrics: invalid regular expression" in p.stderr


# ---- Logging.Change / debug.Stacks --------------------------------------------

def stacks(sb):
    text = sb.call("debug.Stacks")
    assert isinstance(text, str) and text
    return text


def test_logging_change_level_round_trips(running_sandbox):
    sb = running_sandbox
    for level, name in ((2, "debug"), (0, "warning"), (1, "info")):
        # Go clients send every field; false strace keys are fine.
        assert sb.call("Logging.Change", {"SetLevel": True, "Level": level, "SetStrace": False,
                                          "EnableStrace": False, "StraceAllowlist": None}) is None
        assert f"log level {name}," in stacks(sb)
    # Without SetLevel, Level is ignored (as in runsc).
    assert sb.call("Logging.Change", {"Level": 2}) is None
    assert "log level info," in stacks(sb)
    # The change takes effect at once: a debug-level line appears in boot's log.
    log = os.path.join(sb.dir, "log")
    sb.call("Logging.Change", {"SetLevel": True, "Level": 2})
    sb.call("containerManager.ContainerRuntimeState", sb.id)
    with open(log) as f:
        text = f.read()
    assert "log level changed from info to debug" in text
    assert "[request]" in text.split("log level changed from info to debug")[-1]


def test_logging_change_argument_errors(running_sandbox):
    sb = running_sandbox
    err = call_err(sb, "Logging.Change", {"SetLevel": True, "Level": 3})
    assert err == "LoggingArgs.Level: invalid level 3 (want 0 warning, 1 info, 2 debug)"
    err = call_err(sb, "Logging.Change", {"SetLevel": True, "Level": -1})
    assert err.startswith("LoggingArgs.Level: "), err
    err = call_err(sb, "Logging.Change", {"SetLevel": "yes"})
    assert err.startswith("LoggingArgs.SetLevel: "), err
    # Strace needs armed syscalls (cvisor --trace-syscalls; test_trace.py).
    err = call_err(sb, "Logging.Change", {"SetStrace": True, "EnableStrace": True,
                                          "SetLevel": True, "Level": 2})
    assert err == ("error configuring strace: no syscall is armed (start the sandbox with "
                   "cvisor --trace-syscalls)")
    # Refused before anything changed.
    assert "log level info," in stacks(sb)
    err = call_err(sb, "Logging.Change", None)
    assert err == "LoggingArgs: expected map, got nil"


def test_stacks_names_containers_tasks_and_parked_calls(running_sandbox, cli):
    sb = running_sandbox
    with sb.raw() as conn, sb.raw() as waiter:
        pid, out = sb.exec(["sleep", "1000"], conn=conn)
        out.close()
        msgid = waiter.request("containerManager.WaitPID", {"PID": pid, "CID": sb.id})
        # The WaitPID is parked once Stacks (answered after it, same loop) shows it.
        text = helpers.wait_until(
            lambda: (lambda t: t if "WaitPID: exec'd process exit" in t else None)(stacks(sb)),
            what="WaitPID parked")
        assert f"container {sb.id}: running (root)" in text
        assert re.search(r"task pid 1 \(host \d+\) init: running", text), text
        # The WaitPID took it out of the exec registry and holds it.
        assert re.search(rf"task pid {pid} \(host \d+\): running, 1 parked calls hold it", text), text
        assert "parked on \"task exit\": WaitPID: exec'd process exit" in text
        assert re.search(r"call id=\d+ containerManager.WaitPID \(waiting\)", text), text
        assert "call id=" in text and "debug.Stacks (running)" in text
        assert re.search(r"watcher exit \(io pidfd \d+\): active", text), text
        assert "watcher signals (io signalfd" in text
        sb.call("containerManager.Signal", {"CID": sb.id, "Signo": 9, "PID": pid, "Mode": 0})
        err, status = waiter.recv_reply(msgid)
        assert err is None and status == 9
    p = cli.run("debug", "--stacks", sb.id, check=True)
    assert f"container {sb.id}: running (root)" in p.stdout
    p = cli.run("debug", "--log-level", "debug", "--stacks", sb.id, check=True)
    assert "log level debug," in p.stdout
    p = cli.run("debug", "--log-level", "loud", sb.id)
    assert p.returncode != 0 and "--log-level: invalid level loud" in p.stderr
    p = cli.run("debug", sb.id)
    assert p.returncode != 0 and "nothing to do" in p.stderr


# ---- containerManager.ProcfsDump ------------------------------------------------

def test_procfs_dump_init_and_exec(running_sandbox, cli):
    sb = running_sandbox
    with sb.raw() as conn:
        pid, out = sb.exec(["sleep", "1000"], env=["MARK=procfs"], cwd="/tmp", conn=conn)
        out.close()

        def dumped_asleep():
            # Just after its execve the sleep may still be running: wait
            # until the dump shows it asleep in its nanosleep.
            d = {e["pid"]: e for e in sb.call("containerManager.ProcfsDump")}
            e = d.get(pid)
            return d if e and e["status"]["state"].startswith("S") else None
        by_pid = helpers.wait_until(dumped_asleep, what="the exec'd sleep asleep in the dump")
        assert 1 in by_pid and pid in by_pid, sorted(by_pid)
        init, sl = by_pid[1], by_pid[pid]
        assert init["exe"] == "/bin/busybox" and init["args"][0] == "sh"
        assert init["status"]["pid"] == 1 and init["status"]["comm"] == "sh"
        assert init["container_id"] == sb.id
        assert sl["args"] == ["sleep", "1000"] and sl["exe"] == "/bin/busybox"
        assert "MARK=procfs" in sl["env"] and sl["cwd"] == "/tmp"
        assert sl["status"]["comm"] == "sleep" and sl["status"]["pid"] == pid
        assert sl["status"]["ppid"] == 0  # its parent is outside the sandbox
        assert sl["status"]["state"].startswith("S")
        assert [f["number"] for f in sl["fdlist"]][:3] == [0, 1, 2]
        assert sl["limits"]["RLIMIT_NOFILE"]["cur"] > 0
        assert any(m["pathname"] == "/bin/busybox" for m in sl["maps"])
        assert sl["cgroup"] and all("path" in c for c in sl["cgroup"])
        assert sl["clone_ts"] >= init["clone_ts"] > 0
        assert sl["stat"]["pgid"] == pid and sl["stat"]["sid"] == pid
        # Narrowed to a container.
        assert {e["pid"] for e in sb.call("containerManager.ProcfsDump", sb.id)} == set(by_pid)
        # The CLI: one JSON object per line.
        p = cli.run("trace", "procfs", sb.id, check=True)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        assert pid in {e["pid"] for e in lines}
        for e in lines:
            assert {"exe", "args", "env", "cwd", "root", "fdlist", "clone_ts", "limits",
                    "cgroup", "status", "stat", "maps"} <= set(e)
        sb.call("containerManager.Signal", {"CID": sb.id, "Signo": 9, "PID": pid, "Mode": 0})
        assert conn.call("containerManager.WaitPID", {"PID": pid, "CID": sb.id}) == 9
    # An exited process is not listed.
    assert pid not in {e["pid"] for e in sb.call("containerManager.ProcfsDump")}


def test_procfs_dump_argument_errors(running_sandbox, cli):
    sb = running_sandbox
    assert call_err(sb, "containerManager.ProcfsDump", "nope") == 'container "nope" not found'
    assert call_err(sb, "containerManager.ProcfsDump", 5).startswith("cid: expected string")
    p = cli.run("trace", "nothing", sb.id)
    assert p.returncode != 0 and "unknown subcommand nothing" in p.stderr


# ---- Profile.* -----------------------------------------------------------------

class Load:
    """Keeps boot busy (and proves it serves) while a profile runs: RPC
    round trips on their own connection from a thread, counted."""

    def __init__(self, sb):
        import threading
        self.sb, self.n, self.stop = sb, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with self.sb.raw() as r:
            while not self.stop.is_set():
                r.call("Metrics.Export", {"only_metrics": "rpc"})
                self.n += 1

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join()


def profile(sb, method, path, arg):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return sb.call(method, dict(arg, Files=1), fds=[fd])
    finally:
        os.close(fd)


def test_cpu_profile_writes_folded_stacks(running_sandbox, tmp_path):
    sb = running_sandbox
    out = str(tmp_path / "cpu.folded")
    with Load(sb) as load:
        assert profile(sb, "Profile.CPU", out, {"Duration": 1_000_000_000}) is None
    # The loop served the other connection throughout.
    assert load.n > 10
    lines = open(out).read().splitlines()
    assert lines, "no samples"
    total = 0
    for line in lines:
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        assert stack and " " not in stack
    assert total >= 1
    # Symbolized from boot's own symbol table: the sandbox's loop is on the stacks.
    assert any("sandbox_boot" in l for l in lines), lines[:5]


def test_second_cpu_profile_is_refused(running_sandbox, tmp_path):
    sb = running_sandbox
    fd = os.open(str(tmp_path / "a"), os.O_WRONLY | os.O_CREAT, 0o644)
    with sb.raw() as first:
        msgid = first.request("Profile.CPU", {"Duration": 1_000_000_000, "Files": 1}, fds=[fd])
        os.close(fd)
        helpers.wait_until(lambda: "Profile.CPU (waiting)" in stacks(sb), what="profile parked")
        err = call_err(sb, "Profile.CPU", None)
        # Refused before its arguments are even looked at.
        assert err == "Profile.CPU: a CPU profile is already running (one at a time)"
        err, res = first.recv_reply(msgid)
        assert err is None
    # Once done, another one may run.
    assert profile(sb, "Profile.CPU", str(tmp_path / "b"), {"Duration": 10_000_000}) is None


def test_trace_profile_writes_chrome_json(running_sandbox, tmp_path):
    sb = running_sandbox
    out = str(tmp_path / "trace.json")
    with Load(sb) as load:
        # A WaitPID answered during the trace runs a continuation.
        with sb.raw() as conn:
            pid, o = sb.exec(["true"], conn=conn)
            o.close()
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            msgid = conn.request("Profile.Trace", {"Duration": 1_000_000_000, "Files": 1},
                                 fds=[fd])
            os.close(fd)
            assert conn.call("containerManager.WaitPID", {"PID": pid, "CID": sb.id}) == 0
            err, res = conn.recv_reply(msgid)
            assert err is None and res is None
    assert load.n > 10
    with open(out) as f:
        doc = json.load(f)
    events = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    names = {e["name"] for e in events}
    assert "loop turn" in names and "Metrics.Export" in names, names
    assert "containerManager.WaitPID" in names, names
    for e in events:
        assert e["dur"] >= 0 and e["ts"] >= 0 and e["tid"] in (1, 2, 3)


def test_heap_profile_and_block_mutex(running_sandbox, tmp_path):
    sb = running_sandbox
    out = str(tmp_path / "heap.txt")
    assert profile(sb, "Profile.Heap", out, {}) is None
    text = open(out).read()
    assert re.search(r"^arena \d+$", text, re.M) and "<malloc " in text
    if not os.environ.get("CVISOR_SANITIZED"):
        # Under ASan, its own allocator serves malloc: glibc's counts are 0.
        assert re.search(r"^uordblks [1-9]\d*$", text, re.M), text[:300]
    assert call_err(sb, "Profile.Block").startswith(
        "Profile.Block: not available: boot is a single-threaded reactor")
    assert call_err(sb, "Profile.Mutex").startswith(
        "Profile.Mutex: not available: boot is a single-threaded reactor")


def test_profile_argument_errors(running_sandbox, tmp_path):
    sb = running_sandbox
    for m in ("Profile.CPU", "Profile.Trace"):
        assert call_err(sb, m, {}) == "ProfileOpts.Duration: missing"
        assert call_err(sb, m, {"Duration": 0}).startswith("ProfileOpts.Duration: must be between")
        assert call_err(sb, m, {"Duration": "1s"}).startswith("ProfileOpts.Duration: ")
        assert call_err(sb, m, {"Duration": 10**9}) == \
            "ProfileOpts.Files: expected 1 output file, got 0"
        assert call_err(sb, m, None) == "ProfileOpts: expected map, got nil"
    assert call_err(sb, "Profile.Heap", {}) == "ProfileOpts.Files: expected 1 output file, got 0"
    # A profile whose client goes away is cancelled: the next one runs.
    fd = os.open(str(tmp_path / "x"), os.O_WRONLY | os.O_CREAT, 0o644)
    with sb.raw() as r:
        r.request("Profile.CPU", {"Duration": 60_000_000_000, "Files": 1}, fds=[fd])
        os.close(fd)
        helpers.wait_until(lambda: "Profile.CPU (waiting)" in stacks(sb), what="profile parked")
    helpers.wait_until(lambda: "Profile.CPU" not in stacks(sb), what="profile cancelled")
    assert profile(sb, "Profile.CPU", str(tmp_path / "y"), {"Duration": 10_000_000}) is None


def test_debug_cli_profiles(running_sandbox, cli, tmp_path):
    sb = running_sandbox
    heap, trace, cpu = (str(tmp_path / n) for n in ("heap", "trace.json", "cpu"))
    p = cli.run("debug", "--profile-heap", heap, "--trace", trace, "--profile-cpu", cpu,
                "--duration", "200ms", sb.id, check=True)
    assert "arena" in open(heap).read()
    json.load(open(trace))
    assert os.path.exists(cpu)
    p = cli.run("debug", "--trace", trace, "--duration", "soon", sb.id)
    assert p.returncode != 0 and "--duration: invalid duration soon" in p.stderr


def test_observability_leaves_no_fds_behind(running_sandbox, cli, tmp_path):
    sb = running_sandbox
    before = helpers.settled_fd_count(sb.boot_pid)
    for _ in range(2):
        sb.call("Metrics.GetRegisteredMetrics")
        sb.call("Metrics.Export", {"only_metrics": "^cvisor_"})
        call_err(sb, "Metrics.Export", {"only_metrics": "("})
        stacks(sb)
        sb.call("Logging.Change", {"SetLevel": True, "Level": 1})
        sb.call("containerManager.ProcfsDump")
        profile(sb, "Profile.Heap", str(tmp_path / "h"), {})
        profile(sb, "Profile.CPU", str(tmp_path / "c"), {"Duration": 50_000_000})
        profile(sb, "Profile.Trace", str(tmp_path / "t"), {"Duration": 50_000_000})
        call_err(sb, "Profile.CPU", {"Duration": 0, "Files": 1})
        cli.run("export-metrics", sb.id, check=True)
        cli.run("trace", "procfs", sb.id, check=True)
    assert helpers.settled_fd_count(sb.boot_pid) == before

"""The reactor never blocks: boot is one thread with one libev loop, so a
call that walks thousands of processes (Processes, Signal to every process
or a process group, a PID lookup) must run in slices and let other clients'
calls through meanwhile; Pause waits for cgroup.events to change instead of
polling it; a client that goes away mid-call leaves nothing behind.

The latency bound is the one timed assertion here, which the task asks for:
ContainerRuntimeState round trips made on another connection while
Processes lists ~2000 processes keep a p99 far below the time the whole
Processes call takes (before the slicing, a round trip that arrived during
Processes waited for all of it).
"""
import os
import threading
import time

import pytest

import helpers
from helpers import M_PROCS, M_SIGNAL, M_STATE

NPROCS = 2000
NGROUPS = 16
# A slice of the walk is at most 64 processes or 2 ms, so a round trip
# waits ~2 ms at worst for the loop. The checks compare the round trips'
# p99 with the duration of the walk itself (the old code answered nothing
# until the walk ended), not with a fixed time: the machine is shared and
# scheduling delays of tens of ms were seen under load.


def _skip_latency_if_sanitized():
    # Under ASan every /proc read in a slice is several times slower while
    # the walk's own length is not, so the comparison says nothing there.
    if os.environ.get("CVISOR_SANITIZED"):
        pytest.skip("latency not compared under ASan+UBSan (the behaviour above was checked)")


def _v2_node(sid):
    return os.path.join(helpers.cgroup_v2_mount() or "/nonexistent",
                        helpers.default_cgroup(sid).lstrip("/"))


def _ready_file(sid):
    return os.path.join(_v2_node(sid), "cgroup.procs")


def _count_procs(sid):
    try:
        with open(_ready_file(sid)) as f:
            return len(f.read().split())
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def big(module_env):
    """A running container with NPROCS sleeping children of its init. The
    bundle's pids limit (1024) and memory limit are raised for them."""
    if not helpers.cgroup_v2_mount():
        pytest.skip("no cgroup2 hierarchy on this host")
    cfg = helpers.fixture_config(module_env.fixture)
    linux = dict(cfg["linux"])
    res = dict(linux.get("resources") or {})
    res["pids"] = {"limit": NPROCS + 200}
    res["memory"] = {"limit": 2 << 30}
    linux["resources"] = res
    # Forked shells blocked reading a pipe that never gets data: no exec
    # each (forks are what a loaded CI machine can afford), several forking
    # at once. A background job's stdin is /dev/null before redirections,
    # hence fd 3.
    per = NPROCS // NGROUPS
    script = ("sleep 100000 | { exec 3<&0; j=0; while [ $j -lt %d ]; do "
              "{ i=0; while [ $i -lt %d ]; do read x <&3 & i=$((i+1)); done; wait; } & "
              "j=$((j+1)); done; wait; }" % (NGROUPS, per))
    bundle = module_env.make_bundle(args=["sh", "-c", script], linux=linux)
    sb = module_env.new_sandbox(bundle, start=True)
    helpers.wait_until(lambda: _count_procs(sb.id) >= NPROCS + 1, timeout=180,
                       what=f"{NPROCS} processes in the container")
    return sb


def _p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def _state_latencies_during(sb, work):
    """Runs work() in a thread; meanwhile measures ContainerRuntimeState
    round trips on another connection. Returns (latencies, work's result,
    work's duration)."""
    out = {}

    def run():
        t0 = time.monotonic()
        out["result"] = work()
        out["dur"] = time.monotonic() - t0

    lat = []
    with sb.raw() as conn:
        conn.call(M_STATE, sb.id)  # connected and served once before timing
        th = threading.Thread(target=run)
        th.start()
        while th.is_alive():
            t0 = time.monotonic()
            assert conn.call(M_STATE, sb.id) == 2
            lat.append(time.monotonic() - t0)
        th.join()
    return lat, out["result"], out["dur"]


def test_processes_does_not_stall_other_clients(big):
    sb = big
    durs, lats, n = [], [], 0
    with sb.raw() as ps_conn:
        for _ in range(5):
            lat, procs, dur = _state_latencies_during(sb, lambda: ps_conn.call(M_PROCS, sb.id))
            durs.append(dur)
            lats += lat
            n = len(procs)
    assert n >= NPROCS + 1
    assert len({p["pid"] for p in procs}) == n
    assert len([p for p in procs if p["cmd"] == "sh"]) >= NPROCS
    # Parents translated into the container's namespace: every parent but
    # the init's (outside the sandbox: 0) is one of the listed processes.
    pids = {p["pid"] for p in procs}
    init = min(procs, key=lambda p: p["pid"])
    assert init["pid"] == 1 and init["ppid"] == 0
    assert all(p["ppid"] in pids for p in procs if p is not init)
    p99, worst, whole = _p99(lats), max(lats), min(durs)
    print(f"\nProcesses of {n} processes: {[round(d * 1000, 1) for d in durs]} ms; "
          f"{len(lats)} ContainerRuntimeState round trips meanwhile: "
          f"p50 {sorted(lats)[len(lats) // 2] * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
          f"max {worst * 1000:.2f} ms")
    assert len(lats) >= 20, "too few round trips to measure a p99"
    _skip_latency_if_sanitized()
    assert p99 < whole / 3, f"p99 {p99 * 1000:.1f} ms against a {whole * 1000:.1f} ms Processes"


def test_signals_do_not_stall_other_clients(big):
    """Signal deliveries that walk every process, with SIGWINCH (ignored by
    default: the processes live on): kill --all (Mode 1), a PID that is
    none of boot's tasks (Mode 0: found by reading /proc of each process)
    and a process group (Mode 3)."""
    sb = big
    with sb.raw() as conn:
        last = max(p["pid"] for p in conn.call(M_PROCS, sb.id))
    args = [{"CID": sb.id, "Signo": 28, "PID": 0, "Mode": 1},
            {"CID": sb.id, "Signo": 28, "PID": last, "Mode": 0},
            {"CID": sb.id, "Signo": 28, "PID": 1, "Mode": 3}]
    durs, lats = [], []
    with sb.raw() as conn:
        for _ in range(3):
            for arg in args:
                lat, res, dur = _state_latencies_during(sb, lambda: conn.call(M_SIGNAL, arg))
                assert res is None
                durs.append(dur)
                lats += lat
    p99 = _p99(lats)
    print(f"\nSignal Modes 1, 0, 3 over {NPROCS} processes: "
          f"{[round(d * 1000, 1) for d in durs]} ms; {len(lats)} round trips meanwhile, "
          f"p99 {p99 * 1000:.2f} ms")
    assert len(lats) >= 20, "too few round trips to measure a p99"
    assert _count_procs(sb.id) >= NPROCS + 1, "SIGWINCH must not kill the processes"
    with open(os.path.join(_v2_node(sb.id), "cgroup.events")) as f:
        assert "frozen 0" in f.read(), "the container stayed frozen after the signal"
    _skip_latency_if_sanitized()
    # The median, not the p99: thawing ~2000 processes after Mode 1 keeps
    # both cores busy for a moment, which delays boot itself now and then.
    # A loop blocked for the walk would answer nothing until it ends.
    med = sorted(lats)[len(lats) // 2]
    assert med < max(durs) / 10, f"median {med * 1000:.1f} ms against {max(durs) * 1000:.1f} ms walks"


def test_lookups_over_every_process(big):
    """PID lookups through /proc of every process: WaitPID of a process the
    workload forked, and a PID or group that is not there."""
    sb = big
    with sb.raw() as conn:
        last = max(p["pid"] for p in conn.call(M_PROCS, sb.id))
        with pytest.raises(RuntimeError, match=f"waiting for PID {last}: the process was not "
                           "started by the sandbox"):
            conn.call(helpers.M_WAITPID, {"PID": last, "CID": sb.id})
        with pytest.raises(RuntimeError, match="waiting for PID 99999: no such process"):
            conn.call(helpers.M_WAITPID, {"PID": 99999, "CID": sb.id})
        with pytest.raises(RuntimeError, match="no such process with PID 99999"):
            conn.call(M_SIGNAL, {"CID": sb.id, "Signo": 28, "PID": 99999, "Mode": 0})
        with pytest.raises(RuntimeError, match="no such process group with PGID 99999"):
            conn.call(M_SIGNAL, {"CID": sb.id, "Signo": 28, "PID": 99999, "Mode": 3})
    assert _count_procs(sb.id) >= NPROCS + 1


def test_pause_resume_with_many_processes(big):
    sb = big
    events = os.path.join(_v2_node(sb.id), "cgroup.events")
    with sb.raw() as conn:
        t0 = time.monotonic()
        assert conn.call("Lifecycle.Pause") is None
        paused = time.monotonic() - t0
        with open(events) as f:
            assert "frozen 1" in f.read()
        # The loop is live while paused, and a listing works on frozen tasks.
        assert conn.call(M_STATE, sb.id) == 2
        assert len(conn.call(M_PROCS, sb.id)) >= NPROCS + 1
        t0 = time.monotonic()
        assert conn.call("Lifecycle.Resume") is None
        resumed = time.monotonic() - t0
        with open(events) as f:
            assert "frozen 0" in f.read()
    print(f"\nPause of {NPROCS + 1} processes answered in {paused * 1000:.1f} ms, "
          f"Resume in {resumed * 1000:.1f} ms")
    assert paused < 2.0


def test_disconnect_mid_processes_leaks_nothing(big):
    sb = big
    with sb.raw() as conn:
        conn.call(M_STATE, sb.id)
    base = helpers.fd_count(sb.boot_pid)
    for i in range(20):
        c = sb.raw()
        c.request(M_PROCS, sb.id)
        # Gone after a few slices (or before the first one).
        time.sleep(0.002 * (i % 5))
        c.close()
    with sb.raw() as conn:
        # Served while the cancelled scans are (or were) torn down.
        assert conn.call(M_STATE, sb.id) == 2
        assert len(conn.call(M_PROCS, sb.id)) >= NPROCS + 1
    helpers.wait_until(lambda: helpers.fd_count(sb.boot_pid) <= base,
                       what=f"boot's fds back to {base}")

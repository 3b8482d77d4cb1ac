#!/usr/bin/python3
"""cvisor benchmarks against baselines, side by side in one run.

Usage (as root; `make bench` does this):
  bench.py --bin build/cvisor --bundle test/fixtures/busybox \
           --raw build/raw_pingpong --rpc build/rpc_bench \
           --floor build/setns_floor [--out bench]

Prints one table and writes <out>/results.json and <out>/results.svg.
bench/README.md explains every number. A baseline that cannot run (crun or
runc missing and not installable) is reported as "n/a" with the reason; the
benchmark of cvisor itself still runs.
"""
import argparse
import copy
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUN_ITERS = 20
EXEC_ITERS_CVISOR = 200
EXEC_ROUNDS = 10  # API exec and its floor alternate, EXEC_ITERS_CVISOR / EXEC_ROUNDS each
RTT_ROUNDS = 5    # RPC and raw round trips alternate, RTT_CALLS / RTT_ROUNDS each
LOADED_ROUNDS = 3 # under exec load and under churn alternate, LOADED_RTT_CALLS each
EXEC_ITERS_CLI = 30
LOADED_RTT_CALLS = 3000
RTT_CALLS = 5000
METRICS_ROUNDS = 6 # metrics on and off alternate, RTT_CALLS / METRICS_ROUNDS each
PIPE_CALLS = 50000
PIPE_DEPTH = 64

TARGETS = {
    "rpc_rtt_ratio": 1.5,
    "rtt_p99_under_exec_ratio": 2.0,
    "run_ratio_crun": 1.0,
    "cli_exec_ratio_crun": 0.6,
    "api_exec_ratio_floor": 1.3,
    "boot_rss_mib": 2.0,
    "metrics_cost_ratio": 1.05,
    "sub_start_ratio_crun": 0.5,
}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(argv, timeout=120, check=True, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.run(argv, timeout=timeout, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: "
                           f"{(p.stderr or p.stdout or '').strip()[:300]}")
    return p


def timed(argv, timeout=60):
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()[:300]}")
    return dt


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))]


def json_line(p, samples=False):
    """The program's JSON line; its raw samples only when asked for."""
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if not samples:
        r.pop("samples_us", None)
    return r


def make_bundle(fixture, dest, args):
    with open(os.path.join(fixture, "config.json")) as f:
        cfg = json.load(f)
    cfg = copy.deepcopy(cfg)
    cfg.setdefault("root", {})["path"] = os.path.join(os.path.abspath(fixture), "rootfs")
    cfg["process"]["args"] = args
    cfg["process"]["terminal"] = False
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    return dest


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------- baselines

def ensure_runtime(name):
    path = shutil.which(name)
    if path:
        return path, None
    log(f"{name} is not installed; installing it with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", name],
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
        p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", name],
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=600)
    path = shutil.which(name)
    if not path:
        return None, f"not installed (apt-get install {name} failed: {p.stderr.strip()[:200]})"
    return path, None


def hugetlb_bound_to_v1():
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup" and "hugetlb" in parts[3].split(","):
                return True
    return False


def release_hugetlb_from_v2(root):
    """A v1 hierarchy can take hugetlb only while no v2 cgroup has it
    enabled. podman's cgroupfs manager enables every v2 controller it finds
    (libpod_parent/...), so after the engine tests the mount below fails
    with "already mounted". Disabling it in each cgroup.subtree_control,
    deepest first, hands the controller back (its limits are not used)."""
    found = []
    for d, _, _ in os.walk(root):
        try:
            with open(os.path.join(d, "cgroup.subtree_control")) as f:
                if "hugetlb" in f.read().split():
                    found.append(d)
        except OSError:
            pass
    for d in sorted(found, key=lambda x: x.count("/"), reverse=True):
        try:
            with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                f.write("-hugetlb")
        except OSError as e:
            log(f"could not disable hugetlb in {d}: {e}")


def prepare_crun_hybrid():
    """crun 1.8 refuses hybrid hosts whose v2 hierarchy could take hugetlb
    ("cgroups in hybrid mode not supported"); binding hugetlb to a v1
    hierarchy satisfies it.
    The mount stays: unmounting would not give hugetlb back to the v2
    hierarchy (a v1 hierarchy that crun made cgroups in outlives its mount)
    and would leave a hierarchy in /proc/<pid>/cgroup with no mount point,
    which breaks tools that load a process's cgroups (the containerd shim's
    metrics). Returns the mount point if this run mounted it, else None."""
    if not os.path.isdir("/sys/fs/cgroup/unified") or hugetlb_bound_to_v1():
        return None
    mnt = "/sys/fs/cgroup/hugetlb"
    os.makedirs(mnt, exist_ok=True)
    release_hugetlb_from_v2("/sys/fs/cgroup/unified")
    p = subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        log(f"could not mount the hugetlb v1 hierarchy for crun: {p.stderr.strip()}")
        return None
    print(f"bench: mounted the hugetlb cgroup v1 hierarchy at {mnt} so that crun 1.8 accepts "
          f"this hybrid-cgroup host (it stays mounted)", flush=True)
    return mnt


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.abspath(a.bin)
        self.fixture = os.path.abspath(a.bundle)
        self.tmp = tempfile.mkdtemp(prefix="cvb", dir="/tmp")
        self.root = os.path.join(self.tmp, "cvisor")
        self.crun_root = os.path.join(self.tmp, "crun")
        self.runc_root = os.path.join(self.tmp, "runc")
        self.res = {"machine": {"nproc": os.cpu_count(), "kernel": os.uname().release}}
        self.notes = []
        self.b_true = make_bundle(self.fixture, os.path.join(self.tmp, "b-true"), ["/bin/true"])
        self.b_sleep = make_bundle(self.fixture, os.path.join(self.tmp, "b-sleep"),
                                   ["sleep", "100000"])
        self.crun = self.runc = None
        self.crun_ids = []
        self.hugetlb_mnt = None

    def cv(self, *args):
        return [self.bin, "--root", self.root, *args]

    # -- 1, 2, 4 (cvisor side), 5: one running sandbox
    def sandbox_benches(self):
        sid = "bench-" + secrets.token_hex(4)
        pidfile = os.path.join(self.tmp, "init.pid")
        run(self.cv("create", "--bundle", self.fixture, "--pid-file", pidfile, sid),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run(self.cv("start", sid))
            # --pid-file names the container's init (as runc); boot's pid
            # is in state.json.
            init = int(open(pidfile).read())
            with open(os.path.join(self.root, sid, "state.json")) as f:
                boot = int(json.load(f)["bootPid"])
            sock = os.path.join(self.root, sid, "control.sock")
            time.sleep(0.3)
            self.res["boot_rss_kib"] = vm_rss_kib(boot)

            # Round trips against raw ping-pong of the same sizes, alternating
            # in rounds (samples pooled) so both see the same machine.
            r = json_line(run([self.a.rpc, sock, sid, "rtt", "100"]))
            sizes = [str(r["req_bytes"]), str(r["rep_bytes"])]
            self.res["rpc_rtt"], self.res["raw_rtt"] = self.pooled(RTT_ROUNDS, {
                "rpc": lambda: run([self.a.rpc, sock, sid, "rtt", str(RTT_CALLS // RTT_ROUNDS)]),
                "raw": lambda: run([self.a.raw, "rtt", str(RTT_CALLS // RTT_ROUNDS), *sizes]),
            }).values()
            r = self.res["rpc_rtt"]
            self.metrics_cost(sock, sid)

            self.res["rpc_pipe"] = json_line(run([self.a.rpc, sock, sid, "pipe", str(PIPE_CALLS),
                                                  str(PIPE_DEPTH)]))
            self.res["raw_pipe"] = json_line(run([self.a.raw, "pipe", str(PIPE_CALLS),
                                                  str(PIPE_DEPTH), str(r["req_bytes"]),
                                                  str(r["rep_bytes"])]))
            self.exec_vs_floor(sock, sid, init)
            # The reactor under load: round trips on one connection while
            # another runs an ExecuteAsync+WaitPID loop the whole time; and,
            # to tell boot's share from the machine's, the same round trips
            # while the setns floor churns the same kind of processes with
            # no cvisor in the loop.
            self.res["rpc_rtt_under_exec"], self.res["rpc_rtt_under_churn"] = self.pooled(
                LOADED_ROUNDS, {
                    "exec": lambda: self.rtt_under([self.a.rpc, sock, sid, "exec", "100000"],
                                                   sock, sid),
                    "churn": lambda: self.rtt_under([self.a.floor, str(init), "100000"],
                                                    sock, sid),
                }).values()
            self.res["boot_rss_after_kib"] = vm_rss_kib(boot)
        finally:
            run(self.cv("delete", "--force", sid), check=False)

    @staticmethod
    def pooled(rounds, runs):
        """Runs each program of `runs` once per round, alternating, and pools
        their samples: {name: summary with p50_us/p99_us over all samples}."""
        pools = {k: [] for k in runs}
        last = {}
        for _ in range(rounds):
            for k, fn in runs.items():
                last[k] = json_line(fn(), True)
                pools[k] += last[k]["samples_us"]
        out = {}
        for k, v in pools.items():
            r = {key: val for key, val in last[k].items() if key != "samples_us"}
            r.update(n=len(v), p50_us=statistics.median(v), p99_us=pct(v, 0.99), rounds=rounds)
            out[k] = r
        return out

    def rtt_under(self, load_argv, sock, sid):
        load = subprocess.Popen(load_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.2)
            r = run([self.a.rpc, sock, sid, "rtt", str(LOADED_RTT_CALLS)])
            if load.poll() is not None:
                raise RuntimeError(f"the load {load_argv[0]} ended early: "
                                   f"{load.stderr.read()[:300]}")
            return r
        finally:
            load.kill()
            load.wait()

    def metrics_cost(self, sock, sid):
        """The cost of keeping metrics (kernel/metrics.c): RPC round trips
        against this sandbox (metrics on, the default) and against one booted
        with CVISOR_METRICS=0 (no RPC observer, no loop timing), alternating
        in rounds, samples pooled."""
        off = "bench-nomet-" + secrets.token_hex(4)
        env = dict(os.environ, CVISOR_METRICS="0")
        run(self.cv("create", "--bundle", self.b_sleep, off), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run(self.cv("start", off))
            osock = os.path.join(self.root, off, "control.sock")
            per = str(RTT_CALLS // METRICS_ROUNDS)
            self.res["rpc_rtt_metrics_on"], self.res["rpc_rtt_metrics_off"] = self.pooled(
                METRICS_ROUNDS, {
                    "on": lambda: run([self.a.rpc, sock, sid, "rtt", per]),
                    "off": lambda: run([self.a.rpc, osock, off, "rtt", per]),
                }).values()
        finally:
            run(self.cv("delete", "--force", off), check=False)

    def exec_vs_floor(self, sock, sid, init):
        """API exec against the setns floor, alternating in rounds."""
        # Warm-up (the first exec starts the container's spawner), not counted.
        run([self.a.rpc, sock, sid, "exec", "5"])
        per = str(EXEC_ITERS_CVISOR // EXEC_ROUNDS)
        self.res["rpc_exec"], self.res["exec_floor"] = self.pooled(EXEC_ROUNDS, {
            "rpc": lambda: run([self.a.rpc, sock, sid, "exec", per]),
            "floor": lambda: run([self.a.floor, str(init), per]),
        }).values()

    # -- 3: run /bin/true, interleaved
    def run_benches(self):
        self.crun, why = ensure_runtime("crun")
        if why:
            self.notes.append(f"crun: {why}")
        self.runc, why = ensure_runtime("runc")
        if why:
            self.notes.append(f"runc: {why}")
        if self.crun:
            self.hugetlb_mnt = prepare_crun_hybrid()

        def cmd(rt, i):
            cid = f"bt-{rt}-{i}-{secrets.token_hex(2)}"
            if rt == "cvisor":
                return self.cv("run", "--bundle", self.b_true, cid)
            root = self.crun_root if rt == "crun" else self.runc_root
            exe = self.crun if rt == "crun" else self.runc
            return [exe, "--root", root, "run", "--bundle", self.b_true, cid]

        runtimes = ["cvisor"] + [r for r in ("crun", "runc") if getattr(self, r)]
        times = {r: [] for r in runtimes}
        # One warm-up each (page cache, first cgroup creation), not counted.
        for rt in list(runtimes):
            try:
                timed(cmd(rt, "warm"))
            except Exception as e:  # a baseline that cannot run is reported, not fatal
                self.notes.append(f"{rt} run failed: {e}")
                runtimes.remove(rt)
                del times[rt]
        for i in range(RUN_ITERS):
            for rt in runtimes:
                times[rt].append(timed(cmd(rt, i)))
        for rt, ts in times.items():
            self.res[f"run_{rt}_ms"] = {"median": statistics.median(ts) * 1e3,
                                        "p99": pct(ts, 0.99) * 1e3, "n": len(ts)}

    # -- 4: the exec CLI, the same work for each runtime, interleaved
    def cli_exec_benches(self):
        sid = "bx-" + secrets.token_hex(3)
        run(self.cv("run", "-d", "--bundle", self.b_sleep, sid),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmds = {"cvisor": self.cv("exec", sid, "/bin/true")}
        for rt in ("crun", "runc"):
            exe = getattr(self, rt)
            if not exe:
                continue
            root = self.crun_root if rt == "crun" else self.runc_root
            cid = f"bx-{rt}-" + secrets.token_hex(3)
            try:
                run([exe, "--root", root, "run", "-d", "--bundle", self.b_sleep, cid],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.crun_ids.append((exe, root, cid))
                cmds[rt] = [exe, "--root", root, "exec", cid, "/bin/true"]
            except Exception as e:
                self.notes.append(f"{rt} exec failed: {e}")
        times = {rt: [] for rt in cmds}
        for rt, argv in cmds.items():  # warm-up, not counted
            timed(argv)
        for _ in range(EXEC_ITERS_CLI):
            for rt, argv in cmds.items():
                times[rt].append(timed(argv))
        for rt, ts in times.items():
            self.res[f"cli_exec_{rt}_ms"] = {"median": statistics.median(ts) * 1e3,
                                             "p99": pct(ts, 0.99) * 1e3, "n": len(ts)}

    # -- the state file (state/): encode and decode throughput of 256 MiB of page-like data
    # (a quarter random pages, the rest patterned), through the unit test binary's --bench:
    # the writer into memory, then the reader in 256 KiB pieces; the baseline is LZ4F alone
    # on the same bytes with the same settings. 5 alternating rounds, medians.
    def statefile_benches(self):
        exe = os.path.join(os.path.dirname(self.bin), "unit", "test_state")
        if not os.access(exe, os.X_OK):
            self.notes.append(f"statefile: {exe} not built, skipped")
            return
        out = run([exe, "--bench", "256"], timeout=600).stdout
        self.res["statefile"] = json.loads(out.strip().splitlines()[-1])
    # -- pods: a subcontainer in a running sandbox vs crun run (bench/pods_bench.py)
    def pod_benches(self):
        import pods_bench
        pods_bench.pod_benches(self, run, timed, make_bundle, pct)

    # -- checkpoint/restore of a 256 MiB counter and of a small one (bench/checkpoint_bench.py)
    def checkpoint_benches(self):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import checkpoint_bench
        self.res["checkpoint"] = checkpoint_bench.run(self.bin, self.fixture)

    def cleanup(self):
        for exe, root, cid in self.crun_ids:
            run([exe, "--root", root, "delete", "--force", cid], check=False)
        if os.path.isdir(self.root):
            for sid in os.listdir(self.root):
                run(self.cv("delete", "--force", sid), check=False)
        for rt, root in (("crun", self.crun_root), ("runc", self.runc_root)):
            exe = getattr(self, rt)
            if exe and os.path.isdir(root):
                for cid in os.listdir(root):
                    run([exe, "--root", root, "delete", "--force", cid], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- report

def rows(res):
    """(metric, cvisor, baseline label, baseline, ratio, target, ok)"""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import checkpoint_bench
    out = checkpoint_bench.rows(res)

    def ratio(a, b):
        return a / b if a is not None and b else None

    rr, raw = res.get("rpc_rtt"), res.get("raw_rtt")
    if rr and raw:
        for q in ("p50", "p99"):
            r = ratio(rr[f"{q}_us"], raw[f"{q}_us"])
            t = TARGETS["rpc_rtt_ratio"] if q == "p50" else None
            out.append((f"RPC round trip {q} (us)", rr[f"{q}_us"], "raw unix ping-pong",
                        raw[f"{q}_us"], r, t, None if t is None else r <= t))
    mon, moff = res.get("rpc_rtt_metrics_on"), res.get("rpc_rtt_metrics_off")
    if mon and moff:
        for q in ("p50", "p99"):
            r = ratio(mon[f"{q}_us"], moff[f"{q}_us"])
            t = TARGETS["metrics_cost_ratio"] if q == "p50" else None
            out.append((f"RPC round trip {q}, metrics on (us)", mon[f"{q}_us"],
                        "same, CVISOR_METRICS=0", moff[f"{q}_us"], r, t,
                        None if t is None else r <= t))
    lo = res.get("rpc_rtt_under_exec")
    if rr and lo:
        r = ratio(lo["p99_us"], rr["p99_us"])
        t = TARGETS["rtt_p99_under_exec_ratio"]
        out.append(("RPC round trip p99 under exec load (us)", lo["p99_us"], "same, idle sandbox",
                    rr["p99_us"], r, t, r <= t))
    ch = res.get("rpc_rtt_under_churn")
    if lo and ch:
        out.append(("RPC round trip p99 under exec load (us)", lo["p99_us"],
                    "same, under setns-floor churn (no cvisor exec)", ch["p99_us"],
                    ratio(lo["p99_us"], ch["p99_us"]), None, None))
    rp, rawp = res.get("rpc_pipe"), res.get("raw_pipe")
    if rp and rawp:
        out.append((f"pipelined calls/s ({PIPE_DEPTH} in flight)", rp["calls_per_s"],
                    "raw unix ping-pong", rawp["calls_per_s"],
                    ratio(rp["calls_per_s"], rawp["calls_per_s"]), None, None))
    crun = res.get("run_crun_ms", {}).get("median")
    runc = res.get("run_runc_ms", {}).get("median")
    cv = res.get("run_cvisor_ms", {}).get("median")
    if cv is not None:
        r = ratio(cv, crun)
        out.append(("run /bin/true median (ms)", cv, "crun run", crun, r,
                    TARGETS["run_ratio_crun"], None if r is None else r <= TARGETS["run_ratio_crun"]))
        out.append(("run /bin/true median (ms)", cv, "runc run", runc, ratio(cv, runc), None, None))
    ex, fl = res.get("rpc_exec"), res.get("exec_floor")
    if ex:
        ms = ex["p50_us"] / 1e3
        fms = fl["p50_us"] / 1e3 if fl else None
        r = ratio(ms, fms)
        t = TARGETS["api_exec_ratio_floor"]
        out.append(("API exec (ExecuteAsync+WaitPID) p50 (ms)", ms, "setns+fork+exec floor", fms,
                    r, t, None if r is None else r <= t))
        out.append(("API exec p99 (ms)", ex["p99_us"] / 1e3, "setns+fork+exec floor",
                    fl["p99_us"] / 1e3 if fl else None,
                    ratio(ex["p99_us"], fl["p99_us"]) if fl else None, None, None))
    cx = res.get("cli_exec_cvisor_ms", {}).get("median")
    if cx is not None:
        for rt in ("crun", "runc"):
            b = res.get(f"cli_exec_{rt}_ms", {}).get("median")
            r = ratio(cx, b)
            t = TARGETS["cli_exec_ratio_crun"] if rt == "crun" else None
            out.append(("exec CLI /bin/true median (ms)", cx, f"{rt} exec", b, r, t,
                        None if r is None or t is None else r <= t))
    if "boot_rss_kib" in res:
        mib = res["boot_rss_kib"] / 1024
        out.append(("boot RSS, idle sandbox (MiB)", mib, "", None, None, TARGETS["boot_rss_mib"],
                    mib <= TARGETS["boot_rss_mib"]))
    if "boot_rss_after_kib" in res:
        out.append(("boot RSS after the benches (MiB)", res["boot_rss_after_kib"] / 1024, "", None,
                    None, None, None))
    sfb = res.get("statefile")
    if sfb:
        for way in ("encode", "decode"):
            v, b = sfb[f"{way}_mb_s"], sfb[f"lz4f_{way}_mb_s"]
            out.append((f"state file {way}, 256 MiB pages (MB/s)", v, f"LZ4F alone, {way}", b,
                        ratio(v, b), None, None))
        out.append(("state file size / data", sfb["file_bytes"] / (256 << 20), "LZ4F alone",
                    sfb["lz4f_bytes"] / (256 << 20), ratio(sfb["file_bytes"], sfb["lz4f_bytes"]),
                    None, None))
    import pods_bench
    out += pods_bench.pod_rows(res, ratio, TARGETS["sub_start_ratio_crun"])
    return out


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def print_table(table, notes):
    hdr = ("metric", "cvisor", "baseline", "value", "ratio", "target", "")
    lines = [hdr]
    for m, v, bl, bv, r, t, ok in table:
        lines.append((m, fmt(v), bl or "-", fmt(bv) if bl else "-",
                      fmt(r) if r is not None else "-", f"<= {t}" if t is not None else "-",
                      "" if ok is None else ("ok" if ok else "MISSED")))
    w = [max(len(row[i]) for row in lines) for i in range(len(hdr))]
    for i, row in enumerate(lines):
        print("  ".join(c.ljust(w[j]) if j in (0, 2) else c.rjust(w[j])
                        for j, c in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    for n in notes:
        print(f"note: {n}")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(path, table):
    """Horizontal bars, one pair per comparison, each pair scaled to its max."""
    pairs = [(m, v, bl, bv, r) for m, v, bl, bv, r, t, ok in table if v is not None]
    W, left, barw, rowh = 900, 330, 440, 54
    H = 60 + rowh * len(pairs) + 20
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         '<text x="10" y="24" font-size="16" font-weight="bold">cvisor vs baselines '
         '(shorter is better except calls/s)</text>',
         '<rect x="10" y="34" width="12" height="10" fill="#2b6cb0"/>'
         '<text x="26" y="43">cvisor</text>'
         '<rect x="90" y="34" width="12" height="10" fill="#a0aec0"/>'
         '<text x="106" y="43">baseline</text>']
    y = 60
    for m, v, bl, bv, r in pairs:
        top = max(v, bv or 0) or 1
        o.append(f'<text x="10" y="{y + 14}">{esc(m)}</text>')
        if bl:
            o.append(f'<text x="10" y="{y + 32}" fill="#555">vs {esc(bl)}'
                     f'{"" if r is None else f"  (ratio {fmt(r)})"}</text>')
        o.append(f'<rect x="{left}" y="{y + 4}" width="{max(1, barw * v / top):.1f}" '
                 f'height="14" fill="#2b6cb0"/>')
        o.append(f'<text x="{left + barw * v / top + 6:.1f}" y="{y + 15}">{fmt(v)}</text>')
        if bl:
            bw = barw * (bv or 0) / top
            o.append(f'<rect x="{left}" y="{y + 22}" width="{max(1, bw):.1f}" height="14" '
                     f'fill="#a0aec0"/>')
            o.append(f'<text x="{left + bw + 6:.1f}" y="{y + 33}">{fmt(bv)}</text>')
        y += rowh
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--rpc", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (namespaces, cgroups)")
    b = Bench(a)
    failed = False
    try:
        for step in (b.sandbox_benches, b.run_benches, b.cli_exec_benches,
                     b.statefile_benches, b.pod_benches, b.checkpoint_benches):
            try:
                log(f"running {step.__name__}")
                step()
            except Exception as e:
                failed = True
                b.notes.append(f"{step.__name__} failed: {e}")
        try:
            log("running port_forward_bench")
            port_forward_bench(b)
        except Exception as e:
            failed = True
            b.notes.append(f"port_forward_bench failed: {e}")
    finally:
        b.cleanup()
    # A traced syscall vs the raw seccomp-notify round trip (bench/trace_bench.py).
    try:
        log("running trace_bench")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import trace_bench
        b.res["trace"] = trace_bench.run(a.bin, a.bundle,
                                         os.path.join(os.path.dirname(a.raw), "trace_cost"),
                                         b.notes)
        trace_bench.print_result(b.res["trace"])
    except Exception as e:
        failed = True
        b.notes.append(f"trace_bench failed: {e}")
    table = rows(b.res) + port_forward_rows(b.res)
    b.res["table"] = [dict(zip(("metric", "cvisor", "baseline", "baseline_value", "ratio",
                                "target", "ok"), r)) for r in table]
    b.res["notes"] = b.notes
    print_table(table, b.notes)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(b.res, f, indent=1)
    write_svg(os.path.join(a.out, "results.svg"), table)
    print(f"wrote {os.path.join(a.out, 'results.json')} and {os.path.join(a.out, 'results.svg')}")
    return 1 if failed else 0


# ---------------------------------------------------------------- port forward
# containerManager.PortForward against direct loopback TCP, the same server
# and client in the same run: a sandbox with --network host runs busybox
# httpd on a free port serving PF_MIB MiB from its tmpfs; each round
# downloads the file once straight from 127.0.0.1:port and once through a
# socketpair handed to PortForward (the sandbox splices it to the same
# httpd), alternating. The target is throughput >= 0.8x direct, i.e. a
# download time <= 1.25x.

PF_MIB = 64
PF_ROUNDS = 7
PF_TARGET_TIME_RATIO = 1.25


def _pf_download(sock, nbytes):
    """Seconds to GET /big over sock and read every byte of it."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    t0 = time.perf_counter()
    sock.sendall(b"GET /big HTTP/1.0\r\n\r\n")
    got = 0
    while True:
        n = sock.recv_into(view)
        if not n:
            break
        got += n
    dt = time.perf_counter() - t0
    if got < nbytes:
        raise RuntimeError(f"port-forward bench: {got} bytes of {nbytes}")
    return dt


def port_forward_bench(b):
    import socket
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rpc",
                                    "python"))
    import cvisor_client
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = (f"mkdir -p /tmp/www && head -c {PF_MIB << 20} /dev/zero > /tmp/www/big && "
             f"exec httpd -f -p 127.0.0.1:{port} -h /tmp/www")
    bundle = make_bundle(b.fixture, os.path.join(b.tmp, "b-httpd"), ["sh", "-c", serve])
    sid = "bench-pf-" + secrets.token_hex(4)
    run([b.bin, "--root", b.root, "--network", "host", "create", "--bundle", bundle, sid],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run(b.cv("start", sid))
        deadline = time.monotonic() + 20
        while True:  # until httpd answers with the whole file
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                    _pf_download(c, PF_MIB << 20)
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        sock = os.path.join(b.root, sid, "control.sock")
        direct, fwd = [], []
        with cvisor_client.Client(sock) as cl:
            for _ in range(PF_ROUNDS):
                with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                    direct.append(_pf_download(c, PF_MIB << 20))
                mine, theirs = socket.socketpair()
                with mine:
                    cl.call("containerManager.PortForward",
                            {"ContainerID": sid, "Port": port, "Files": 1}, fds=[theirs])
                    theirs.close()
                    mine.settimeout(30)
                    fwd.append(_pf_download(mine, PF_MIB << 20))
        mib = float(PF_MIB)
        b.res["port_forward"] = {"mib": PF_MIB, "rounds": PF_ROUNDS,
                                 "direct_s": direct, "forward_s": fwd,
                                 "direct_mib_s": mib / statistics.median(direct),
                                 "forward_mib_s": mib / statistics.median(fwd)}
    finally:
        run(b.cv("delete", "--force", sid), check=False)


def port_forward_rows(res):
    pf = res.get("port_forward")
    if not pf:
        return []
    f, d = pf["forward_mib_s"], pf["direct_mib_s"]
    tf, td = pf["mib"] / f * 1e3, pf["mib"] / d * 1e3
    r = tf / td
    return [(f"port-forward throughput, {pf['mib']} MiB (MiB/s)", f, "direct loopback TCP", d,
             f / d, None, None),
            (f"port-forward download {pf['mib']} MiB median (ms)", tf, "direct loopback TCP", td,
             r, PF_TARGET_TIME_RATIO, r <= PF_TARGET_TIME_RATIO)]


if __name__ == "__main__":
    sys.exit(main())

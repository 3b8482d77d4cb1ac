"""Checkpoint and restore throughput (bench/bench.py calls run(); also runs alone:
`python3 bench/checkpoint_bench.py BIN BUNDLE` prints the results as JSON).

A container running the static counter (build/ckpt/counter) with a 256 MiB heap it
has touched, incompressible ("rand") or patterned ("pat"): `cvisor checkpoint`
(the sandbox ends) and `cvisor restore --detach` are timed end to end, CLI included,
and MB/s is the page bytes the state file holds (touched memory) over that time; the
state file's size is reported. Then a small container (no heap): restore --detach
against a cold `run --detach` of the same bundle, alternating, medians, with the
ptrace resumes and the time of the helper's rebuild that the sandbox log reports
(`restore: N processes rebuilt with M ptrace resumes in T ms`).
Each case is repeated ROUNDS times; medians. `checkpoint_bench.py BIN BUNDLE small`
runs the small case alone."""
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROUNDS = 3
SMALL_ROUNDS = 10
HEAP_MIB = 256


def _run(argv, timeout=300, out=False):
    """stdout is read only where asked: create, run and restore hand their
    stdio to the container, which keeps it open. The wait blocks in waitpid
    and a timer kills a command that hangs: subprocess's wait with a timeout
    polls with doubling sleeps (0.5 ms up to 50 ms), which rounded every
    timed command up to ~8, 16 or 32 ms."""
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE if out else subprocess.DEVNULL, stderr=err,
                             text=True)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            stdout, _ = p.communicate()
        finally:
            timer.cancel()
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {err.read().strip()}")
    return subprocess.CompletedProcess(argv, p.returncode, stdout)


def _timed(argv, timeout=300):
    t = time.perf_counter()
    _run(argv, timeout)
    return time.perf_counter() - t


def _bundle(fixture, dest, counter, args):
    rootfs = os.path.join(dest, "rootfs")
    if not os.path.isdir(rootfs):
        shutil.copytree(os.path.join(fixture, "rootfs"), rootfs, symlinks=True)
        shutil.copy(counter, os.path.join(rootfs, "counter"))
    with open(os.path.join(fixture, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"] = {"path": rootfs}
    cfg["process"]["args"] = args
    # The fixture caps memory at 256 MiB: room for the heap and the rest.
    cfg.setdefault("linux", {}).setdefault("resources", {})["memory"] = {"limit": 1 << 30}
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dest


def _log_lines(bundle):
    p = os.path.join(bundle, "rootfs", "root", "log")
    try:
        with open(p) as f:
            return f.read().count("\n")
    except FileNotFoundError:
        return 0


def _wait_lines(bundle, n, timeout=60):
    end = time.time() + timeout
    while _log_lines(bundle) < n:
        if time.time() > end:
            raise RuntimeError(f"counter in {bundle} wrote fewer than {n} lines")
        time.sleep(0.02)


def _page_bytes(cv, img):
    p = _run(cv + ["statefile", "--list", img], out=True)
    return json.loads(p.stdout).get("memory_bytes", 0)


def heap_case(cv, fixture, counter, tmp, fill):
    bundle = _bundle(fixture, os.path.join(tmp, f"b-{fill}"), counter,
                     ["/counter", str(HEAP_MIB), "/root/log", "100", "0", fill])
    ck, rs, sizes, pages = [], [], [], []
    sid = "ckptb" + secrets.token_hex(3)
    _run(cv + ["create", "--bundle", bundle, sid])
    _run(cv + ["start", sid])
    _wait_lines(bundle, 1)
    for i in range(ROUNDS):
        img = os.path.join(tmp, f"img-{fill}-{i}")
        ck.append(_timed(cv + ["checkpoint", "--image-path", img, sid]))
        _run(cv + ["delete", "--force", sid])
        f = os.path.join(img, "checkpoint.img")
        sizes.append(os.path.getsize(f))
        pages.append(_page_bytes(cv, f))
        sid = "ckptb" + secrets.token_hex(3)
        n = _log_lines(bundle)
        rs.append(_timed(cv + ["restore", "--detach", "--image-path", img, "--bundle", bundle,
                               sid]))
        _wait_lines(bundle, n + 1)
        shutil.rmtree(img)
    _run(cv + ["delete", "--force", sid])
    mb = statistics.median(pages) / 1e6
    return {"page_bytes": int(statistics.median(pages)),
            "file_bytes": int(statistics.median(sizes)),
            "checkpoint_s": statistics.median(ck), "restore_s": statistics.median(rs),
            "checkpoint_mb_s": mb / statistics.median(ck),
            "restore_mb_s": mb / statistics.median(rs), "n": ROUNDS}


REBUILT = re.compile(r"rebuilt with (\d+) ptrace resumes in ([\d.]+) ms")


def _rebuild(cv, sid):
    """(ptrace resumes, ms) of the last rebuild in the sandbox's log."""
    with open(os.path.join(cv[cv.index("--root") + 1], sid, "log")) as f:
        m = REBUILT.findall(f.read())
    if not m:
        raise RuntimeError(f"no rebuild line in the log of {sid}")
    return int(m[-1][0]), float(m[-1][1])


def small_case(cv, fixture, counter, tmp):
    bundle = _bundle(fixture, os.path.join(tmp, "b-small"), counter,
                     ["/counter", "0", "/root/log", "100"])
    sid = "ckpts" + secrets.token_hex(3)
    _run(cv + ["create", "--bundle", bundle, sid])
    _run(cv + ["start", sid])
    _wait_lines(bundle, 1)
    img = os.path.join(tmp, "img-small")
    _run(cv + ["checkpoint", "--image-path", img, sid])
    _run(cv + ["delete", "--force", sid])
    rs, runs, resumes, rebuild = [], [], [], []
    for _ in range(SMALL_ROUNDS):
        sid = "ckpts" + secrets.token_hex(3)
        rs.append(_timed(cv + ["restore", "--detach", "--image-path", img, "--bundle", bundle,
                               sid]))
        n, ms = _rebuild(cv, sid)
        resumes.append(n)
        rebuild.append(ms)
        _run(cv + ["delete", "--force", sid])
        sid = "ckptr" + secrets.token_hex(3)
        runs.append(_timed(cv + ["run", "--detach", "--bundle", bundle, sid]))
        _run(cv + ["delete", "--force", sid])
    return {"restore_ms": statistics.median(rs) * 1e3, "run_ms": statistics.median(runs) * 1e3,
            "resumes": statistics.median(resumes), "rebuild_ms": statistics.median(rebuild),
            "n": SMALL_ROUNDS}


def run(bin_path, fixture, only_small=False):
    counter = os.path.join(os.path.dirname(bin_path), "ckpt", "counter")
    if not os.access(counter, os.X_OK):
        raise RuntimeError(f"{counter} not built (make all builds it)")
    tmp = tempfile.mkdtemp(prefix="cvck", dir="/tmp")
    root = os.path.join(tmp, "root")
    cv = [bin_path, "--root", root]
    try:
        if only_small:
            return {"small": small_case(cv, fixture, counter, tmp)}
        return {"rand": heap_case(cv, fixture, counter, tmp, "rand"),
                "pat": heap_case(cv, fixture, counter, tmp, "pat"),
                "small": small_case(cv, fixture, counter, tmp)}
    finally:
        if os.path.isdir(root):
            for sid in os.listdir(root):
                subprocess.run(cv + ["delete", "--force", sid], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


def rows(res):
    """Rows for bench.py's table: (metric, cvisor, baseline, baseline value, ratio, target, ok)."""
    out = []
    c = res.get("checkpoint")
    if not c:
        return out
    for fill, label in (("rand", "incompressible"), ("pat", "patterned")):
        r = c[fill]
        # The table's target column reads "<= t": these are floors, so
        # the floor is in the label and only ok says whether it held.
        out.append((f"checkpoint 256 MiB {label} (MB/s, >= 500)", r["checkpoint_mb_s"], None,
                    None, None, None, r["checkpoint_mb_s"] >= 500))
        out.append((f"restore 256 MiB {label} (MB/s, >= 500)", r["restore_mb_s"], None, None,
                    None, None, r["restore_mb_s"] >= 500))
        out.append((f"state file 256 MiB {label} (MiB)", r["file_bytes"] / 2**20, None, None,
                    None, None, None))
    s = c["small"]
    out.append(("restore small sandbox (ms)", s["restore_ms"], "cold run --detach", s["run_ms"],
                s["restore_ms"] / s["run_ms"], 1.0, s["restore_ms"] < s["run_ms"]))
    # The helper's part: ptrace round trips are what batching cuts (64 one
    # call at a time for this sandbox).
    out.append(("restore small sandbox: ptrace resumes", s["resumes"], "one call per resume", 64,
                s["resumes"] / 64, None, None))
    out.append(("restore small sandbox: helper rebuild (ms)", s["rebuild_ms"], None, None, None,
                None, None))
    return out


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["small"]):
        sys.exit("usage: checkpoint_bench.py BIN BUNDLE [small]")
    print(json.dumps(run(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]),
                         only_small=sys.argv[3:] == ["small"]), indent=1))

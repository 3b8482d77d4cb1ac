#!/usr/bin/python3
"""What tracing a syscall costs (bench/README.md, "Trace cost"), in one run:

  untraced   getppid() in a cvisor container with nothing armed
             (bench/trace_cost loop)
  raw notify the same under a SCMP_ACT_NOTIFY filter answered with CONTINUE
             by a minimal libev supervisor (trace_cost raw), in that same
             container: the floor, under the same cgroup's CPU share
  armed      inside a cvisor container started with --trace-syscalls getppid,
             no session: boot answers every notification at once
  traced     the same with a session on syscall/sysno/110/enter (null sink),
             and with a remote sink drained by a reader (context field
             container_id)

Rounds alternate so load from elsewhere hits every variant alike; the fastest
round and the median are reported. The target, on the fastest rounds:
traced <= 1.2 x raw notify.

Usage: trace_bench.py --bin build/cvisor --bundle test/fixtures/busybox
                      --cost build/trace_cost
Called by bench.py (its results go into results.json under "trace").
"""
import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading

CALLS = 10000
ROUNDS = 5
TARGET = 1.2
SYSNO_GETPPID = 110


def log(msg):
    print(f"trace_bench: {msg}", file=sys.stderr, flush=True)


def sh(argv, timeout=300, detached=False):
    """detached: the container keeps the CLI's stdio (create), so no pipe."""
    p = subprocess.run(argv, stdout=subprocess.DEVNULL if detached else subprocess.PIPE,
                       stderr=subprocess.DEVNULL if detached else subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {(p.stderr or '').strip()}")
    return p.stdout


def make_bundle(fixture, dest, cost):
    with open(os.path.join(fixture, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = os.path.join(os.path.abspath(fixture), "rootfs")
    cfg["process"]["args"] = ["sleep", "600"]
    cfg["process"]["terminal"] = False
    cfg.setdefault("mounts", []).append({"destination": "/trace_cost", "type": "bind",
                                         "source": os.path.abspath(cost),
                                         "options": ["rbind", "ro"]})
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dest


class Drain(threading.Thread):
    """A monitor: accepts the remote sink's connection and reads everything."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.srv.bind(path)
        self.srv.listen(4)
        self.msgs = 0

    def run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with c:
                while c.recv(1 << 16):
                    self.msgs += 1


def run(cvisor, bundle, cost, notes=None):
    notes = notes if notes is not None else []
    root = tempfile.mkdtemp(prefix="cvtb", dir="/tmp")
    sid = "trace-bench-" + secrets.token_hex(3)
    plain_sid = sid + "-plain"
    plain = [cvisor, "--root", root]
    cv = plain + ["--trace-syscalls", "getppid"]
    b = make_bundle(bundle, os.path.join(root, "bundle"), cost)
    drain = Drain(os.path.join(root, "mon.sock"))
    drain.start()
    sessions = {
        "traced_null": {"name": "Default", "points": [
            {"name": f"syscall/sysno/{SYSNO_GETPPID}/enter"}], "sinks": [{"name": "null"}]},
        "traced_remote": {"name": "Default", "points": [
            {"name": f"syscall/sysno/{SYSNO_GETPPID}/enter", "context_fields": ["container_id"]}],
            "sinks": [{"name": "remote", "config": {"endpoint": os.path.join(root, "mon.sock")}}]},
    }
    samples = {k: [] for k in ("untraced", "raw_notify", "armed", "traced_null", "traced_remote")}
    try:
        sh(cv + ["create", "--bundle", b, sid], detached=True)
        sh(cv + ["start", sid])
        sh(plain + ["create", "--bundle", b, plain_sid], detached=True)
        sh(plain + ["start", plain_sid])
        inside = cv + ["exec", sid, "/trace_cost", "loop", str(CALLS)]
        for r in range(ROUNDS):
            log(f"round {r + 1}/{ROUNDS}")
            samples["untraced"].append(float(sh(plain + ["exec", plain_sid, "/trace_cost", "loop",
                                                         str(CALLS * 5)])))
            samples["raw_notify"].append(float(sh(plain + ["exec", plain_sid, "/trace_cost",
                                                           "raw", str(CALLS)])))
            if r:
                sh(cv + ["trace", "delete", sid])
            samples["armed"].append(float(sh(inside)))
            for name, cfg in sessions.items():
                path = os.path.join(root, f"{name}.json")
                with open(path, "w") as f:
                    json.dump(cfg, f)
                sh(cv + ["trace", "create", "--force", "--config", path, sid])
                samples[name].append(float(sh(inside)))
        dropped = json.loads(sh(cv + ["trace", "list", sid]).splitlines()[0])["sinks"][0][
            "status"]["DroppedCount"]
    finally:
        for s in (sid, plain_sid):
            subprocess.run(plain + ["delete", "--force", s], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        drain.srv.close()
        shutil.rmtree(root, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in samples.items()}
    # The fastest round is the one other load disturbed least: the ratios
    # of minima compare the costs themselves, the medians what a loaded
    # machine gives. Both are reported; the target is checked on minima.
    low = {k: min(v) for k, v in samples.items()}
    res = {"calls": CALLS, "rounds": ROUNDS, "ns_per_call": med, "ns_per_call_min": low,
           "samples": samples, "remote_messages": drain.msgs, "remote_dropped": dropped,
           "target": TARGET}
    for k in ("armed", "traced_null", "traced_remote"):
        res[f"{k}_ratio_raw"] = low[k] / low["raw_notify"]
        res[f"{k}_ratio_raw_median"] = med[k] / med["raw_notify"]
    res["ok"] = res["traced_null_ratio_raw"] <= TARGET
    if not res["ok"]:
        notes.append(f"trace: traced syscall {res['traced_null_ratio_raw']:.2f}x the raw notify "
                     f"round trip (target {TARGET})")
    return res


def print_result(res):
    ns, low = res["ns_per_call"], res["ns_per_call_min"]
    print("trace cost (ns per getppid over %d rounds of %d calls: fastest round, median)" %
          (res["rounds"], res["calls"]))
    for k in ("untraced", "raw_notify", "armed", "traced_null", "traced_remote"):
        ratio = res.get(f"{k}_ratio_raw")
        print(f"  {k:14} {low[k]:10.1f} {ns[k]:10.1f}" +
              (f"   {ratio:.2f}x raw notify (median {res[k + '_ratio_raw_median']:.2f}x)"
               if ratio else ""))
    print(f"  remote sink: {res['remote_messages']} messages read, {res['remote_dropped']} dropped;"
          f" target traced <= {res['target']}x raw: {'ok' if res['ok'] else 'MISSED'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--cost", required=True)
    a = ap.parse_args()
    res = run(os.path.abspath(a.bin), os.path.abspath(a.bundle), os.path.abspath(a.cost))
    print_result(res)
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Pods bench (bench.py step `pod_benches`): starting a subcontainer that
runs /bin/true in an already running sandbox, until its exit is known and
it is gone again, against `crun run` of the same bundle, interleaved in the
same run.

- API: CreateSubcontainer + StartSubcontainer (the root fs donated as a
  detached tree made here with open_tree) + Wait + DestroySubcontainer on
  one connection: what a runtime shim talking to the sandbox pays.
- CLI: `cvisor create` (pod annotations: the gofer, the RPCs) + `start` +
  `wait` + `delete`: four CLI processes, as containerd's runc shim drives it.
"""
import ctypes
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time

import msgpack

ITERS = 20
_libc = ctypes.CDLL(None, use_errno=True)


def open_tree(path):
    fd = _libc.syscall(428, -100, path.encode(), 1 | 0o2000000 | 0x8000)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open_tree " + path)
    return fd


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.u = msgpack.Unpacker(raw=False)
        self.id = 0

    def call(self, method, arg, fds=()):
        self.id += 1
        data = msgpack.packb([0, self.id, method, [arg]], use_bin_type=True)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                b"".join(int(f).to_bytes(4, sys.byteorder) for f in fds))] if fds else []
        n = self.s.sendmsg([data], anc)
        if n < len(data):
            self.s.sendall(data[n:])
        while True:
            for m in self.u:
                if m[2] is not None:
                    raise RuntimeError(f"{method}: {m[2]}")
                return m[3]
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("sandbox hung up")
            self.u.feed(d)


def api_once(conn, cid, spec, rootfs, null):
    t0 = time.perf_counter()
    tree = open_tree(rootfs)
    try:
        conn.call("containerManager.CreateSubcontainer", {"CID": cid})
        conn.call("containerManager.StartSubcontainer",
                  {"Spec": spec, "Conf": {}, "CID": cid, "NumGoferFilestoreFDs": 0,
                   "Files": 4}, [null, null, null, tree])
    finally:
        os.close(tree)
    status = conn.call("containerManager.Wait", cid)
    conn.call("containerManager.DestroySubcontainer", cid)
    dt = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"sub /bin/true exited with status {status}")
    return dt


def pod_benches(b, run, timed, make_bundle, pct):
    """b: bench.Bench. Fills b.res["sub_api_ms"], ["sub_cli_ms"], ["sub_crun_ms"]."""
    sid = "bpod-" + secrets.token_hex(3)
    run(b.cv("run", "-d", "--bundle", b.b_sleep, sid), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        sock = os.path.join(b.root, sid, "control.sock")
        with open(os.path.join(b.b_true, "config.json")) as f:
            spec = json.load(f)
        rootfs = spec["root"]["path"]
        ann = {"io.kubernetes.cri.container-type": "container",
               "io.kubernetes.cri.sandbox-id": sid}
        b_sub = os.path.join(b.tmp, "b-sub")
        make_bundle(b.fixture, b_sub, ["/bin/true"])
        with open(os.path.join(b_sub, "config.json")) as f:
            cfg = json.load(f)
        cfg["annotations"] = ann
        with open(os.path.join(b_sub, "config.json"), "w") as f:
            json.dump(cfg, f)
        conn = Conn(sock)
        null = os.open("/dev/null", os.O_RDWR)

        def cli_once(i):
            cid = f"bsc-{i}-{secrets.token_hex(2)}"
            t0 = time.perf_counter()
            run(b.cv("create", "--bundle", b_sub, cid), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            run(b.cv("start", cid))
            run(b.cv("wait", cid))
            run(b.cv("delete", cid))
            return time.perf_counter() - t0

        def baseline(rt):
            exe = getattr(b, rt)
            root = b.crun_root if rt == "crun" else b.runc_root
            return lambda i: timed([exe, "--root", root, "run", "--bundle", b.b_true,
                                    f"bs{rt}-{i}-{secrets.token_hex(2)}"])

        kinds = {"api": lambda i: api_once(conn, f"bsa-{i}-{secrets.token_hex(2)}", spec,
                                           rootfs, null),
                 "cli": cli_once}
        for rt in ("crun", "runc"):
            if getattr(b, rt, None):
                kinds[rt] = baseline(rt)
        times = {k: [] for k in kinds}
        for k, fn in list(kinds.items()):  # warm-up, not counted
            try:
                fn("warm")
            except Exception as e:  # a baseline that cannot run is reported, not fatal
                if k in ("api", "cli"):
                    raise
                b.notes.append(f"pods: {k} run failed: {e}")
                del kinds[k], times[k]
        for i in range(ITERS):
            for k, fn in kinds.items():
                times[k].append(fn(i))
        for k, ts in times.items():
            b.res[f"sub_{k}_ms"] = {"median": statistics.median(ts) * 1e3,
                                    "p99": pct(ts, 0.99) * 1e3, "n": len(ts)}
        os.close(null)
    finally:
        run(b.cv("delete", "--force", sid), check=False)


def pod_rows(res, ratio, target):
    out = []
    crun = res.get("sub_crun_ms", {}).get("median")
    runc = res.get("sub_runc_ms", {}).get("median")
    for k, label in (("api", "sub start+wait+destroy, API (ms)"),
                     ("cli", "sub create+start+wait+delete, CLI (ms)")):
        v = res.get(f"sub_{k}_ms", {}).get("median")
        if v is None:
            continue
        r = ratio(v, crun)
        out.append((label, v, "crun run, same bundle", crun, r, target,
                    None if r is None else r <= target))
        out.append((label, v, "runc run, same bundle", runc, ratio(v, runc), None, None))
    return out

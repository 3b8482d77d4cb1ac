"""Checkpoint and restore of the process state beyond memory, registers and fds
(docs/DESIGN.md, "Checkpoint and restore", docs/API.md "The checkpoint records"): the static victim
test/integration/ckpt/pstate.c lowers rlimits, sets a personality, itimers, a
umask, dumpable and pdeathsig, leaves blocked signals pending (process-wide and
per thread) and changes each thread's uids, gids, groups, capabilities and
securebits inside the container, as the container's init or (tree) as a child
of it, rebuilt through the tree path. After checkpoint and restore, /proc/PID/status
of every thread, /proc/PID/limits and /proc/PID/personality read on the host
are the same, and what the victim reports of itself too. A state file edited to
claim a capability or a hard rlimit beyond the bundle's is refused naming it;
a process with a POSIX timer or a seccomp filter of its own fails to checkpoint,
naming it, and carries on."""
import json
import os
import re
import shutil
import signal
import struct
import time

import pytest

import helpers
import statefile_fmt as sf

PSTATE = os.path.join(os.path.dirname(os.environ.get("CVISOR_BIN", "build/cvisor")),
                      "ckpt", "pstate")

# Per thread: what the kernel says of its credentials, signals and seccomp.
THREAD_KEYS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
               "NoNewPrivs", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "Umask",
               "Seccomp", "Seccomp_filters")

CAP_SYS_ADMIN = 21
RLIMIT_NOFILE = 7


def victim_bundle(env, tag, mode):
    if not os.path.exists(PSTATE):
        pytest.fail(f"{PSTATE} not built (make all builds it)")
    root = os.path.join(env.root, f".pstate-{tag}")
    rootfs = os.path.join(root, "rootfs")
    shutil.copytree(os.path.join(env.fixture, "rootfs"), rootfs, symlinks=True)
    shutil.copy(PSTATE, os.path.join(rootfs, "pstate"))
    bundle = helpers.make_bundle(env.fixture, os.path.join(root, "bundle"),
                                 args=["/pstate", mode, "/root/log"])
    cfg = helpers.fixture_config(bundle)
    cfg["root"]["path"] = rootfs
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    return bundle, os.path.join(rootfs, "root", "log")


def lines(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [l for l in f.read().splitlines() if l.startswith("n=")]


def wait_lines(log, n):
    helpers.wait_until(lambda: len(lines(log)) >= n, what=f"{n} lines in {log}")


def report(line):
    """The victim's line as a dict (n= and the itimer values left to the caller)."""
    return dict(kv.split("=", 1) for kv in line.split())


def init_pid(cli, sid):
    return int(json.loads(cli.run("state", sid, check=True).stdout)["pid"])


def start(cli, bundle):
    sid = helpers.new_id()
    cli.detached("create", "--bundle", bundle, sid)
    cli.run("start", sid, check=True)
    return sid


def snapshot(pid):
    """What the host sees of the process: per thread (by its id in the
    container) the THREAD_KEYS of its status; its limits and personality."""
    threads = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/status") as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        ns = st["NSpid"].split()[-1]
        threads[ns] = {k: st[k].strip() for k in THREAD_KEYS}
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    with open(f"/proc/{pid}/personality") as f:
        pers = f.read().strip()
    return threads, limits, pers


def victim_pid(cli, sid, mode):
    """The process that set the state: the init, or (tree) its only child."""
    pid = init_pid(cli, sid)
    if mode == "tree":
        helpers.wait_until(lambda: len(helpers.children(pid)) == 1, what="the init's child")
        pid = helpers.children(pid)[0]
    return pid


@pytest.mark.parametrize("mode", ["state", "tree"])
def test_pstate_survives_checkpoint_and_restore(env, cli, mode):
    bundle, log = victim_bundle(env, "s" + mode, mode)
    sid = start(cli, bundle)
    wait_lines(log, 3)
    pid = victim_pid(cli, sid, mode)
    ns = helpers.nspid(pid)[-1]
    before = snapshot(pid)
    threads = before[0]
    # The victim did what it says (else the comparison below proves little).
    assert len(threads) == 2, threads
    main = threads[str(ns)]
    second = next(v for k, v in threads.items() if k != str(ns))
    assert main["Uid"].split() == ["1000", "1001", "1002", "1003"], main
    assert main["Gid"].split() == ["1000", "1001", "1002", "1003"], main
    assert main["Groups"].split() == ["100", "200"] and second["Groups"].split() == ["300"]
    assert second["Uid"].split()[:3] == ["3000", "3001", "3002"] and second["CapEff"] == "0" * 16
    assert main["CapAmb"] != "0" * 16 and main["CapInh"] != "0" * 16
    assert main["CapBnd"] != second["CapBnd"]
    assert int(main["ShdPnd"], 16) and int(main["SigPnd"], 16) and int(second["SigPnd"], 16)
    assert main["SigPnd"] != second["SigPnd"]
    assert "Max open files            512                  1000" in before[1]
    seen = report(lines(log)[-1])
    assert (seen["dumpable"], seen["pdeath"], seen["sb"], seen["umask"], seen["pers"]) == \
        ("1", "1", "11", "27", "60000"), seen
    fds_before = sorted(os.listdir(f"/proc/{pid}/fd"))

    img = os.path.join(env.root, ".img-pstate")
    p = cli.run("checkpoint", "--image-path", img, sid)
    assert p.returncode == 0, p.stderr
    cut = len(lines(log))
    cli.run("delete", "--force", sid)
    rid, rc, out = helpers.restore_detached(cli, img, bundle)
    assert rc == 0, out
    try:
        wait_lines(log, cut + 3)
        rpid = victim_pid(cli, rid, mode)
        after = snapshot(rpid)
        assert after[0] == before[0]
        assert after[1] == before[1]
        assert after[2] == before[2]
        assert sorted(os.listdir(f"/proc/{rpid}/fd")) == fds_before
        old, new = report(lines(log)[cut - 1]), report(lines(log)[-1])
        for k in ("dumpable", "pdeath", "sb", "umask", "pers"):
            assert new[k] == old[k], (k, old, new)
        # Intervals as set; remaining values running on from where they were.
        r_old, r_new = old["itreal"].split("/"), new["itreal"].split("/")
        assert r_new[1] == r_old[1] == "500.000000"
        assert 0 < int(r_new[0]) <= int(r_old[0]) <= 1000
        assert new["itvirt"].split("/")[0] == "7.250000"
        assert 1990 <= int(new["itvirt"].split("/")[1]) <= 2000
        assert 2990 <= int(new["itprof"].split("/")[0]) <= 3000
        # The queued siginfos came back as they were sent: values 42 and 43
        # from sigqueue (SI_QUEUE, -1) by the victim itself.
        os.kill(rpid, signal.SIGUSR1)
        helpers.wait_until(lambda: "rt1=" in lines(log)[-1], what="the victim taking SIGRTMIN+1")
        took = next(l for l in lines(log) if "rt1=" in l).split("rt1=")[1]
        assert took == f"42/-1/{ns},43/-1/{ns},", took
        # Taken: SIGRTMIN+1 (35, bit 34) is gone from the shared set, SIGUSR2 is still there.
        shd = int(snapshot(rpid)[0][str(ns)]["ShdPnd"], 16)
        assert shd == int(main["ShdPnd"], 16) & ~(1 << 34) and shd & (1 << 11), hex(shd)
    finally:
        cli.run("delete", "--force", rid)


def rewrite(src, dst, edit):
    """Reads the state file src, applies edit(records) and writes it to dst as
    a valid file (the checksums are made again)."""
    meta, recs = sf.parse(open(src, "rb").read())
    edit(recs)
    body, n, nbytes = b"", 0, 0
    for r in recs:
        if r["kind"] == "end":
            continue
        fields = {k: v for k, v in r.items() if k not in ("kind", "data", "_data")}
        body += sf.record(r["kind"], data=r["_data"], **fields)
        n += 1
        nbytes += len(r["_data"])
    os.makedirs(dst)
    with open(os.path.join(dst, "checkpoint.img"), "wb") as f:
        f.write(sf.envelope(meta) + sf.frame(body + sf.end(n, nbytes)))


def claim_sys_admin(recs):
    t = next(r for r in recs if r["kind"] == "thread")
    t["cap_bnd"] |= 1 << CAP_SYS_ADMIN
    t["cap_prm"] |= 1 << CAP_SYS_ADMIN
    t["cap_eff"] |= 1 << CAP_SYS_ADMIN


def claim_nofile(recs):
    t = next(r for r in recs if r["kind"] == "task")
    lim = list(struct.unpack("<32Q", t["rlimits"]))
    lim[2 * RLIMIT_NOFILE + 1] = 1048576
    t["rlimits"] = struct.pack("<32Q", *lim)


def clear_nnp(recs):
    next(r for r in recs if r["kind"] == "thread")["no_new_privs"] = 0


def test_pstate_beyond_the_bundle_is_refused(env, cli):
    bundle, log = victim_bundle(env, "r", "state")
    sid = start(cli, bundle)
    wait_lines(log, 3)
    img = os.path.join(env.root, ".img-pstate-r")
    p = cli.run("checkpoint", "--image-path", img, sid)
    assert p.returncode == 0, p.stderr
    cli.run("delete", "--force", sid)
    src = os.path.join(img, "checkpoint.img")
    # The unedited file goes through the same rewrite and restores.
    good = os.path.join(env.root, ".img-pstate-same")
    rewrite(src, good, lambda recs: None)
    rid, rc, out = helpers.restore_detached(cli, good, bundle)
    assert rc == 0, out
    cli.run("delete", "--force", rid)
    for tag, edit, want in [
        ("cap", claim_sys_admin,
         r"process \d+: capability CAP_SYS_ADMIN is not in the container's bounding set"),
        ("nofile", claim_nofile,
         r"process \d+: rlimit RLIMIT_NOFILE hard 1048576 exceeds the container's 1024"),
        ("nnp", clear_nnp, r"process \d+: no_new_privs is off in the state file"),
    ]:
        bad = os.path.join(env.root, f".img-pstate-{tag}")
        rewrite(src, bad, edit)
        n = len(lines(log))
        rid, rc, out = helpers.restore_detached(cli, bad, bundle)
        assert rc != 0 and re.search(want, out), (tag, out)
        # Nothing of it runs on, nothing is left of the sandbox.
        time.sleep(0.2)
        assert len(lines(log)) == n, tag
        assert not os.path.exists(os.path.join(env.root, rid)), tag


@pytest.mark.parametrize("mode,kind,what", [
    ("timer", "kind: posix timer", "POSIX timer"),
    ("seccomp", "kind: seccomp filter", "a seccomp filter it installed itself"),
])
def test_pstate_unsupported_refused_and_running(env, cli, mode, kind, what):
    bundle, log = victim_bundle(env, mode, mode)
    sid = start(cli, bundle)
    wait_lines(log, 2)
    pid = init_pid(cli, sid)
    boot = _boot_pid(env, sid)
    fds_before = helpers.settled_fd_count(boot)
    img = os.path.join(env.root, f".img-{mode}")
    p = cli.run("checkpoint", "--image-path", img, sid)
    assert p.returncode != 0
    assert kind in p.stderr and what in p.stderr and f"process {pid}" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(img, "checkpoint.img"))
    assert '"running"' in cli.run("state", sid, check=True).stdout
    n = len(lines(log))
    wait_lines(log, n + 3)
    assert helpers.settled_fd_count(boot) == fds_before
    cli.run("delete", "--force", sid)


def _boot_pid(env, sid):
    with open(os.path.join(env.root, sid, "state.json")) as f:
        return int(json.load(f)["bootPid"])

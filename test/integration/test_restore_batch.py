"""Restore by batches of injected syscalls (docs/DESIGN.md, "Checkpoint and restore", kernel/ptrace_batch.c):
the static counter is restored in a few ptrace resumes and counts on; a batch
that fails midway (a saved fd's file or a mapped file gone from the rootfs)
reports that call's own error, leaves nothing of the container running, and
the failure comes back as the reply on the connection that asked. The same
image then restores once the file is back."""
import json
import os
import re

import pytest

import helpers
import test_checkpoint as tc

# The sandbox log's line for a rebuild (kernel/restore_helper.c).
RESUMES = re.compile(r"(\d+) processes rebuilt with (\d+) ptrace resumes")
# One call at a time took 64 for this restore; batched it takes 15 (25 with
# h-pstate's process-state step, whose calls are single). The bound leaves
# room for such steps, not for unbatching.
MAX_RESUMES = 32


def checkpointed_counter(env, cli, tag):
    bundle, log = tc.counter_bundle(env, tag, ["/counter", "1", "/root/log", "30"])
    sid = helpers.new_id()
    cli.detached("create", "--bundle", bundle, sid)
    cli.run("start", sid, check=True)
    tc.wait_count(log, 3)
    init = tc._init_pid(cli, sid)
    maps = (ranges(init), fds(init))
    img = os.path.join(env.root, f".img-{tag}")
    p = cli.run("checkpoint", "--image-path", img, sid)
    assert p.returncode == 0, p.stderr
    cli.run("delete", "--force", sid)
    return bundle, log, img, maps


def fds(pid):
    """{fd: what it links to} of pid."""
    d = f"/proc/{pid}/fd"
    return {int(n): os.readlink(os.path.join(d, n)) for n in os.listdir(d)}


def ranges(pid):
    """Address ranges and protections of pid's mappings."""
    with open(f"/proc/{pid}/maps") as f:
        return [tuple(line.split()[:2]) for line in f]


def rootfs_of(bundle):
    return helpers.fixture_config(bundle)["root"]["path"]


def procs_in(rootfs):
    """Host pids whose root is rootfs: what of the container still runs."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.path.realpath(f"/proc/{d}/root") == os.path.realpath(rootfs):
                    out.append(int(d))
            except OSError:
                pass
    return out


def restore_resumes(env, sid):
    with open(os.path.join(env.root, sid, "log")) as f:
        m = RESUMES.findall(f.read())
    assert m, "no rebuild line in the sandbox log"
    return int(m[-1][0]), int(m[-1][1])


def test_restore_counts_on_in_few_resumes(env, cli):
    bundle, log, img, before = checkpointed_counter(env, cli, "ok")
    last = tc.counters(log)[-1]
    rid, rc, out = helpers.restore_detached(cli, img, bundle)
    assert rc == 0, out
    try:
        tc.wait_count(log, len(tc.counters(log)) + 3)
        c = tc.counters(log)
        assert c == list(range(c[0], c[-1] + 1)) and last + 1 in c
        procs, resumes = restore_resumes(env, rid)
        assert procs == 1 and 0 < resumes <= MAX_RESUMES, resumes
        # Exactly the saved mappings (the trampoline's code page and batch
        # area are gone) and the saved fds, each at its number (no copy left
        # over from placing them, none of the staged ones).
        pid = tc._init_pid(cli, rid)
        maps, held = before
        assert ranges(pid) == maps
        now = fds(pid)
        assert sorted(now) == sorted(held), (held, now)
        # (0-2 are the stdio each CLI call hands in: external, replaced.)
        assert {k: v for k, v in now.items() if k > 2} == \
            {k: v for k, v in held.items() if k > 2}, (held, now)
    finally:
        cli.run("delete", "--force", rid)


def test_fd_whose_file_is_gone_fails_its_batch_and_leaves_nothing(env, cli):
    bundle, log, img, _ = checkpointed_counter(env, cli, "fd")
    rootfs = rootfs_of(bundle)
    moved = log + ".moved"
    os.rename(log, moved)
    rid, rc, out = helpers.restore_detached(cli, img, bundle)
    assert rc != 0
    # That call's own error: the fd, its path and the open's errno.
    assert re.search(r"restoring process 1: fd \d+ \(/root/log\): No such file or directory",
                     out), out
    assert not os.path.exists(os.path.join(env.root, rid)), "the sandbox was left behind"
    assert procs_in(rootfs) == [], "a process of the failed restore still runs"
    assert not os.path.exists(log), "the restored counter ran"
    # The same image restores once the file is back.
    os.rename(moved, log)
    n = len(tc.counters(log))
    _, rc, out = helpers.restore_detached(cli, img, bundle, rid)
    assert rc == 0, out
    try:
        tc.wait_count(log, n + 2)
    finally:
        cli.run("delete", "--force", rid)


def test_mapped_file_gone_fails_midway_and_is_answered(env, cli):
    bundle, log, img, _ = checkpointed_counter(env, cli, "map")
    rootfs = rootfs_of(bundle)
    # The image maps /counter; the new init execs the same program under
    # another name, so only the mapping's openat can fail.
    os.rename(os.path.join(rootfs, "counter"), os.path.join(rootfs, "counter.moved"))
    cfg = helpers.fixture_config(bundle)
    cfg["process"]["args"] = ["/counter.moved", "1", "/root/log", "30"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    n = len(tc.counters(log))
    sb = env.new_sandbox(bundle)
    fd = os.open(os.path.join(img, "checkpoint.img"), os.O_RDONLY)
    try:
        with sb.raw() as conn:
            # The connection answers before the restore...
            assert conn.call("containerManager.ContainerRuntimeState", sb.id) is not None
            with pytest.raises(Exception) as e:
                conn.call("containerManager.Restore", {"SandboxID": sb.id, "Files": 1},
                          fds=(fd,))
            # ...and the failure comes back on it as a reply naming that
            # call, not as a dropped connection.
            msg = str(e.value)
            assert "restore: restoring process 1: opening /counter to map it: No such file or " \
                "directory" in msg, msg
    finally:
        os.close(fd)
    # A failure after the init's release kills the sandbox (docs/API.md):
    # nothing of the container runs, its boot ends, delete finds nothing left.
    helpers.wait_until(lambda: procs_in(rootfs) == [], what="the failed restore's processes gone")
    helpers.wait_until(lambda: not alive(sb.boot_pid), what="the sandbox's boot gone")
    assert len(tc.counters(log)) == n, "the restored counter ran"
    sb.delete()
    assert not os.path.exists(sb.dir)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_tmpfs_files_spanning_batches_come_back_whole(env, cli):
    # A file larger than a batch's data area (8 KiB: written over several
    # batches, its fd given by number after the first), an empty one, a
    # nested directory, modes and an owner.
    bundle, log = tc.counter_bundle(env, "tmp", ["/counter", "1", "/root/log", "30"])
    sid = helpers.new_id()
    cli.detached("create", "--bundle", bundle, sid)
    cli.run("start", sid, check=True)
    tc.wait_count(log, 2)
    script = ("mkdir -p /tmp/a/b && head -c 100000 /dev/urandom > /tmp/a/b/big && "
              ": > /tmp/a/empty && chmod 600 /tmp/a/b/big && chmod 751 /tmp/a/b && "
              "chown 1000:1000 /tmp/a/empty && ")
    show = ("md5sum /tmp/a/b/big /tmp/a/empty; stat -c '%n %a %u %g %s' /tmp/a /tmp/a/b "
            "/tmp/a/b/big /tmp/a/empty")
    p = cli.run("exec", sid, "sh", "-c", script + show)
    assert p.returncode == 0, p.stderr
    before = p.stdout
    img = os.path.join(env.root, ".img-tmp")
    assert cli.run("checkpoint", "--image-path", img, sid).returncode == 0
    cli.run("delete", "--force", sid)
    rid, rc, out = helpers.restore_detached(cli, img, bundle)
    assert rc == 0, out
    try:
        p = cli.run("exec", rid, "sh", "-c", show)
        assert p.returncode == 0, p.stderr
        assert p.stdout == before
        # 100000 bytes need 13 batches of 8 KiB, not 25 writes of a page.
        _, resumes = restore_resumes(env, rid)
        print(f"tmpfs restore: {resumes} ptrace resumes")
        assert resumes <= MAX_RESUMES + 13, resumes
    finally:
        cli.run("delete", "--force", rid)

"""Restore of a large process (docs/DESIGN.md, "Checkpoint and restore", "Reading the state
file once or in parallel"): the static victim test/integration/ckpt/bigmem.c holds a 96 MiB heap
(half a pattern, half incompressible) and checks every word of it before each
"n=<counter> heap=ok" line it appends to /root/log. A file this large is
rebuilt while a second thread of the restore helper still checks it, and the
rebuilt process is let run only once that thread says the file is whole:

- the good file restores with every byte of the heap intact;
- a copy damaged near its end (inside the incompressible pages, which the
  unchecked reading takes as they are) is refused with the reader's
  checksum error AFTER the init was released, which only the checker can
  have found: nothing was let run (no line written, nothing left in the
  cgroup), and the sandbox ends with its killed root container;
- a truncated copy is refused with the reader's "truncated" error before
  the release: the sandbox stays created, its control socket answers and
  boot's fds are back to their count."""
import json
import os
import shutil
import time

import pytest

import helpers

BIGMEM = os.path.join(os.path.dirname(os.environ.get("CVISOR_BIN", "build/cvisor")),
                      "ckpt", "bigmem")
MIB = 96


def _lines(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return f.read().splitlines()


def _bundle(env, tag=".big", args=("/bigmem", str(MIB), "/root/log", "100")):
    if not os.path.exists(BIGMEM):
        pytest.fail(f"{BIGMEM} not built (make all builds it)")
    root = os.path.join(env.root, tag)
    rootfs = os.path.join(root, "rootfs")
    shutil.copytree(os.path.join(env.fixture, "rootfs"), rootfs, symlinks=True)
    shutil.copy(BIGMEM, os.path.join(rootfs, "bigmem"))
    bundle = helpers.make_bundle(env.fixture, os.path.join(root, "bundle"), args=list(args))
    cfg = helpers.fixture_config(bundle)
    cfg["root"]["path"] = rootfs
    # The fixture caps memory at 256 MiB; the heap and the restore need room.
    cfg.setdefault("linux", {}).setdefault("resources", {})["memory"] = {"limit": 1 << 30}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    return bundle, os.path.join(rootfs, "root", "log")


@pytest.fixture(scope="module")
def image(module_env):
    """(bundle, log, state file) of the victim, checkpointed (it stopped)."""
    env = module_env
    bundle, log = _bundle(env)
    sid = helpers.new_id()
    env.cli.detached("create", "--bundle", bundle, sid)
    env.cli.run("start", sid, check=True)
    helpers.wait_until(lambda: len(_lines(log)) >= 2, what="bigmem lines")
    img = os.path.join(env.root, ".bigimg")
    env.cli.run("checkpoint", "--image-path", img, sid, check=True)
    env.cli.run("delete", "--force", sid)
    f = os.path.join(img, "checkpoint.img")
    assert os.path.getsize(f) > (MIB // 2) << 20, "the incompressible half is in the file"
    assert all(l.endswith("heap=ok bad=0") for l in _lines(log)), _lines(log)
    return bundle, log, f


def test_large_restore_keeps_every_byte(module_env, image):
    bundle, log, f = image
    cli = module_env.cli
    n = len(_lines(log))
    rid, rc, out = helpers.restore_detached(cli, os.path.dirname(f), bundle)
    assert rc == 0, out
    try:
        helpers.wait_until(lambda: len(_lines(log)) >= n + 2, what="lines after the restore")
        got = _lines(log)
        assert all(l.endswith("heap=ok bad=0") for l in got), got[n:]
        c = [int(l.split()[0][2:]) for l in got]
        assert c == list(range(c[0], c[-1] + 1)), "counter not continuous across restore"
    finally:
        cli.run("delete", "--force", rid)


def _damaged_copy(env, f, name, mutate):
    data = bytearray(open(f, "rb").read())
    data = mutate(data)
    path = os.path.join(env.root, name)
    with open(path, "wb") as out:
        out.write(data)
    return path


def _restore_rpc(env, bundle, path):
    """Restore through the API into a sandbox made by `create` (the CLI's
    restore deletes what it made on failure). Returns (sandbox, the error
    reply's text, boot's fds before the call)."""
    sb = env.new_sandbox(bundle)
    before = helpers.settled_fd_count(sb.boot_pid)
    fd = os.open(path, os.O_RDONLY)
    try:
        with sb.raw() as conn:
            with pytest.raises(Exception) as e:
                conn.call("containerManager.Restore", {"Files": 1}, fds=(fd,))
    finally:
        os.close(fd)
    return sb, str(e.value), before


def _nothing_runs(sb, log, n, allowed=()):
    time.sleep(0.5)
    assert len(_lines(log)) == n, "the damaged restore ran the victim"
    for d in helpers.cgroup_paths(sb.id):
        left = [p for p in helpers.cgroup_procs_under(d) if p not in allowed]
        assert left == [], f"processes left in {d}"


def test_damage_near_the_end_is_found_by_the_checker(module_env, image, monkeypatch):
    bundle, log, f = image
    # The checker reports 1.5 s late (its sandbox's boot reads this at the
    # restore): were the rebuilt process let run before the checker's word,
    # it would write lines meanwhile.
    monkeypatch.setenv("CVISOR_RESTORE_CHECK_DELAY_MS", "1500")
    size = os.path.getsize(f)

    def flip(data):
        # 4 MiB before the end: inside the last MiBs of the heap, its
        # incompressible half, stored as raw LZ4 blocks, so the reading
        # that skips the checksums takes the byte as it is.
        data[size - (4 << 20)] ^= 0x40
        return data

    bad = _damaged_copy(module_env, f, ".bigbad.img", flip)
    n = len(_lines(log))
    sb, err, _ = _restore_rpc(module_env, bundle, bad)
    # The control socket answered with the reader's error, naming the damage.
    assert "checksum mismatch" in err and "damaged" in err, err
    # Found after the release, so only by the checker: the init had been
    # let exec and was being rebuilt, and the refusal killed it; the sandbox
    # ends with its root container as after any failure past the release (a
    # file refused before the release leaves the sandbox created: below).
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="the sandbox ended")
    _nothing_runs(sb, log, n)
    assert all(l.endswith("heap=ok bad=0") for l in _lines(log))


def test_truncated_large_file_is_refused(module_env, image):
    bundle, log, f = image
    size = os.path.getsize(f)
    cut = _damaged_copy(module_env, f, ".bigcut.img", lambda d: d[:size * 3 // 5])
    n = len(_lines(log))
    sb, err, fds_before = _restore_rpc(module_env, bundle, cut)
    assert "truncated" in err, err
    # The unchecked reading meets the end too: refused before the release,
    # the container stays created (its init waiting, nothing else) and the
    # sandbox carries on with the fds it had.
    assert sb.call("containerManager.ContainerRuntimeState", sb.id) is not None
    assert sb.state()["status"] == "created"
    _nothing_runs(sb, log, n, allowed=(sb._init_host_pid,))
    assert helpers.settled_fd_count(sb.boot_pid) == fds_before


def test_large_tree_streams_each_task(env, cli):
    """A shell (the init, task 1) whose child holds the large heap (task 2):
    each task's pages are streamed from the file in its own pass, which
    stops after that task's records, while the checker reads it all."""
    bundle, log = _bundle(env, ".bigtree", ("/bin/sh", "-c", f"/bigmem {MIB} /root/log 100 & wait"))
    sid = helpers.new_id()
    cli.detached("create", "--bundle", bundle, sid)
    cli.run("start", sid, check=True)
    helpers.wait_until(lambda: len(_lines(log)) >= 2, what="bigmem lines")
    img = os.path.join(env.root, ".bigtreeimg")
    cli.run("checkpoint", "--image-path", img, sid, check=True)
    cli.run("delete", "--force", sid)
    n = len(_lines(log))
    rid, rc, out = helpers.restore_detached(cli, img, bundle)
    assert rc == 0, out
    try:
        helpers.wait_until(lambda: len(_lines(log)) >= n + 2, what="lines after the restore")
        got = _lines(log)
        assert all(l.endswith("heap=ok bad=0") for l in got), got[n:]
        procs = [p for d in helpers.cgroup_paths(rid) for p in helpers.cgroup_procs_under(d)]
        assert len(set(procs)) == 2, procs
    finally:
        cli.run("delete", "--force", rid)

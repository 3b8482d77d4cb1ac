"""The CLI verbs nothing else covers: `update` (the container's cgroup limits,
read back from the container's own cgroup files, found from /proc/<pid>/cgroup
and the mount table), `spec` (a config.json that `cvisor run` runs as it is),
`features` (runc's JSON, checked against what the runtime accepts), and
containerManager.Signal mode 2 (the foreground process group of a terminal)."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

import helpers
from helpers import M_EXEC, M_SIGNAL, M_WAITPID, exec_args

MiB = 1 << 20


# --------------------------------------------------------------------------
# update


def limits(sb):
    """(memory limit in bytes or "max", pids.max) of the container's cgroup."""
    init = sb.init_host_pid()
    mem, _ = helpers.read_cgroup_file(init, "memory", "memory.limit_in_bytes", "memory.max")
    pids, _ = helpers.read_cgroup_file(init, "pids", "pids.max", "pids.max")
    return (int(mem) if mem != "max" else mem), pids


def test_update_flags_change_the_containers_cgroup(cli, running_sandbox):
    sb = running_sandbox
    assert limits(sb) == (256 * MiB, "1024")  # the fixture's config.json
    p = cli.run("update", "--memory", "96m", "--pids-limit", "77", sb.id)
    assert p.returncode == 0, p.stderr
    assert limits(sb) == (96 * MiB, "77")
    # -1 is unlimited, as in runc.
    p = cli.run("update", "--pids-limit", "-1", sb.id)
    assert p.returncode == 0, p.stderr
    assert limits(sb) == (96 * MiB, "max")


def test_update_resources_file_and_flags_override_it(cli, running_sandbox, root_dir):
    sb = running_sandbox
    f = os.path.join(root_dir, ".resources.json")
    with open(f, "w") as fp:
        json.dump({"memory": {"limit": 80 * MiB}, "pids": {"limit": 55}}, fp)
    p = cli.run("update", "--resources", f, sb.id)
    assert p.returncode == 0, p.stderr
    assert limits(sb) == (80 * MiB, "55")
    p = cli.run("update", "-r", f, "--pids-limit", "66", sb.id)
    assert p.returncode == 0, p.stderr
    assert limits(sb) == (80 * MiB, "66")


@pytest.mark.parametrize("args,error", [
    (["--memory", "12x"], 'cvisor: --memory: invalid size "12x"'),
    (["--memory", "lots"], 'cvisor: --memory: invalid size "lots"'),
    (["--pids-limit", "7z"], 'cvisor: --pids-limit: invalid number "7z"'),
    (["--cpu-share", "-5"], "cvisor: --cpu-share must not be negative"),
    ([], "cvisor: update needs --resources FILE or a limit flag (see cvisor update --help)"),
], ids=["memory-suffix", "memory-word", "pids-number", "negative-share", "nothing"])
def test_update_rejects_bad_flags_and_changes_nothing(cli, running_sandbox, args, error):
    sb = running_sandbox
    before = limits(sb)
    p = cli.run("update", *args, sb.id)
    assert p.returncode != 0
    assert error in p.stderr, p.stderr
    assert limits(sb) == before


def test_update_rejects_bad_resources_file(cli, running_sandbox, root_dir):
    sb = running_sandbox
    before = limits(sb)
    f = os.path.join(root_dir, ".bad.json")
    with open(f, "w") as fp:
        json.dump({"pids": {"limit": "many"}}, fp)
    p = cli.run("update", "-r", f, sb.id)
    assert p.returncode != 0
    assert f in p.stderr and "pids.limit" in p.stderr, p.stderr
    assert limits(sb) == before


def test_update_kernel_refusal_names_the_file(cli, running_sandbox):
    # A CFS quota under the kernel's 1 ms minimum: the write fails.
    sb = running_sandbox
    p = cli.run("update", "--cpu-quota", "1", sb.id)
    assert p.returncode != 0
    assert f'updating container "{sb.id}"' in p.stderr, p.stderr
    assert 'writing "1" to ' in p.stderr and "Invalid argument" in p.stderr, p.stderr


def test_update_unknown_container(cli):
    p = cli.run("update", "--pids-limit", "5", "tst-nonexistent")
    assert p.returncode != 0
    assert "tst-nonexistent" in p.stderr, p.stderr


# --------------------------------------------------------------------------
# spec


def spec_bundle(cli, fixture_bundle, root_dir, name):
    """A bundle whose config.json is exactly what `cvisor spec` wrote; its
    rootfs is the fixture's busybox rootfs, bind-mounted read-only (spec
    says root.path "rootfs", readonly)."""
    d = os.path.join(root_dir, name)
    os.makedirs(os.path.join(d, "rootfs"))
    p = cli.run("spec", "--bundle", d)
    assert p.returncode == 0, p.stderr
    rootfs = os.path.join(d, "rootfs")
    subprocess.run(["mount", "--bind", os.path.join(fixture_bundle, "rootfs"), rootfs],
                   check=True, timeout=10)
    # Read-only, so that nothing (the clean-up's rmtree included) can write
    # through it into the shared fixture.
    r = subprocess.run(["mount", "-o", "remount,bind,ro", rootfs], timeout=10)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", rootfs], timeout=10)
        raise AssertionError(f"could not make the bind mount {rootfs} read-only")
    return d


@pytest.fixture
def spec_dir(cli, fixture_bundle, root_dir):
    d = spec_bundle(cli, fixture_bundle, root_dir, ".spec")
    yield d
    subprocess.run(["umount", "-l", os.path.join(d, "rootfs")], check=True, timeout=10)


def test_spec_writes_runcs_default_config(spec_dir):
    with open(os.path.join(spec_dir, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["ociVersion"].startswith("1.")
    assert cfg["process"]["terminal"] is True  # `runc spec`'s default: an interactive sh
    assert cfg["process"]["args"] == ["sh"]
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert {ns["type"] for ns in cfg["linux"]["namespaces"]} == \
        {"pid", "network", "ipc", "uts", "mount"}
    assert {m["destination"] for m in cfg["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/sys"}


def test_spec_refuses_to_overwrite_and_bad_flags(cli, spec_dir):
    path = os.path.join(spec_dir, "config.json")
    with open(path) as f:
        before = f.read()
    p = cli.run("spec", "--bundle", spec_dir)
    assert p.returncode != 0
    assert "File config.json exists. Remove it first" in p.stderr, p.stderr
    with open(path) as f:
        assert f.read() == before
    p = cli.run("spec", "--rootless", "--bundle", spec_dir)
    assert p.returncode != 0 and "--rootless is not supported" in p.stderr, p.stderr
    p = cli.run("spec", "extra")
    assert p.returncode != 0 and "spec takes no arguments" in p.stderr, p.stderr


def read_until(fd, pred, timeout=helpers.CLI_TIMEOUT):
    """Reads the pty master until pred(output) or EOF; returns the bytes."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not pred(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; output so far: {buf!r}")
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: every slave fd is closed
            break
        if not data:
            break
        buf += data
    return buf


def test_spec_config_runs_on_a_terminal(cli, spec_dir):
    """`cvisor run` on the unedited spec: terminal true, so its stdin must
    be a terminal; the container's sh gets it as its controlling tty."""
    sid = helpers.new_id()
    master, slave = pty.openpty()
    proc = subprocess.Popen(cli.argv("run", "--bundle", spec_dir, sid), stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        # (isatty, not ttyname: which /dev/pts the terminal shows up as in
        # the container is test_podman's test_tty.)
        os.write(master, b"echo spec-ok-$((6*7)); [ -t 0 ] && [ -t 1 ] && echo on-a-tty; exit 7\n")
        out = read_until(master, lambda b: re.search(rb"spec-ok-42\r?\non-a-tty", b))
        assert proc.wait(timeout=helpers.CLI_TIMEOUT) == 7, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    assert not os.path.exists(os.path.join(cli.root, sid))


def test_spec_config_runs_without_a_caller_terminal(cli, spec_dir):
    """As runc: `run` makes the pty itself and proxies it even when its own
    stdin is not a terminal (no raw mode then)."""
    cfg_path = os.path.join(spec_dir, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["sh", "-c", "tty; exit 6"]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    p = cli.run("run", "--bundle", spec_dir, helpers.new_id())
    assert p.returncode == 6, p.stderr
    assert p.stdout.replace("\r", "").strip() == "/dev/pts/0"


# --------------------------------------------------------------------------
# features

RUNC_FEATURE_KEYS = {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux",
                     "annotations"}
NS_FILES = {"cgroup": "cgroup", "ipc": "ipc", "mount": "mnt", "network": "net", "pid": "pid",
            "user": "user", "uts": "uts", "time": "time"}


@pytest.fixture(scope="module")
def features(cvisor):
    p = subprocess.run([cvisor, "features"], capture_output=True, text=True,
                       timeout=helpers.CLI_TIMEOUT)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_features_is_runcs_json(features, cvisor):
    assert RUNC_FEATURE_KEYS <= set(features), sorted(features)
    ver = subprocess.run([cvisor, "--version"], capture_output=True, text=True,
                         timeout=helpers.CLI_TIMEOUT).stdout
    assert f"spec: {features['ociVersionMax']}" in ver
    assert features["ociVersionMin"] <= features["ociVersionMax"]
    assert isinstance(features["hooks"], list)
    assert all(isinstance(o, str) for o in features["mountOptions"])
    linux = features["linux"]
    assert {"namespaces", "capabilities", "cgroup", "seccomp"} <= set(linux)
    assert set(linux["cgroup"]) >= {"v1", "v2", "systemd", "systemdUser"}
    assert all(isinstance(v, bool) for v in linux["cgroup"].values())
    assert linux["seccomp"]["enabled"] is True
    assert {"actions", "operators", "archs"} <= set(linux["seccomp"])
    assert all(k.startswith("org.opencontainers.runtime-spec.features.")
               for k in features["annotations"])


def test_features_namespaces_exist_here(features):
    for ns in features["linux"]["namespaces"]:
        assert ns in NS_FILES, ns
        assert os.path.exists(f"/proc/self/ns/{NS_FILES[ns]}"), ns


def test_features_capabilities_are_the_ones_run_applies(features, env):
    """Every capability listed is one the kernel knows, and a spec naming
    them gets them in the container's bounding set (those this test process
    holds: a runtime cannot hand out what it has not got)."""
    caps = features["linux"]["capabilities"]
    assert len(set(caps)) == len(caps)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    assert len(caps) == min(last + 1, 41), caps  # 41: through CAP_CHECKPOINT_RESTORE (40)
    with open("/proc/self/status") as f:
        held = int(re.search(r"CapBnd:\s*([0-9a-f]+)", f.read()).group(1), 16)
    # The list is in kernel order (CAP_CHOWN is 0): name i is capability i.
    usable = [c for i, c in enumerate(caps) if held >> i & 1]
    want = sum(1 << i for i, _ in enumerate(caps) if held >> i & 1)
    sets = {k: usable for k in ("bounding", "effective", "permitted")}
    bundle = env.make_bundle(args=["sh", "-c", "grep CapBnd /proc/self/status"],
                             process={"capabilities": sets})
    p = env.cli.run("run", "--bundle", bundle, helpers.new_id())
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.split()[1], 16) == want, p.stdout


# --------------------------------------------------------------------------
# Signal mode 2: the foreground process group of the process's terminal


def sig2(conn, cid, pid, signo=signal.SIGINT):
    return conn.call(M_SIGNAL, {"CID": cid, "Signo": signo, "PID": pid, "Mode": 2})


def test_signal_fg_without_a_terminal(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        # The init (PID 0) has no terminal: the fixture says terminal false.
        with pytest.raises(RuntimeError) as e:
            sig2(conn, sb.id, 0)
        assert str(e.value) == "no TTY attached"
        # Nor has a process exec'd without StdioIsPty.
        pid, out = sb.exec(["sleep", "1000"], conn=conn)
        out.close()
        with pytest.raises(RuntimeError) as e:
            sig2(conn, sb.id, pid)
        assert str(e.value) == "no TTY attached"
        # No such process.
        with pytest.raises(RuntimeError) as e:
            sig2(conn, sb.id, 4000)
        assert str(e.value) == f'no thread group found: container "{sb.id}" not found'
        # Nothing got the signal.
        assert helpers.pid_alive(sb.init_host_pid())
        assert conn.call(M_SIGNAL, {"CID": sb.id, "Signo": 9, "PID": pid, "Mode": 0}) is None
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == helpers.status_of(sig=9)


def test_signal_fg_created_container(sandbox):
    with sandbox.raw() as conn:
        with pytest.raises(RuntimeError) as e:
            sig2(conn, sandbox.id, 0)
        assert str(e.value) == f'container "{sandbox.id}" not started'
    assert helpers.pid_alive(sandbox.init_host_pid())


def proc_stat(host_pid):
    with open(f"/proc/{host_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # state ppid pgrp session tty_nr tpgid
    return {"pgrp": int(fields[2]), "session": int(fields[3]), "tpgid": int(fields[5])}


def host_pid_of(sb, ns_pid):
    """Host pid of the process whose pid in the sandbox's root namespace is
    ns_pid, among the container's cgroup members."""
    d = helpers.cgroup_dir(sb.init_host_pid())
    for hp in helpers.cgroup_procs_under(d):
        try:
            if helpers.nspid(hp)[1:2] == [ns_pid]:
                return hp
        except FileNotFoundError:
            pass
    return None


def test_signal_fg_reaches_the_terminals_foreground_job(running_sandbox):
    """A job-control shell on a pty runs `sleep` as the foreground job, in
    its own process group. Mode 2 with the shell's PID signals that group:
    the sleep dies of SIGTERM and the shell, not signalled, reports it.
    (Not SIGINT: ash re-raises a foreground job's SIGINT on itself.)"""
    sb = running_sandbox
    master, slave = pty.openpty()
    try:
        with sb.raw() as conn:
            arg = exec_args(sb.id, ["sh", "-c", "set -m; sleep 1000; echo fg-status=$?"],
                            guest_fds=[0, 1, 2], StdioIsPty=True)
            try:
                pid = conn.call(M_EXEC, arg, fds=[slave, slave, slave])
            finally:
                os.close(slave)
            sh = helpers.wait_until(lambda: host_pid_of(sb, pid), what="the shell's host pid")

            def foreground_sleep():
                st = proc_stat(sh)
                for c in helpers.children(sh):
                    cs = proc_stat(c)
                    if cs["pgrp"] == c and st["tpgid"] == c:
                        return c
                return None

            sleeper = helpers.wait_until(foreground_sleep,
                                         what="sleep to be the terminal's foreground job")
            assert proc_stat(sh)["pgrp"] != sleeper  # the shell is not in that group
            assert sig2(conn, sb.id, pid, signal.SIGTERM) is None
            status = conn.call(M_WAITPID, {"PID": pid, "CID": sb.id})
            out = read_until(master, lambda b: b"fg-status=" in b and b"\n" in b.split(b"fg-status=")[1])
        assert status == helpers.status_of(0), out
        assert b"fg-status=143" in out, out  # 128 + SIGTERM
        assert not helpers.pid_alive(sleeper)
    finally:
        os.close(master)


def test_signal_fg_pty_process_in_its_own_group(running_sandbox):
    """Without job control the pty process's own group is the foreground:
    mode 2 then signals the process itself (and PID 0 still has no TTY)."""
    sb = running_sandbox
    master, slave = pty.openpty()
    try:
        with sb.raw() as conn:
            arg = exec_args(sb.id, ["sleep", "1000"], guest_fds=[0, 1, 2], StdioIsPty=True)
            try:
                pid = conn.call(M_EXEC, arg, fds=[slave, slave, slave])
            finally:
                os.close(slave)
            hp = helpers.wait_until(lambda: host_pid_of(sb, pid), what="the sleep's host pid")
            st = proc_stat(hp)
            assert st["session"] == hp and st["tpgid"] == hp, st  # its own controlling tty
            assert sig2(conn, sb.id, pid, signal.SIGTERM) is None
            status = conn.call(M_WAITPID, {"PID": pid, "CID": sb.id})
            assert status == helpers.status_of(sig=signal.SIGTERM)
            with pytest.raises(RuntimeError, match="^no TTY attached$"):
                sig2(conn, sb.id, 0)
    finally:
        os.close(master)

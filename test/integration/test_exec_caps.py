"""Capabilities of exec'd processes: exactly the sets asked for, as runc and
crun give them. Handing uid 0 every capability boot held let a container
mount a cgroup v1 hierarchy and have the host run its release_agent."""
import json
import os

import helpers
from helpers import M_EXEC, M_WAITPID, exec_args

CAP_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
MOUNT_CGROUP = ("mkdir -p /tmp/cg && mount -t cgroup -o none,name=cvisor-escape cgroup /tmp/cg; "
                "echo rc=$?")


def caps_of(status_text):
    out = {}
    for line in status_text.splitlines():
        k, _, v = line.partition(":")
        if k in CAP_KEYS:
            out[k] = int(v.strip(), 16)
    assert set(out) == set(CAP_KEYS), status_text
    return out


def init_caps(sb):
    pid = helpers.wait_until(sb.init_host_pid, what="the container's init")
    with open(f"/proc/{pid}/status") as f:
        return caps_of(f.read())


def cli_exec_caps(cli, sb, *flags):
    p = cli.run("exec", *flags, sb.id, "cat", "/proc/self/status", check=True)
    return caps_of(p.stdout)


def test_cli_exec_gets_the_containers_caps(env, cli):
    sb = env.new_sandbox(start=True)  # the fixture's spec lists capabilities
    want = init_caps(sb)
    assert want["CapEff"] != 0
    assert cli_exec_caps(cli, sb) == want


def test_cli_exec_without_caps_in_spec_gets_none(env, cli, make_bundle):
    # A config.json without process.capabilities: the init has none, and an
    # exec of uid 0 must not have more (it had every one of boot's).
    bundle = make_bundle()
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    del cfg["process"]["capabilities"]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    sb = env.new_sandbox(bundle, start=True)
    want = init_caps(sb)
    assert want == {k: 0 for k in CAP_KEYS}
    assert cli_exec_caps(cli, sb) == want


def test_cli_exec_process_json_without_caps_gets_none(env, cli, root_dir):
    sb = env.new_sandbox(start=True)
    proc = os.path.join(root_dir, "process.json")
    with open(proc, "w") as f:
        json.dump({"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                   "env": [helpers.PATH_ENV]}, f)
    p = cli.run("exec", "--process", proc, sb.id, check=True)
    assert caps_of(p.stdout) == {k: 0 for k in CAP_KEYS}


def test_execute_async_without_caps_gets_none(running_sandbox):
    status, out = running_sandbox.run_exec(["cat", "/proc/self/status"])
    assert status == 0, out
    assert caps_of(out.decode()) == {k: 0 for k in CAP_KEYS}


def test_execute_async_with_caps_gets_exactly_them(running_sandbox):
    sb = running_sandbox
    kill, chown = 1 << 5, 1 << 0
    # uid 0's execve makes permitted and effective the bounding set (no
    # file capabilities needed): ask for the three alike, as configs do.
    caps = {"PermittedCaps": kill | chown, "InheritableCaps": 0, "EffectiveCaps": kill | chown,
            "BoundingCaps": kill | chown, "AmbientCaps": 0}
    r, w = os.pipe()
    with sb.raw() as conn:
        pid = conn.call(M_EXEC, exec_args(sb.id, ["cat", "/proc/self/status"], guest_fds=[1],
                                          Capabilities=caps), fds=[w])
        os.close(w)
        with os.fdopen(r) as f:
            got = caps_of(f.read())
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 0
    assert got == {"CapInh": 0, "CapPrm": kill | chown, "CapEff": kill | chown,
                   "CapBnd": kill | chown, "CapAmb": 0}


def test_exec_uid0_cannot_mount_cgroup(env, cli):
    sb = env.new_sandbox(start=True)
    # Through the CLI (the container's sets: no CAP_SYS_ADMIN) ...
    p = cli.run("exec", sb.id, "sh", "-c", MOUNT_CGROUP)
    assert "rc=0" not in p.stdout, p.stdout + p.stderr
    assert "rc=" in p.stdout and ("denied" in p.stderr or "not permitted" in p.stderr), p.stderr
    # ... and through ExecuteAsync without Capabilities.
    status, out = sb.run_exec(["sh", "-c", MOUNT_CGROUP + " 2>&1"])
    text = out.decode()
    assert "rc=0" not in text, text
    assert "denied" in text or "not permitted" in text, text

"""OCI hooks (spec.hooks), as the runtime spec and runc run them:

  prestart, createRuntime  runtime namespace, after the container's namespaces
                           and mounts exist, before pivot_root (create)
  createContainer          container namespaces, host root still visible (create)
  startContainer           in the container, just before the user process (start)
  poststart                runtime namespace, before `start` returns
  poststop                 runtime namespace, at `delete`, once the container is gone

Each hook reads the state JSON on stdin (the document `cvisor state` prints,
with the status of that moment). A failing prestart/createRuntime/
createContainer/startContainer fails the verb, names the hook and leaves
nothing behind; poststart/poststop failures are warnings. The hooks are sh
scripts: host ones run the host's /bin/sh, startContainer the container's
(the script reaches the container through a bind mount).
"""
import json
import os
import stat
import subprocess

import pytest

import helpers

# Records where and how it ran: <out>/<kind>.stdin, <out>/<kind>.info
# (key=value lines) and a line in <out>/order. $1 = kind, $2 = out dir as
# the hook sees it.
RECORD = r"""#!/bin/sh
kind=$1
out=$2
cat > "$out/$kind.stdin"
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$out/$kind.stdin")
{
  echo "mnt=$(readlink /proc/self/ns/mnt)"
  echo "initmnt=$(readlink /proc/$pid/ns/mnt 2>/dev/null)"
  echo "cwd=$(pwd)"
  echo "argv=$0 $*"
  echo "hookenv=$HOOK_ENV"
  echo "ls=$(ls / | tr '\n' ' ')"
  if [ -n "$STATE_DIR" ]; then
    if [ -e "$STATE_DIR" ]; then echo "statedir=present"; else echo "statedir=gone"; fi
  fi
} > "$out/$kind.info"
echo "$kind" >> "$out/order"
"""

# Fails after a word on stderr; records that it ran.
FAIL = r"""#!/bin/sh
echo "$1" >> "$2/order"
cat > "$2/$1.stdin"
echo "something went wrong in $1" >&2
exit 3
"""

# Outlives any sane timeout, with a child in its process group.
SLOW = r"""#!/bin/sh
echo $$ > "$1/hook.pid"
sleep 600 &
echo $! > "$1/child.pid"
wait
"""

CONTAINER_OUT = "/tmp/hooks"  # where the bind mount of the out dir is in the container
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


@pytest.fixture
def out(env):
    d = os.path.join(env.root, ".hooks-" + helpers.new_id())
    os.makedirs(d)
    write_script(os.path.join(d, "record.sh"), RECORD)
    write_script(os.path.join(d, "fail.sh"), FAIL)
    write_script(os.path.join(d, "slow.sh"), SLOW)
    return d


def hook(out, kind, script="record.sh", seen=None, **extra):
    """A hook running `script` of the out dir; seen = the out dir where the
    hook runs (the container's bind mount for startContainer)."""
    base = seen or out
    h = {"path": os.path.join(base, script), "args": [script, kind, base],
         "env": [PATH, f"HOOK_ENV=env-of-{kind}"]}
    h.update(extra)
    return h


def bundle_with(env, out, hooks, args=("sleep", "600"), **overrides):
    cfg = helpers.fixture_config(env.fixture)
    mounts = cfg["mounts"] + [{"destination": CONTAINER_OUT, "type": "bind", "source": out,
                               "options": ["rbind", "rw"]}]
    return env.make_bundle(args=list(args), hooks=hooks, mounts=mounts,
                           annotations={"org.test.hooks": "yes"}, **overrides)


def info(out, kind):
    with open(os.path.join(out, kind + ".info")) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def state_in(out, kind):
    with open(os.path.join(out, kind + ".stdin")) as f:
        return json.load(f)


def order(out):
    try:
        with open(os.path.join(out, "order")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def host_mnt():
    return os.readlink("/proc/self/ns/mnt")


def create(env, bundle, sid):
    pidfile = os.path.join(env.root, f".{sid}.pid")
    rc, text = env.cli.detached("create", "--bundle", bundle, "--pid-file", pidfile, sid,
                                check=False)
    pid = None
    if rc == 0:
        with open(pidfile) as f:
            pid = int(f.read())
    return rc, text, pid


def assert_nothing_left(env, sid):
    assert not os.path.exists(os.path.join(env.root, sid)), "the state dir is left"
    for d in helpers.cgroup_paths(sid):
        assert not os.path.exists(d), f"cgroup {d} is left"
    # No boot (its argv names the sandbox) nor anything else of it.
    def gone():
        for name in os.listdir("/proc"):
            if not name.isdigit() or not helpers.pid_alive(int(name)):
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if sid.encode() in argv:
                return False
        return True
    helpers.wait_until(gone, what=f"the processes of {sid} to be gone")
    # The container's mounts lived in its own mount namespace only.
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    for path in (env.root, os.path.join(os.path.abspath(env.fixture), "rootfs")):
        assert f" {path}" not in mounts, f"a mount under {path} is left on the host"


def test_create_hooks_run_at_their_points(env, out):
    sid = helpers.new_id()
    hooks = {k: [hook(out, k)] for k in ("prestart", "createRuntime", "createContainer")}
    bundle = bundle_with(env, out, hooks)
    rc, text, init = create(env, bundle, sid)
    env.sandboxes.append(helpers.Sandbox(env.cli, bundle, sid))
    assert rc == 0, text
    assert order(out) == ["prestart", "createRuntime", "createContainer"]
    container_mnt = os.readlink(f"/proc/{init}/ns/mnt")
    assert container_mnt != host_mnt()
    for kind in ("prestart", "createRuntime", "createContainer"):
        st = state_in(out, kind)
        # prestart is told "created" (crun's value, runtime-tools' hooks_stdin),
        # the others runc's "creating" (test_oci_validation_fixes.py).
        assert st["status"] == ("created" if kind == "prestart" else "creating"), (kind, st)
        assert st["id"] == sid and st["pid"] == init, (kind, st)
        assert st["bundle"] == bundle and st["ociVersion"], (kind, st)
        assert st["annotations"] == {"org.test.hooks": "yes"}, (kind, st)
        i = info(out, kind)
        assert i["hookenv"] == f"env-of-{kind}", (kind, i)
        assert i["argv"] == f"{out}/record.sh {kind} {out}", (kind, i)
        # Before pivot_root: the host's root is what / shows.
        assert set(i["ls"].split()) == {n for n in os.listdir("/") if not n.startswith(".")}, \
            (kind, i)
    # The runtime's namespace, the container's namespaces already made.
    for kind in ("prestart", "createRuntime"):
        i = info(out, kind)
        assert i["mnt"] == host_mnt(), (kind, i)
        assert i["initmnt"] == container_mnt, (kind, i)
        assert i["cwd"] == bundle, (kind, i)  # runc's create runs in the bundle
    i = info(out, "createContainer")
    assert i["mnt"] == container_mnt, i
    # The same document `cvisor state` prints, but for the status.
    st = json.loads(env.cli.run("state", sid, check=True).stdout)
    assert st["status"] == "created"
    assert {**state_in(out, "createRuntime"), "status": "created"} == st


def test_start_hooks_and_poststop(env, out):
    sid = helpers.new_id()
    hooks = {
        "startContainer": [hook(out, "startContainer", seen=CONTAINER_OUT)],
        "poststart": [hook(out, "poststart")],
        "poststop": [hook(out, "poststop", env=[PATH, "HOOK_ENV=env-of-poststop",
                                                f"STATE_DIR={env.root}/{sid}"])],
    }
    # The user process shows it runs after startContainer.
    args = ["sh", "-c", f"cp {CONTAINER_OUT}/order {CONTAINER_OUT}/seen-by-process; sleep 600"]
    bundle = bundle_with(env, out, hooks, args=args)
    rc, text, init = create(env, bundle, sid)
    sb = helpers.Sandbox(env.cli, bundle, sid)
    env.sandboxes.append(sb)
    assert rc == 0, text
    assert order(out) == []
    sb._init_host_pid = init
    p = env.cli.run("start", sid)
    assert p.returncode == 0, p.stderr
    # poststart ran before start returned, after startContainer.
    assert order(out) == ["startContainer", "poststart"]
    container_mnt = os.readlink(f"/proc/{init}/ns/mnt")

    st = state_in(out, "startContainer")
    assert st["status"] == "created" and st["pid"] == init and st["id"] == sid, st
    i = info(out, "startContainer")
    assert i["mnt"] == container_mnt, i
    assert i["hookenv"] == "env-of-startContainer", i
    status, ls = sb.run_exec(["ls", "/"])
    assert status == 0
    assert i["ls"].split() == ls.decode().split(), i  # the container's root

    st = state_in(out, "poststart")
    assert st["status"] == "running" and st["pid"] == init, st
    i = info(out, "poststart")
    assert i["mnt"] == host_mnt(), i

    def seen():
        try:
            with open(os.path.join(out, "seen-by-process")) as f:
                return f.read().split()
        except FileNotFoundError:
            return None
    assert helpers.wait_until(seen, what="the user process") == ["startContainer"]

    env.cli.run("kill", sid, "KILL", check=True)
    helpers.wait_until(lambda: not helpers.pid_alive(init), what="the init to die")
    p = env.cli.run("delete", sid)
    assert p.returncode == 0, p.stderr
    assert order(out)[-1] == "poststop"
    st = state_in(out, "poststop")
    assert st["status"] == "stopped" and st["pid"] == 0 and st["id"] == sid, st
    i = info(out, "poststop")
    assert i["mnt"] == host_mnt(), i
    assert i["statedir"] == "gone", i  # after the container is gone
    assert_nothing_left(env, sid)


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(env, out, kind):
    sid = helpers.new_id()
    hooks = {kind: [hook(out, kind, script="fail.sh"), hook(out, kind + "-after")],
             "poststop": [hook(out, "poststop")]}
    rc, text, _ = create(env, bundle_with(env, out, hooks), sid)
    assert rc != 0, text
    assert (f"spec.hooks.{kind}[0]: {out}/fail.sh exited with status 3; "
            f"stderr: something went wrong in {kind}") in text, text
    # The list stops at the failure; the lifecycle goes on to poststop.
    assert order(out) == [kind, "poststop"], order(out)
    init = state_in(out, kind)["pid"]
    helpers.wait_until(lambda: not helpers.pid_alive(init), what="the container's init to die")
    assert_nothing_left(env, sid)


def test_failing_start_container_hook_fails_start(env, out):
    sid = helpers.new_id()
    hooks = {"startContainer": [hook(out, "startContainer", script="fail.sh", seen=CONTAINER_OUT)],
             "poststart": [hook(out, "poststart")],
             "poststop": [hook(out, "poststop")]}
    bundle = bundle_with(env, out, hooks, args=["sh", "-c", f"touch {CONTAINER_OUT}/ran"])
    rc, text, init = create(env, bundle, sid)
    env.sandboxes.append(helpers.Sandbox(env.cli, bundle, sid))
    assert rc == 0, text
    p = env.cli.run("start", sid)
    assert p.returncode != 0
    assert ("spec.hooks.startContainer[0]: /tmp/hooks/fail.sh exited with status 3; "
            "stderr: something went wrong in startContainer") in p.stderr, p.stderr
    assert order(out) == ["startContainer", "poststop"], order(out)
    assert not os.path.exists(os.path.join(out, "ran")), "the user process ran"
    helpers.wait_until(lambda: not helpers.pid_alive(init), what="the container's init to die")
    assert_nothing_left(env, sid)


def test_timeout_kills_the_hook(env, out):
    sid = helpers.new_id()
    hooks = {"createRuntime": [{"path": os.path.join(out, "slow.sh"), "args": ["slow.sh", out],
                                "timeout": 1}]}
    rc, text, _ = create(env, bundle_with(env, out, hooks), sid)
    assert rc != 0, text
    assert (f"spec.hooks.createRuntime[0]: {out}/slow.sh did not exit within its timeout of 1 s "
            "and was killed") in text, text
    for name in ("hook.pid", "child.pid"):  # its process group went too
        with open(os.path.join(out, name)) as f:
            pid = int(f.read())
        helpers.wait_until(lambda: not helpers.pid_alive(pid), what=f"{name} {pid} to die")
    assert_nothing_left(env, sid)


def test_poststart_and_poststop_failures_only_warn(env, out):
    sid = helpers.new_id()
    hooks = {"poststart": [hook(out, "poststart", script="fail.sh")],
             "poststop": [hook(out, "poststop", script="fail.sh")]}
    sb = helpers.Sandbox(env.cli, bundle_with(env, out, hooks), sid)
    env.sandboxes.append(sb)
    sb.create()
    p = env.cli.run("start", sid)
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stderr and f"spec.hooks.poststart[0]: {out}/fail.sh exited with status 3" \
        in p.stderr, p.stderr
    assert sb.state()["status"] == "running"
    env.cli.run("kill", sid, "KILL", check=True)
    helpers.wait_until(lambda: sb.state()["status"] == "stopped", what="the container to stop")
    p = env.cli.run("delete", sid)
    assert p.returncode == 0, p.stderr
    assert f"spec.hooks.poststop[0]: {out}/fail.sh exited with status 3" in p.stderr, p.stderr
    assert order(out) == ["poststart", "poststop"]
    assert_nothing_left(env, sid)


def test_hook_without_env_gets_the_runtimes(env, out):
    # runc gives a hook without "env" its own environment.
    sid = helpers.new_id()
    h = hook(out, "poststart")
    del h["env"]
    sb = helpers.Sandbox(env.cli, bundle_with(env, out, {"poststart": [h]}), sid)
    env.sandboxes.append(sb)
    sb.create()
    p = env.cli.run("start", sid, env={**os.environ, "HOOK_ENV": "from-the-cli"})
    assert p.returncode == 0, p.stderr
    assert info(out, "poststart")["hookenv"] == "from-the-cli"


def test_hook_args_default_to_path(env, out):
    # No args: argv is the path alone (execv semantics, as runc).
    sid = helpers.new_id()
    script = write_script(os.path.join(out, "argv0.sh"),
                          f'#!/bin/sh\necho "$0|$#" > {out}/argv0\n')
    rc, text, _ = create(env, bundle_with(env, out, {"prestart": [{"path": script}]}), sid)
    env.sandboxes.append(helpers.Sandbox(env.cli, None, sid))
    assert rc == 0, text
    with open(os.path.join(out, "argv0")) as f:
        assert f.read().strip() == f"{script}|0"


@pytest.mark.parametrize("hooks,message", [
    ({"prestart": [{"path": "relative/hook"}]},
     'spec.hooks.prestart[0].path: must be an absolute path, got "relative/hook"'),
    ({"poststop": [{"path": "/bin/true", "timeout": 0}]},
     "spec.hooks.poststop[0].timeout: must be a positive number of seconds, got 0"),
    ({"createRuntime": [{"args": ["x"]}]}, "spec.hooks.createRuntime[0].path: missing"),
    ({"poststart": [{"path": "/bin/true", "env": "A=1"}]},
     "spec.hooks.poststart[0].env: expected array"),
])
def test_bad_hooks_are_refused(env, out, hooks, message):
    sid = helpers.new_id()
    rc, text, _ = create(env, bundle_with(env, out, hooks), sid)
    assert rc != 0
    assert message in text, text
    assert_nothing_left(env, sid)


def test_missing_hook_binary(env, out):
    sid = helpers.new_id()
    hooks = {"createRuntime": [{"path": os.path.join(out, "nope")}]}
    rc, text, _ = create(env, bundle_with(env, out, hooks), sid)
    assert rc != 0
    assert f"spec.hooks.createRuntime[0]: executing {out}/nope: No such file or directory" \
        in text, text
    assert_nothing_left(env, sid)


def test_features_lists_the_six_hooks(env):
    features = json.loads(env.cli.run("features", check=True).stdout)
    assert features["hooks"] == ["prestart", "createRuntime", "createContainer",
                                 "startContainer", "poststart", "poststop"]


def test_start_waits_for_a_slow_start_container_hook(env, out):
    # Longer than the CLI's usual 5 s bound on StartRoot, within its timeout.
    sid = helpers.new_id()
    slow = {"path": "/bin/sh", "args": ["sh", "-c", "sleep 6"], "timeout": 60}
    sb = helpers.Sandbox(env.cli, bundle_with(env, out, {"startContainer": [slow]}), sid)
    env.sandboxes.append(sb)
    sb.create()
    p = env.cli.run("start", sid)
    assert p.returncode == 0, p.stderr
    assert sb.state()["status"] == "running"

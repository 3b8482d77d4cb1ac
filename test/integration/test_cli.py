"""The OCI CLI: run, exec, kill, wait, state, list, ps, pause/resume, delete, errors."""
import json
import os
import subprocess
import time

import pytest

import helpers


def test_run_exit_code_and_stdout(env):
    bundle = env.make_bundle(args=["sh", "-c", "echo hi; exit 3"])
    sid = helpers.new_id()
    p = env.cli.run("run", "--bundle", bundle, sid)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "hi\n"
    # run deletes afterwards.
    assert not os.path.exists(os.path.join(env.root, sid))
    assert not [c for c in helpers.cgroup_paths(sid) if os.path.exists(c)]


def test_run_killed_is_128_plus_signal(env):
    bundle = env.make_bundle(args=["sleep", "1000"])
    sid = helpers.new_id()
    proc = subprocess.Popen(env.cli.argv("run", "--bundle", bundle, sid),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        sock = os.path.join(env.root, sid, "control.sock")

        def running():
            try:
                with helpers.RawConn(sock) as c:
                    return c.call(helpers.M_STATE, sid) == 2
            except (OSError, RuntimeError):
                return False

        helpers.wait_until(running, what="run to start the container")
        env.cli.run("kill", sid, "KILL", check=True)
        out, err = proc.communicate(timeout=helpers.CLI_TIMEOUT)
        assert proc.returncode == 128 + 9, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_detached(env):
    bundle = env.make_bundle()
    sid = helpers.new_id()
    rc, out = env.cli.detached("run", "-d", "--bundle", bundle, sid)
    assert rc == 0
    st = json.loads(env.cli.run("state", sid, check=True).stdout)
    assert st["status"] == "running"
    assert env.cli.run("delete", "--force", sid).returncode == 0


def test_exec_exit_code_passthrough(cli, running_sandbox):
    p = cli.run("exec", running_sandbox.id, "sh", "-c", "echo out; exit 7")
    assert p.returncode == 7, p.stderr
    assert p.stdout == "out\n"


def test_exec_env_cwd_user(cli, running_sandbox):
    p = cli.run("exec", "--env", "FOO=bar", "--cwd", "/etc", "--user", "1000",
                running_sandbox.id, "sh", "-c", 'id -u; echo "$HOME"; pwd; echo "$FOO"',
                check=True)
    assert p.stdout.split("\n")[:4] == ["1000", "/home/alice", "/etc", "bar"]
    p = cli.run("exec", "--user", "1000:1000", running_sandbox.id, "id", "-g", check=True)
    assert p.stdout == "1000\n"


def test_exec_killed_maps_to_128_plus_signal(cli, running_sandbox):
    # The exec'd sh is not the pid-namespace init, so it can signal itself.
    p = cli.run("exec", running_sandbox.id, "sh", "-c", "kill -9 $$")
    assert p.returncode == 137, p.stderr


def test_exec_detached_pid_file(cli, running_sandbox, root_dir):
    pidfile = os.path.join(root_dir, "exec.pid")
    # The process runs until told to stop: exec -d must return before that.
    rc, out = cli.detached("exec", "-d", "--pid-file", pidfile, running_sandbox.id,
                           "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 4")
    assert rc == 0, out
    with open(pidfile) as f:
        waiter = int(f.read().strip())
    assert helpers.pid_alive(waiter), "exec -d's waiter is gone before the process ended"
    status, _ = running_sandbox.run_exec(["touch", "/tmp/go"])
    assert status == 0
    # Not our child: poll /proc until the waiter is gone.
    helpers.wait_until(lambda: not helpers.pid_alive(waiter), timeout=10,
                       what="the exec -d waiter to exit")


def test_kill_then_wait(cli, running_sandbox):
    sb = running_sandbox
    w = subprocess.Popen(cli.argv("wait", sb.id), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        cli.run("kill", sb.id, "KILL", check=True)
        out, err = w.communicate(timeout=helpers.CLI_TIMEOUT)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    assert w.returncode == 0, err
    assert json.loads(out) == {"id": sb.id, "exitStatus": 137}


def test_kill_term_trapped_then_wait(cli, running_sandbox):
    sb = running_sandbox
    w = subprocess.Popen(cli.argv("wait", sb.id), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        cli.run("kill", sb.id, check=True)  # default TERM; the init traps it, exits 0
        out, err = w.communicate(timeout=helpers.CLI_TIMEOUT)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    assert json.loads(out) == {"id": sb.id, "exitStatus": 0}


def test_kill_pid_and_wait_pid(cli, running_sandbox):
    sb = running_sandbox
    pid, out = sb.exec(["sleep", "1000"])
    out.close()
    # wait --pid on an exec'd process; kill --pid delivers to it.
    w = subprocess.Popen(cli.argv("wait", "--pid", pid, sb.id), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        cli.run("kill", "--pid", pid, sb.id, "TERM", check=True)
        out, err = w.communicate(timeout=helpers.CLI_TIMEOUT)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    assert json.loads(out) == {"id": sb.id, "exitStatus": 143}


def test_kill_all(cli, running_sandbox):
    sb = running_sandbox
    cli.run("kill", "--all", sb.id, "9", check=True)
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="sandbox to end")
    assert sb.state()["status"] == "stopped"


def test_state_fields(cli, sandbox):
    st = sandbox.state()
    assert st["id"] == sandbox.id
    assert st["status"] == "created"
    assert st["pid"] == sandbox.init_host_pid()
    assert os.path.realpath(st["bundle"]) == os.path.realpath(sandbox.bundle)
    assert "ociVersion" in st
    sandbox.start()
    assert sandbox.state()["status"] == "running"


def test_list(cli, running_sandbox, sandbox):
    p = cli.run("list", check=True)
    assert running_sandbox.id in p.stdout
    assert sandbox.id in p.stdout


def test_ps_json(cli, running_sandbox):
    p = cli.run("ps", "--format", "json", running_sandbox.id, check=True)
    pids = json.loads(p.stdout)
    # runc's form: host pids (the containerd shim reads them), the init's
    # among them.
    assert isinstance(pids, list) and running_sandbox.init_host_pid() in pids
    assert 1 not in pids
    p = cli.run("ps", running_sandbox.id, check=True)
    assert p.stdout.split()[:9] == ["UID", "PID", "PPID", "PGID", "C", "TTY", "STIME", "TIME", "CMD"]


def test_pause_resume_cli(cli, running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        pid, out = sb.exec(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done"],
                           conn=conn)
        fd = out.fileno()
        os.set_blocking(fd, False)

        def last():
            data = b""
            while True:
                try:
                    b = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not b:
                    break
                data += b
            return data

        time.sleep(0.2)
        cli.run("pause", sb.id, check=True)
        assert sb.state()["status"] == "paused"
        time.sleep(0.1)
        last()
        time.sleep(0.4)
        assert last() == b"", "the counter kept growing while paused"
        cli.run("resume", sb.id, check=True)
        assert sb.state()["status"] == "running"
        time.sleep(0.3)
        assert last() != b"", "the counter did not grow after resume"
        out.close()


def test_delete_cli_cleans_everything(cli, running_sandbox):
    sb = running_sandbox
    init = sb.init_host_pid()
    assert init
    p = cli.run("delete", "--force", sb.id)
    assert p.returncode == 0, p.stderr
    for pid in (sb.boot_pid, init):
        helpers.wait_until(lambda: not helpers.pid_alive(pid), what=f"pid {pid} to exit")
    assert not os.path.exists(sb.sock)
    assert not os.path.exists(sb.dir)
    assert not [c for c in helpers.cgroup_paths(sb.id) if os.path.exists(c)]
    assert sb.id not in cli.run("list").stdout


@pytest.mark.parametrize("args", [
    ["state", "tst-nonexistent"],
    ["start", "tst-nonexistent"],
    ["kill", "tst-nonexistent"],
    ["exec", "tst-nonexistent", "true"],
    ["delete", "tst-nonexistent"],
])
def test_cli_errors_one_line(cli, args):
    p = cli.run(*args)
    assert p.returncode == 1
    lines = p.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("cvisor: "), p.stderr


def test_cli_kill_bad_signal(cli, running_sandbox):
    p = cli.run("kill", running_sandbox.id, "NOTASIGNAL")
    assert p.returncode == 1
    assert p.stderr.startswith("cvisor: ")
    assert running_sandbox.call(helpers.M_STATE, running_sandbox.id) == 2


def test_create_duplicate_id(cli, sandbox):
    rc, out = cli.detached("create", "--bundle", sandbox.bundle, sandbox.id, check=False)
    assert rc == 1
    assert out.startswith("cvisor: ")
    assert sandbox.call(helpers.M_STATE, sandbox.id) == 1


def test_cli_works_without_environment(cvisor, running_sandbox):
    p = subprocess.run([cvisor, "--root", running_sandbox.root, "state", running_sandbox.id],
                       env={}, capture_output=True, text=True, timeout=helpers.CLI_TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "running"

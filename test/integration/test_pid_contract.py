"""The pid contract (README, "Processes and pids"): engines see the root
container's init by its host pid, as with runc, and reap it themselves; the
sandbox still learns its exit status, from the pidfd or, on older kernels
(forced here with CVISOR_EXIT_SOURCE), from the process-event connector."""
import os
import signal
import subprocess
import threading

import pytest

import helpers


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return rest[0], int(rest[1])  # state, ppid


def test_pid_file_and_state_name_the_init(env):
    bundle = env.make_bundle(args=["sleep", "1000"])
    sb = env.new_sandbox(bundle, start=True)
    pid = sb.init_host_pid()
    assert pid != sb.boot_pid
    # In the container's pid namespace it is 1; on the host it runs the
    # container's command, not cvisor.
    assert helpers.nspid(pid)[-1] == 1
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "sleep"
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino != os.stat("/proc/self/ns/pid").st_ino
    assert os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.stat("/proc/self/ns/mnt").st_ino
    assert sb.state()["pid"] == pid
    # Its parent is create's subreaper (this test process), not boot.
    _, ppid = _stat(pid)
    assert ppid == os.getpid()
    assert pid not in helpers.children(sb.boot_pid)


def test_state_pid_is_zero_once_stopped(env):
    sb = env.new_sandbox(env.make_bundle(args=["true"]), start=True)
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="boot to exit")
    assert sb.state()["status"] == "stopped"
    assert sb.state()["pid"] == 0


def _wait_status_via_rpc(sb):
    with sb.raw() as conn:
        return conn.call(helpers.M_WAIT, sb.id)


@pytest.mark.parametrize("source", ["pidfd", "proc-connector"])
def test_exit_status_while_the_engine_has_not_reaped(env, source, monkeypatch):
    """The init exits and stays a zombie of its engine: Wait still gives
    its status."""
    monkeypatch.setenv("CVISOR_EXIT_SOURCE", source)
    sb = env.new_sandbox(env.make_bundle(
        args=["sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.05; done"]))
    with helpers.reaper_paused():
        sb.start()
        conn = sb.raw()
        msgid = conn.request(helpers.M_WAIT, sb.id)
        # A pid namespace's init ignores signals it has no handler for.
        helpers.wait_until(lambda: helpers.catches(sb.init_host_pid(), signal.SIGUSR1),
                           what="the trap to be installed")
        os.kill(sb.init_host_pid(), signal.SIGUSR1)
        err, status = conn.recv_reply(msgid)
        conn.close()
        assert err is None, err
        assert status == helpers.status_of(code=7)
        state, _ = _stat(sb.init_host_pid())
        assert state == "Z", "the engine has not reaped it: still a zombie"
    with open(_log_path(env, sb)) as f:
        assert f"exit statuses from {source}" in f.read()


@pytest.mark.parametrize("source", ["pidfd", "proc-connector"])
def test_exit_status_after_the_engine_reaped(env, source, monkeypatch):
    """The engine reaps the init at once (conmon, the shim): Wait and boot's
    own exit status still carry it, here a death by signal."""
    monkeypatch.setenv("CVISOR_EXIT_SOURCE", source)
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    pid = sb.init_host_pid()
    conn = sb.raw()
    msgid = conn.request(helpers.M_WAIT, sb.id)
    got = {}
    with helpers.reaper_paused():
        reaper = threading.Thread(target=lambda: got.update(s=os.waitpid(pid, 0)[1]))
        reaper.start()
        os.kill(pid, signal.SIGKILL)
        reaper.join(helpers.TIMEOUT)
    assert os.WIFSIGNALED(got["s"]) and os.WTERMSIG(got["s"]) == signal.SIGKILL
    err, status = conn.recv_reply(msgid)
    conn.close()
    assert err is None, err
    assert status == helpers.status_of(sig=signal.SIGKILL)
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="boot to exit")
    p = sb.cli.run("wait", sb.id)
    assert '"exitStatus":%d' % (128 + signal.SIGKILL) in p.stdout.replace(" ", ""), p.stdout


def test_forced_exit_source_is_validated(env, monkeypatch):
    monkeypatch.setenv("CVISOR_EXIT_SOURCE", "bogus")
    bundle = env.make_bundle()
    sb = helpers.Sandbox(env.cli, bundle)
    rc, out = env.cli.detached("create", "--bundle", bundle, sb.id, check=False)
    assert rc != 0
    assert "CVISOR_EXIT_SOURCE" in out


def test_run_reaps_the_init_and_returns_its_status(env):
    bundle = env.make_bundle(args=["sh", "-c", "exit 5"])
    p = env.cli.run("run", "--bundle", bundle, helpers.new_id())
    assert p.returncode == 5, p.stderr
    # Nothing of the run is left as a zombie of this process.
    helpers.reap_adopted()


def test_run_forwards_signals_to_the_init(env):
    bundle = env.make_bundle(args=["sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done"])
    sid = helpers.new_id()
    p = subprocess.Popen(env.cli.argv("run", "--bundle", bundle, sid), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        state = os.path.join(env.root, sid, "state.json")
        helpers.wait_until(lambda: os.path.exists(state) and
                           helpers.Cli(env.cvisor, env.root).run("state", sid).returncode == 0 and
                           '"running"' in env.cli.run("state", sid).stdout, what="running")
        p.send_signal(signal.SIGUSR1)
        assert p.wait(helpers.TIMEOUT) == 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_run_detached_output_reaches_eof(env):
    """boot drops its copies of the caller's stdio: once the container
    closes its own, a reader of `run -d`'s output sees EOF."""
    bundle = env.make_bundle(args=["sh", "-c", "echo hi; exec >/dev/null 2>&1; sleep 1000"])
    sid = helpers.new_id()
    p = subprocess.Popen(env.cli.argv("run", "-d", "--bundle", bundle, sid),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    env.sandboxes.append(helpers.Sandbox(env.cli, bundle, sid))
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()))
    reader.start()
    reader.join(helpers.TIMEOUT)
    assert not reader.is_alive(), "run -d's output never reached EOF"
    assert out == [b"hi\n"]
    assert p.wait(helpers.TIMEOUT) == 0


def test_exec_detach_pid_file_is_a_waiter_with_the_status(env, running_sandbox):
    sb = running_sandbox
    pidfile = os.path.join(env.root, ".exec.pid")
    sb.cli.detached("exec", "-d", "--pid-file", pidfile, sb.id, "sh", "-c", "sleep 0.3; exit 4")
    with open(pidfile) as f:
        waiter = int(f.read())
    # The engine reaps the waiter and gets the exec'd process's status.
    with helpers.reaper_paused():
        _, st = os.waitpid(waiter, 0)
    assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 4


def _log_path(env, sb):
    return os.path.join(env.root, sb.id, "log")

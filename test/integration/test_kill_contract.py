"""`cvisor kill` as runc does it: a created container's init gets the signal
(and the container goes to stopped when the signal's default action ends a
process), a paused container stays frozen under `kill --all` (the signals
are queued and delivered on resume) and SIGKILL ends a paused container."""
import os
import signal

import pytest

import helpers

TRAP_USR1 = ["sh", "-c", "trap 'echo got > /tmp/marker' USR1; while :; do sleep 1; done"]


def status(sb):
    return sb.state()["status"]


def wait_stopped(sb, init):
    helpers.wait_until(lambda: status(sb) == "stopped", what=f"{sb.id} to be stopped")
    helpers.wait_until(lambda: not helpers.pid_alive(init), what=f"the init {init} to be gone")
    helpers.wait_until(lambda: not helpers.pid_alive(sb.boot_pid), what="the boot process to end")


def is_frozen(sb):
    # The init's cgroup, found from /proc/<pid>/cgroup and the mount table.
    return helpers.cgroup_frozen(sb.init_host_pid())


@pytest.mark.parametrize("args", [["KILL"], ["TERM"], ["--all", "KILL"], ["--all", "TERM"]],
                         ids=["kill", "term", "all-kill", "all-term"])
def test_kill_created_container_stops_it(cli, sandbox, args):
    sb = sandbox
    init = sb.init_host_pid()
    assert init and helpers.pid_alive(init)
    assert status(sb) == "created"
    flags, sig = args[:-1], args[-1]
    cli.run("kill", *flags, sb.id, sig, check=True)
    wait_stopped(sb, init)


def test_signal_created_init_ignored_and_check_signals(sandbox):
    """Signals whose default action does not end a process leave the created
    container as it is; signal 0 only checks."""
    sb = sandbox
    with sb.raw() as conn:
        for signo in (0, 18, 28):  # check only, SIGCONT, SIGWINCH
            assert conn.call(helpers.M_SIGNAL,
                             {"CID": sb.id, "Signo": signo, "PID": 0, "Mode": 0}) is None
        assert conn.call(helpers.M_STATE, sb.id) == 1
    assert helpers.pid_alive(sb.init_host_pid())
    sb.start()
    assert status(sb) == "running"


def test_kill_all_paused_stays_frozen_until_resume(env):
    sb = env.new_sandbox(env.make_bundle(args=TRAP_USR1), start=True)
    init = sb.init_host_pid()
    marker = f"/proc/{init}/root/tmp/marker"
    # The trap must be in place before the signal: a pid namespace's init
    # drops signals it has no handler for.
    helpers.wait_until(lambda: helpers.catches(init, signal.SIGUSR1), what="the USR1 trap")
    env.cli.run("pause", sb.id, check=True)
    assert is_frozen(sb)
    env.cli.run("kill", "--all", sb.id, "USR1", check=True)
    # A signal wakes a frozen task for a moment (it leaves the freezer's
    # trap, sees the signal must wait, and goes back), and the cgroup reads
    # as not frozen meanwhile: a thaw would leave it so, and let the trap
    # run (the marker below).
    helpers.wait_until(lambda: is_frozen(sb), what="the paused container frozen after kill --all")
    assert status(sb) == "paused"
    assert not os.path.exists(marker), "the trap ran while the container was paused"
    env.cli.run("resume", sb.id, check=True)
    # The shell creates the marker before it writes it: wait for the text,
    # not for the file (reading between the two saw "").
    def marker_text():
        try:
            with open(marker) as f:
                return f.read()
        except FileNotFoundError:
            return None
    helpers.wait_until(lambda: marker_text() == "got\n", what="the USR1 trap to run after resume")
    assert status(sb) == "running"


@pytest.mark.parametrize("flags", [["--all"], []], ids=["all", "init"])
def test_kill_paused_container_with_sigkill(env, flags):
    sb = env.new_sandbox(env.make_bundle(args=TRAP_USR1), start=True)
    init = sb.init_host_pid()
    env.cli.run("pause", sb.id, check=True)
    env.cli.run("kill", *flags, sb.id, "KILL", check=True)
    wait_stopped(sb, init)

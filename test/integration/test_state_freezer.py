"""`cvisor state` reads the freezer: a sandbox paused through its socket
(Lifecycle.Pause) shows `paused`, and `cvisor resume` thaws it."""
import helpers


def test_socket_pause_shows_in_state_and_cli_resume_thaws(running_sandbox, cli):
    sb = running_sandbox
    init = sb.init_host_pid()
    assert sb.state()["status"] == "running"
    with sb.raw() as conn:
        assert conn.call("Lifecycle.Pause") is None
        assert helpers.cgroup_frozen(init)
        assert sb.state()["status"] == "paused"
        assert conn.call("Lifecycle.Resume") is None
        assert sb.state()["status"] == "running"
        assert conn.call("Lifecycle.Pause") is None
    # The CLI's resume finds it paused and thaws it.
    p = cli.run("resume", sb.id)
    assert p.returncode == 0, p.stderr
    assert not helpers.cgroup_frozen(init)
    assert sb.state()["status"] == "running"


def test_cli_pause_then_socket_resume_shows_running(running_sandbox, cli):
    sb = running_sandbox
    assert cli.run("pause", sb.id).returncode == 0
    assert sb.state()["status"] == "paused"
    with sb.raw() as conn:
        assert conn.call("Lifecycle.Resume") is None
    # The record still says paused; the freezer says otherwise and wins.
    assert sb.state()["status"] == "running"


def test_exec_refused_while_paused_through_the_socket(running_sandbox, cli):
    sb = running_sandbox
    with sb.raw() as conn:
        assert conn.call("Lifecycle.Pause") is None
        try:
            p = cli.run("exec", sb.id, "/bin/true")
            assert p.returncode != 0 and "paused" in p.stderr, p.stderr
        finally:
            assert conn.call("Lifecycle.Resume") is None
    assert cli.run("exec", sb.id, "/bin/true").returncode == 0

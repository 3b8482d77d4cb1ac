"""Exec without forking boot: the per-container spawner (docs/DESIGN.md,
"Exec without forking boot"). Boot forks one spawner at the first exec;
the spawner forks each intermediate ahead of need, as a child of boot."""
import os
import signal

import helpers
from helpers import M_EXEC, M_PROCS, M_WAITPID, exec_args


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def kids(boot, name):
    return [p for p in helpers.children(boot) if comm(p) == name]


def only(boot, name):
    """The one child of boot called name, once there is exactly one: a new
    intermediate is named cvisor-spawner until its first instructions, and
    a used one is cvisor-exec until boot has reaped it."""
    return helpers.wait_until(lambda: (lambda k: k if len(k) == 1 else None)(
        kids(boot, name)), what=f"exactly one {name}")[0]


def spawner_of(boot):
    return only(boot, "cvisor-spawner")


def run_true(sb, conn, n=1):
    for _ in range(n):
        pid = conn.call(M_EXEC, exec_args(sb.id, ["/bin/true"]))
        assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 0


def test_one_spawner_per_container_and_one_spare(running_sandbox):
    sb = running_sandbox
    assert kids(sb.boot_pid, "cvisor-spawner") == [], "no spawner before the first exec"
    with sb.raw() as conn:
        run_true(sb, conn)
        helpers.wait_until(lambda: len(kids(sb.boot_pid, "cvisor-exec")) == 1,
                           what="one spare intermediate")
        spawner = spawner_of(sb.boot_pid)
        run_true(sb, conn, 30)
        # The same spawner serves every exec: boot did not fork again.
        assert spawner_of(sb.boot_pid) == spawner
        helpers.wait_until(lambda: len(kids(sb.boot_pid, "cvisor-exec")) == 1,
                           what="still one spare intermediate")


def test_spawner_holds_no_client_or_host_fds(running_sandbox):
    """The spawner keeps its socket to boot, the init's pidfd and the
    container's cgroup fds: a client connection it held would never see
    boot close it, and nothing else of boot's belongs there."""
    sb = running_sandbox
    with sb.raw() as conn:
        run_true(sb, conn)
        sp = spawner_of(sb.boot_pid)
        links = [os.readlink(f"/proc/{sp}/fd/{fd}") for fd in os.listdir(f"/proc/{sp}/fd")]
        sockets = [l for l in links if l.startswith("socket:")]
        assert len(sockets) == 1, links
        others = [l for l in links if not (l.startswith("socket:") or l == "/dev/null"
                                           or "pidfd" in l or "/sys/fs/cgroup" in l)]
        assert others == [], links
        spare = only(sb.boot_pid, "cvisor-exec")
        links = [os.readlink(f"/proc/{spare}/fd/{fd}") for fd in os.listdir(f"/proc/{spare}/fd")]
        assert len([l for l in links if l.startswith("socket:")]) == 1, links


def test_spawner_and_spare_are_not_in_the_container(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        run_true(sb, conn)
        ours = {spawner_of(sb.boot_pid), only(sb.boot_pid, "cvisor-exec")}
        assert len(ours) == 2
        in_container = set(helpers.cgroup_procs_under(helpers.cgroup_dir(sb.init_host_pid())))
        assert not ours & in_container
        listed = {p["pid"] for p in conn.call(M_PROCS, sb.id)}
        ns_pids = {helpers.nspid(p)[-1] for p in ours}
        assert not ns_pids & listed, (ns_pids, listed)


def test_killed_spawner_is_reaped_and_replaced(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        run_true(sb, conn)
        old = spawner_of(sb.boot_pid)
        os.kill(old, signal.SIGKILL)
        # Boot sees its socket close and reaps it: no zombie left.
        helpers.wait_until(lambda: old not in helpers.children(sb.boot_pid),
                           what="the killed spawner reaped")
        run_true(sb, conn, 5)
        new = spawner_of(sb.boot_pid)
        assert new != old


def test_nothing_left_after_the_sandbox_ends(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        run_true(sb, conn)
        helpers.wait_until(lambda: kids(sb.boot_pid, "cvisor-exec"), what="a spare")
        ours = [spawner_of(sb.boot_pid)] + kids(sb.boot_pid, "cvisor-exec")
    sb.delete()
    helpers.reap_adopted()
    helpers.wait_until(lambda: not any(helpers.pid_alive(p) for p in ours),
                       what="spawner and spare gone with the sandbox")


def test_spawner_idles_but_execs_keep_boots_policy(running_sandbox):
    """The spawner forks ahead of need at SCHED_IDLE; the intermediates it
    forks, and so the exec'd processes, have boot's policy again."""
    sb = running_sandbox
    with sb.raw() as conn:
        pid = conn.call(M_EXEC, exec_args(sb.id, ["sleep", "30"]))
        try:
            sp = spawner_of(sb.boot_pid)
            assert os.sched_getscheduler(sp) == os.SCHED_IDLE
            spare = only(sb.boot_pid, "cvisor-exec")
            boot_policy = os.sched_getscheduler(sb.boot_pid)
            assert os.sched_getscheduler(spare) == boot_policy
            host = [p for p in helpers.children(sb.boot_pid) if comm(p) == "sleep"]
            assert len(host) == 1
            assert os.sched_getscheduler(host[0]) == boot_policy
            assert os.getpriority(os.PRIO_PROCESS, host[0]) == \
                os.getpriority(os.PRIO_PROCESS, sb.boot_pid)
        finally:
            conn.call(helpers.M_SIGNAL, {"CID": sb.id, "Signo": 9, "PID": pid, "Mode": 0})
            conn.call(M_WAITPID, {"PID": pid, "CID": sb.id})


def test_execs_queued_when_the_spawner_dies_are_served_by_a_new_one(running_sandbox):
    """Execs wait in boot's queue while no intermediate is spare; if the
    spawner dies then, a new one serves them: none fails."""
    sb = running_sandbox
    with sb.raw() as conn:
        run_true(sb, conn)
        old = spawner_of(sb.boot_pid)
        only(sb.boot_pid, "cvisor-exec")  # the spare
        os.kill(old, signal.SIGSTOP)       # no more answers: the next execs queue
        try:
            mids = [conn.request(M_EXEC, exec_args(sb.id, ["/bin/true"])) for _ in range(6)]
            # The first takes the spare and answers; the other five wait.
            first = conn.recv()
            assert first[2] is None and first[1] == mids[0], first
        finally:
            os.kill(old, signal.SIGKILL)
        pids = [first[3]]
        while len(pids) < 6:
            msg = conn.recv()
            assert msg[2] is None, msg[2]
            pids.append(msg[3])
        for pid in pids:
            assert conn.call(M_WAITPID, {"PID": pid, "CID": sb.id}) == 0
        assert spawner_of(sb.boot_pid) != old

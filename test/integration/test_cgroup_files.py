"""Cgroups.ReadControlFiles / Cgroups.WriteControlFiles (docs/API.md) and
the read-control / write-control CLI verbs: control files of the containers'
cgroups, per-item results, paths that cannot leave the sandbox's cgroup."""
import os

import pytest

import helpers

M_READ = "Cgroups.ReadControlFiles"
M_WRITE = "Cgroups.WriteControlFiles"


def rd(path, name, ctrl="pids"):
    return {"file": {"controller": ctrl, "path": path, "name": name}}


def wr(path, name, value, ctrl="pids"):
    return {"file": {"controller": ctrl, "path": path, "name": name}, "value": value}


def read(sb, *items):
    res = sb.call(M_READ, {"args": list(items)})
    assert list(res) == ["results"], res
    assert len(res["results"]) == len(items), res
    return res["results"]


def write(sb, *items):
    res = sb.call(M_WRITE, {"args": list(items)})
    assert len(res["results"]) == len(items), res
    return res["results"]


def ok(r):
    assert r["is_error"] is False, r
    return r["value"]


def err(r):
    assert r["is_error"] is True, r
    return r["value"]


def test_cgroup_procs_lists_the_init(running_sandbox):
    sb = running_sandbox
    pid = str(sb.init_host_pid())
    root, by_id = read(sb, rd("/", "cgroup.procs"), rd("/" + sb.id, "cgroup.procs"))
    assert pid in ok(root).split()
    assert pid in ok(by_id).split()


def test_pids_max_read_and_written(running_sandbox):
    sb = running_sandbox
    pid = sb.init_host_pid()
    host, path = helpers.read_cgroup_file(pid, "pids", "pids.max", "pids.max")
    assert ok(read(sb, rd("/", "pids.max"))[0]) == host
    assert ok(write(sb, wr("/", "pids.max", "123"))[0]) == ""
    assert ok(read(sb, rd("/" + sb.id, "pids.max"))[0]) == "123"
    with open(path) as f:
        assert f.read().strip() == "123"


@pytest.mark.parametrize("path", ["/../../..", "/../x", "/..", "/.", "/x/../..",
                                  "/sys/fs/cgroup/pids", "../x", ""])
def test_escaping_path_refused_per_item(running_sandbox, path):
    sb = running_sandbox
    good1, bad, good2 = read(sb, rd("/", "pids.max"), rd(path, "pids.max"),
                             rd("/", "cgroup.procs"))
    ok(good1)
    ok(good2)
    assert "CgroupsReadArgs.Args[1].path" in err(bad)


def test_unknown_container_refused(running_sandbox):
    sb = running_sandbox
    bad, good = read(sb, rd("/nosuch", "pids.max"), rd("/", "pids.max"))
    assert "no container" in err(bad) and "Args[0].path" in err(bad)
    ok(good)


@pytest.mark.parametrize("name", ["a/b", "../pids.max", "..", ".", "", "nosuch.file",
                                  "/pids.max"])
def test_bad_name_refused(running_sandbox, name):
    sb = running_sandbox
    bad, good = read(sb, rd("/", name), rd("/", "pids.max"))
    assert "CgroupsReadArgs.Args[0].name" in err(bad)
    ok(good)


def test_too_many_items_refused_naming_the_field(running_sandbox):
    sb = running_sandbox
    with pytest.raises(RuntimeError, match=r"CgroupsReadArgs\.Args.*at most 64"):
        sb.call(M_READ, {"args": [rd("/", "pids.max")] * 65})
    with pytest.raises(RuntimeError, match=r"CgroupsWriteArgs\.Args.*at most 64"):
        sb.call(M_WRITE, {"args": [wr("/", "pids.max", "max")] * 65})
    assert len(read(sb, *[rd("/", "pids.max")] * 64)) == 64


@pytest.mark.parametrize("name", ["cgroup.procs", "cgroup.threads", "tasks"])
def test_write_moving_processes_refused(env, name):
    # An init that never forks (the default bundle's shell starts a `sleep
    # 1` every second), so cgroup.procs read twice is the same list unless
    # the write moved something in.
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    before = ok(read(sb, rd("/", "cgroup.procs"))[0])
    assert before.split() == [str(sb.state()["pid"])], before
    bad, good = write(sb, wr("/", name, str(os.getpid())), wr("/", "pids.max", "max"))
    assert "CgroupsWriteArgs.Args[0].name" in err(bad)
    ok(good)
    assert ok(read(sb, rd("/", "cgroup.procs"))[0]) == before
    assert str(os.getpid()) not in before


def test_write_refusals_per_item(running_sandbox):
    sb = running_sandbox
    a, b, c = write(sb, wr("/../..", "pids.max", "5"), wr("/nosuch", "pids.max", "5"),
                    wr("/", "..", "5"))
    assert "Args[0].path" in err(a)
    assert "Args[1].path" in err(b)
    assert "Args[2].name" in err(c)


def test_unknown_controller_refused_on_v1_hosts(running_sandbox):
    sb = running_sandbox
    if not helpers.cgroup_v1_mount("pids"):
        pytest.skip("pure v2: controller is ignored")
    bad, good = read(sb, rd("/", "pids.max", ctrl="nosuch"), rd("/", "pids.max"))
    assert "Args[0].controller" in err(bad)
    ok(good)


def test_boot_fd_count_unchanged_after_batches(running_sandbox):
    sb = running_sandbox
    with sb.raw() as conn:
        conn.call(M_READ, {"args": [rd("/", "pids.max")]})
        before = helpers.settled_fd_count(sb.boot_pid)
        for _ in range(3):
            conn.call(M_READ, {"args": [rd("/", "pids.max"), rd("/..", "x"),
                                        rd("/", "nosuch"), rd("/nosuch", "pids.max"),
                                        rd("/", "cgroup.procs")]})
            conn.call(M_WRITE, {"args": [wr("/", "pids.max", "max"),
                                         wr("/", "pids.max", "bogus"),
                                         wr("/", "cgroup.procs", "1")]})
        assert helpers.settled_fd_count(sb.boot_pid) == before


def test_cli_read_and_write_control(running_sandbox):
    sb = running_sandbox
    cli = sb.cli
    cli.run("write-control", sb.id, "pids", "/", "pids.max", "77", check=True)
    p = cli.run("read-control", sb.id, "pids", "/", "pids.max", check=True)
    assert p.stdout == "77\n"
    p = cli.run("read-control", sb.id, "pids", "/" + sb.id, "cgroup.procs", check=True)
    assert str(sb.init_host_pid()) in p.stdout.split()
    p = cli.run("read-control", sb.id, "pids", "/../..", "pids.max")
    assert p.returncode != 0 and ".path" in p.stderr
    p = cli.run("write-control", sb.id, "pids", "/", "cgroup.procs", "1")
    assert p.returncode != 0 and "refused" in p.stderr

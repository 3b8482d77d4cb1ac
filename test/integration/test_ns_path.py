"""Namespaces named by path in the spec are joined by the init and by every
exec, as runc does (podman's --network/--ipc/--uts/--pid container:X and
pods rely on it); a private cgroup namespace is rooted at the container's
own cgroup in every hierarchy."""
import copy
import os

import helpers


def _linux_with(env, **paths):
    """The fixture's linux section with the given namespace types joined by
    path (type -> path) instead of created."""
    linux = copy.deepcopy(helpers.fixture_config(env.fixture)["linux"])
    for ns in linux["namespaces"]:
        if ns["type"] in paths:
            ns["path"] = paths.pop(ns["type"])
    for t, p in paths.items():
        linux["namespaces"].append({"type": t, "path": p})
    return linux


def _ns(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _exec_out(sb, *argv):
    p = sb.cli.run("exec", sb.id, *argv)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_init_and_exec_join_net_ipc_uts_by_path(env):
    a = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    apid = a.init_host_pid()
    linux = _linux_with(env, network=f"/proc/{apid}/ns/net", ipc=f"/proc/{apid}/ns/ipc",
                        uts=f"/proc/{apid}/ns/uts")
    cfg = helpers.fixture_config(env.fixture)
    cfg.pop("hostname", None)
    b = env.new_sandbox(env.make_bundle(args=["sleep", "1000"], linux=linux, hostname=None),
                        start=True)
    bpid = b.init_host_pid()
    for kind in ("net", "ipc", "uts"):
        assert _ns(bpid, kind) == _ns(apid, kind), kind
        assert _ns(bpid, kind) != _ns(os.getpid(), kind), kind
    # An exec in b is in a's namespaces too, not the host's.
    out = _exec_out(b, "sh", "-c", "for n in net ipc uts; do readlink /proc/self/ns/$n; done")
    assert out.split() == [_ns(apid, "net"), _ns(apid, "ipc"), _ns(apid, "uts")]
    # And sees a's network, not the host's interfaces.
    links = _exec_out(b, "cat", "/proc/net/dev")
    assert "eth0" not in links and "lo" in links


def test_init_joins_a_pid_namespace_by_path(env):
    a = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    apid = a.init_host_pid()
    linux = _linux_with(env, pid=f"/proc/{apid}/ns/pid")
    b = env.new_sandbox(env.make_bundle(args=["sleep", "999"], linux=linux), start=True)
    bpid = b.init_host_pid()
    assert _ns(bpid, "pid") == _ns(apid, "pid")
    assert helpers.nspid(bpid)[-1] != 1, "b's init is not the namespace's init"
    st = b.state()
    assert st["status"] == "running" and st["pid"] == bpid
    # b's exec sees a's processes: the pid namespace is shared.
    out = _exec_out(b, "ps", "-o", "pid,args")
    assert "sleep 1000" in out and "sleep 999" in out
    # b's PIDs over the API are in its own (a's) namespace.
    procs = b.call(helpers.M_PROCS, b.id)
    assert helpers.nspid(bpid)[-1] in [p["pid"] for p in procs]


def test_pid_namespace_path_that_does_not_exist_is_refused(env):
    linux = _linux_with(env, pid="/nonexistent/ns/pid")
    bundle = env.make_bundle(args=["true"], linux=linux)
    sb = helpers.Sandbox(env.cli, bundle)
    rc, out = env.cli.detached("create", "--bundle", bundle, sb.id, check=False)
    assert rc != 0
    assert "opening the pid namespace /nonexistent/ns/pid" in out


def test_private_cgroup_namespace_is_rooted_in_every_hierarchy(env):
    linux = copy.deepcopy(helpers.fixture_config(env.fixture)["linux"])
    if not any(ns["type"] == "cgroup" for ns in linux["namespaces"]):
        linux["namespaces"].append({"type": "cgroup"})
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"], linux=linux), start=True)
    for who, text in (("init", open(f"/proc/{sb.init_host_pid()}/cgroup").read()),
                      ("exec", _exec_out(sb, "cat", "/proc/self/cgroup"))):
        if who == "init":
            # Seen from the host the init is deep in cvisor's tree ...
            assert f"/{sb.id}" in text
            # ... and from inside, every hierarchy is at its root.
            text = _exec_out(sb, "cat", f"/proc/1/cgroup")
        paths = [line.split(":", 2)[2] for line in text.strip().splitlines()]
        assert paths and all(p == "/" for p in paths), f"{who}: {text}"

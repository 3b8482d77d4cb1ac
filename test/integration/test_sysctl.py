"""spec.linux.sysctl: only namespaced sysctls, and only with the container's
own namespace (created, or joined by path), as runc. Anything else would
change the host: kernel.printk_ratelimit in a spec used to."""
import os

import pytest

import helpers


def host_sysctl(key):
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()


def set_host_sysctl(key, value):
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def namespaces_without(*types):
    ns = helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["linux"]["namespaces"]
    return [n for n in ns if n["type"] not in types]


def linux_with(namespaces=None, **sysctl):
    linux = dict(helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["linux"])
    linux["sysctl"] = sysctl
    if namespaces is not None:
        linux["namespaces"] = namespaces
    return linux


def create_fails(env, linux):
    sid = helpers.new_id()
    bundle = env.make_bundle(linux=linux)
    rc, out = env.cli.detached("create", "--bundle", bundle, sid, check=False)
    assert rc != 0, out
    return out


def test_not_namespaced_refused_host_unchanged(env):
    key = "kernel.printk_ratelimit"
    before = host_sysctl(key)
    new = "7" if before != "7" else "8"
    try:
        out = create_fails(env, linux_with(**{key: new}))
        assert (f'spec.linux.sysctl: "{key}" is not namespaced: refusing to change the host'
                in out), out
        assert host_sysctl(key) == before
    finally:
        if host_sysctl(key) != before:  # the old behaviour: put the host back
            set_host_sysctl(key, before)


def test_core_pattern_refused(env):
    # The host's own value: even a refused-too-late write would change nothing.
    key = "kernel.core_pattern"
    out = create_fails(env, linux_with(**{key: host_sysctl(key)}))
    assert f'"{key}" is not namespaced' in out, out


def test_net_sysctl_with_netns(env):
    key = "net.ipv4.ip_forward"
    before = host_sysctl(key)
    new = "0" if before == "1" else "1"
    sb = env.new_sandbox(env.make_bundle(linux=linux_with(**{key: new})), start=True)
    status, out = sb.run_exec(["cat", "/proc/sys/net/ipv4/ip_forward"])
    assert status == 0 and out.decode().strip() == new, out
    assert host_sysctl(key) == before


def test_net_sysctl_in_joined_netns(env):
    # A network namespace joined by path is the container's own too.
    key = "net.ipv4.ip_forward"
    before = host_sysctl(key)
    new = "0" if before == "1" else "1"
    first = env.new_sandbox(start=True)
    init = helpers.wait_until(first.init_host_pid, what="the first container's init")
    ns = namespaces_without("network") + [{"type": "network", "path": f"/proc/{init}/ns/net"}]
    env.new_sandbox(env.make_bundle(linux=linux_with(ns, **{key: new})), start=True)
    status, out = first.run_exec(["cat", "/proc/sys/net/ipv4/ip_forward"])
    assert status == 0 and out.decode().strip() == new, out
    assert host_sysctl(key) == before


def test_net_sysctl_without_netns_refused(env):
    # The host's own value, so that nothing changes even where it is not refused.
    key = "net.ipv4.ip_forward"
    out = create_fails(env, linux_with(namespaces_without("network"), **{key: host_sysctl(key)}))
    assert (f'spec.linux.sysctl: "{key}" needs the container\'s own network namespace'
            in out), out


def test_ipc_sysctl(env):
    key = "kernel.msgmax"
    before = host_sysctl(key)
    new = str(int(before) - 1)
    sb = env.new_sandbox(env.make_bundle(linux=linux_with(**{key: new})), start=True)
    status, out = sb.run_exec(["cat", "/proc/sys/kernel/msgmax"])
    assert status == 0 and out.decode().strip() == new, out
    assert host_sysctl(key) == before
    out = create_fails(env, linux_with(namespaces_without("ipc"), **{key: before}))
    assert f'"{key}" needs the container\'s own ipc namespace' in out, out


def test_sysctl_written_before_proc_sys_is_read_only(env):
    """runc's order: the sysctls go in while /proc/sys is writable, then the
    readonlyPaths (the fixture lists /proc/sys) and root.readonly apply: the
    value shows inside and the container itself cannot change it."""
    key = "net.ipv4.ip_forward"
    before = host_sysctl(key)
    new = "0" if before == "1" else "1"
    bundle = env.make_bundle(
        args=["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; "
                          "(echo 0 > /proc/sys/net/ipv4/ip_forward) 2>&1; "
                          "grep ' /proc/sys ' /proc/self/mountinfo"],
        linux=linux_with(**{key: new}), root={"path": os.path.join(env.fixture, "rootfs"),
                                              "readonly": True})
    p = env.cli.run("run", "--bundle", bundle, helpers.new_id())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == new, p.stdout
    assert "Read-only file system" in p.stdout, p.stdout
    assert lines[-1].split()[5].startswith("ro"), p.stdout
    assert host_sysctl(key) == before

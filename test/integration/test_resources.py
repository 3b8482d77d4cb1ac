"""Every linux.resources field, read back from the container's own cgroup
files after `create`, after `update` with runc's flags and after `update -r
FILE`, on whatever cgroup layout the host has (the files are found from
/proc/<pid>/cgroup and the mount table, helpers.cgroup_dir). A field this
host cannot apply (no hierarchy, no such file, the kernel refuses the value)
must fail `create` with an error naming the field and leave nothing behind:
before, blkio and network limits were accepted and dropped, hugetlb was not
modelled at all.

Which fields this host can take is found by looking at a probe container's
cgroup files: a field is read back where its file exists, and refused where
it does not. Values runc's conversions change (cpu.weight, io.weight, swap
on v2) are checked against the converted value.
"""
import json
import os

import pytest

import helpers

MiB = 1 << 20


def fixture_linux():
    return helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["linux"]


def shares_to_weight(s):
    # runc's and crun's conversion (kernel/cgroup_res.c)
    s = min(max(s, 2), 262144)
    return 1 + ((s - 2) * 9999) // 262142


def blkio_to_io_weight(w):
    return 1 + ((w - 10) * 9999) // 990


def block_device():
    """major, minor of a whole disk of this host, or None."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram")):
            continue
        try:
            with open(f"/sys/block/{name}/dev") as f:
                major, minor = f.read().strip().split(":")
            return int(major), int(minor)
        except OSError:
            continue
    return None


def hugepage_size():
    """"2MB" for the host's first hugepage size, or None."""
    try:
        sizes = sorted(os.listdir("/sys/kernel/mm/hugepages"))
    except OSError:
        return None
    for s in sizes:
        kb = int(s[len("hugepages-"):-len("kB")])
        return f"{kb // 1024}MB" if kb < (1 << 20) else f"{kb >> 20}GB"
    return None


class Node:
    """The probe container's cgroup nodes: which file lives where."""

    def __init__(self, pid):
        self.pid = pid

    def dir(self, ctrl):
        return helpers.cgroup_dir(self.pid, ctrl)

    def v1(self, ctrl):
        return helpers.cgroup_v1_mount(ctrl) is not None

    def path(self, ctrl, v1_file, v2_file):
        """The host path of the file for ctrl (v1 name or v2 name), or None."""
        d = self.dir(ctrl) if self.v1(ctrl) or ctrl != "blkio" else self.dir("io")
        if not d:
            return None
        f = v1_file if self.v1(ctrl) else v2_file
        if f is None:
            return None
        p = os.path.join(d, f)
        return p if os.path.isfile(p) else None


def read(p):
    with open(p) as f:
        return f.read().strip()


class Item:
    """One resource field: where the spec has it, the values of the three
    steps (create, update flags, update -r), and how to read it back."""

    def __init__(self, field, ctrl, v1_file, v2_file, values, expect=None, flag=None,
                 spec=None, check=None):
        self.field = field          # "memory.limit" (under linux.resources)
        self.ctrl = ctrl
        self.v1_file, self.v2_file = v1_file, v2_file
        self.values = values        # [create, flags (or None: not a runc flag), file]
        self.expect = expect or (lambda v, v1: str(v))
        self.flag = flag            # runc's update flag, or None
        self.spec = spec            # fn(resources dict, value) when not a plain key path
        self.check = check          # fn(file text, value, v1) -> bool, else text == expect

    def put(self, res, v):
        if self.spec:
            self.spec(res, v)
            return
        *parents, key = self.field.split(".")
        d = res
        for k in parents:
            d = d.setdefault(k, {})
        d[key] = v

    def ok(self, text, v, v1):
        if self.check:
            return self.check(text, v, v1)
        return text == self.expect(v, v1)


def items(node):
    dev = block_device()
    hp = hugepage_size()
    out = [
        Item("memory.limit", "memory", "memory.limit_in_bytes", "memory.max",
             [200 * MiB, 180 * MiB, 160 * MiB], flag="--memory"),
        Item("memory.reservation", "memory", "memory.soft_limit_in_bytes", "memory.low",
             [100 * MiB, 90 * MiB, 80 * MiB], flag="--memory-reservation"),
        # OCI swap is memory+swap; v2's memory.swap.max is swap alone.
        Item("memory.swap", "memory", "memory.memsw.limit_in_bytes", "memory.swap.max",
             [300 * MiB, 280 * MiB, 260 * MiB], flag="--memory-swap",
             expect=lambda v, v1: str(v if v1 else v - {300 * MiB: 200, 280 * MiB: 180,
                                                        260 * MiB: 160}[v] * MiB)),
        Item("memory.swappiness", "memory", "memory.swappiness", None, [30, None, 40]),
        Item("memory.disableOOMKiller", "memory", "memory.oom_control", None, [True, None, False],
             check=lambda t, v, v1: f"oom_kill_disable {int(v)}" in t.split("\n")),
        Item("cpu.shares", "cpu", "cpu.shares", "cpu.weight", [512, 256, 768], flag="--cpu-shares",
             expect=lambda v, v1: str(v if v1 else shares_to_weight(v))),
        Item("cpu.period", "cpu", "cpu.cfs_period_us", "cpu.max", [50000, 40000, 60000],
             flag="--cpu-period",
             check=lambda t, v, v1: t == str(v) if v1 else t.split()[1] == str(v)),
        Item("cpu.quota", "cpu", "cpu.cfs_quota_us", "cpu.max", [25000, 20000, 30000],
             flag="--cpu-quota",
             check=lambda t, v, v1: t == str(v) if v1 else t.split()[0] == str(v)),
        Item("cpu.burst", "cpu", "cpu.cfs_burst_us", "cpu.max.burst", [1000, None, 2000]),
        Item("cpu.realtimePeriod", "cpu", "cpu.rt_period_us", None, [500000, 400000, 300000],
             flag="--cpu-rt-period"),
        # idle 1 makes the kernel report the shares of SCHED_IDLE (3): set
        # to 0 here, to 1 in a last update of its own.
        Item("cpu.idle", "cpu", "cpu.idle", "cpu.idle", [0, None, 0]),
        Item("cpu.cpus", "cpuset", "cpuset.cpus", "cpuset.cpus", ["0", "0", "0"],
             flag="--cpuset-cpus"),
        Item("cpu.mems", "cpuset", "cpuset.mems", "cpuset.mems", ["0", "0", "0"],
             flag="--cpuset-mems"),
        Item("pids.limit", "pids", "pids.max", "pids.max", [100, 90, 80], flag="--pids-limit"),
    ]
    # cpus: a second CPU when the host has one, so the value changes.
    if os.cpu_count() and os.cpu_count() > 1:
        out[-3].values = ["1", "0", "0-1"]
    bfq1 = node.path("blkio", "blkio.weight", None) is None and node.v1("blkio")
    out.append(Item("blockIO.weight", "blkio", "blkio.bfq.weight" if bfq1 else "blkio.weight",
                    "io.bfq.weight" if node.path("blkio", None, "io.bfq.weight") else "io.weight",
                    [300, 200, 500], flag="--blkio-weight",
                    check=lambda t, v, v1: t.split("\n")[0].split()[-1] in (
                        str(v), str(blkio_to_io_weight(v)))))
    out.append(Item("blockIO.leafWeight", "blkio", "blkio.leaf_weight", None, [300, None, 400]))
    if dev:
        devs = f"{dev[0]}:{dev[1]}"
        for k, (name, v1f, key) in enumerate([
                ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
                ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
                ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
                ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops")]):
            def spec(res, v, name=name):
                res.setdefault("blockIO", {})[name] = [
                    {"major": dev[0], "minor": dev[1], "rate": v}]

            def check(t, v, v1, key=key):
                lines = [ln for ln in t.split("\n") if ln.startswith(devs + " ")]
                if v1:
                    return lines == [f"{devs} {v}"]
                return len(lines) == 1 and f"{key}={v}" in lines[0].split()
            out.append(Item(f"blockIO.{name}", "blkio", v1f, "io.max",
                            [(k + 1) * MiB, None, (k + 2) * MiB], spec=spec, check=check))
    if hp:
        def hspec(res, v):
            res["hugepageLimits"] = [{"pageSize": hp, "limit": v}]
        out.append(Item("hugepageLimits", "hugetlb", f"hugetlb.{hp}.limit_in_bytes",
                        f"hugetlb.{hp}.max", [4 * MiB if hp == "2MB" else 1 << 30, None,
                                              8 * MiB if hp == "2MB" else 2 << 30], spec=hspec))
    out.append(Item("network.classID", "net_cls", "net_cls.classid", None, [0x100001, None, 0x100002]))

    def pspec(res, v):
        res.setdefault("network", {})["priorities"] = [{"name": "lo", "priority": v}]
    out.append(Item("network.priorities", "net_prio", "net_prio.ifpriomap", None, [5, None, 6],
                    spec=pspec, check=lambda t, v, v1: f"lo {v}" in t.split("\n")))
    # unified: memory.high of the v2 node, where the unified hierarchy has
    # the memory controller (the last word, after memory.*).
    def uspec(res, v):
        res["unified"] = {"memory.high": str(v)}
    u = Item("unified", "", None, "memory.high", [250 * MiB, None, 240 * MiB], spec=uspec)
    u.v2_only = True
    out.append(u)
    return out


def host_path(node, it):
    if getattr(it, "v2_only", False):
        d = helpers.cgroup_dir(node.pid)
        p = os.path.join(d, it.v2_file) if d else None
        return p if p and os.path.isfile(p) else None
    return node.path(it.ctrl, it.v1_file, it.v2_file)


def create(env, res):
    linux = json.loads(json.dumps(fixture_linux()))
    linux["resources"] = res
    bundle = env.make_bundle(linux=linux)
    sb = helpers.Sandbox(env.cli, bundle)
    env.sandboxes.append(sb)
    rc, out = env.cli.detached("create", "--bundle", bundle, "--pid-file",
                               os.path.join(env.root, f".{sb.id}.pid"), sb.id, check=False)
    return sb, rc, out


def create_fails(env, res, field):
    sb, rc, out = create(env, res)
    assert rc != 0, f"create with {res} succeeded"
    assert field in out, f"the error does not name {field}: {out}"
    assert not os.path.exists(os.path.join(env.root, sb.id)), "a refused create left state"
    left = [c for c in helpers.cgroup_paths(sb.id) if os.path.exists(c)]
    assert not left, f"a refused create left cgroups: {left}"
    return out


@pytest.fixture(scope="module")
def capable(module_env):
    """(node of a probe container, items this host applies, items it cannot)."""
    sb = module_env.new_sandbox()
    node = Node(sb.init_host_pid())
    its = items(node)
    yes = [it for it in its if host_path(node, it)]
    no = [it for it in its if not host_path(node, it)]
    print("resources this host applies:", [it.field for it in yes])
    print("resources this host refuses:", [it.field for it in no])
    return node, yes, no


def readback(sb, its, step):
    node = Node(sb.init_host_pid())
    bad = []
    for it in its:
        v = it.values[step]
        if v is None:
            v = it.values[0] if step == 1 else v
        p = host_path(node, it)
        assert p, f"{it.field}: no file in the container's cgroup"
        text = read(p)
        v1 = not getattr(it, "v2_only", False) and node.v1(it.ctrl)
        if not it.ok(text, v, v1):
            bad.append(f"{it.field}: {p} is {text!r}, expected {it.expect(v, v1)!r} for {v!r}")
    assert not bad, "\n".join(bad)


def test_every_resource_reads_back_after_create_and_update(env, capable):
    node, yes, no = capable
    res = {}
    for it in yes:
        it.put(res, it.values[0])
    # Kernel memory: ignored with a warning, as runc does; never an error.
    res.setdefault("memory", {})["kernel"] = 64 * MiB
    res["memory"]["kernelTCP"] = 16 * MiB
    sb, rc, out = create(env, res)
    assert rc == 0, out
    with open(os.path.join(env.root, f".{sb.id}.pid")) as f:
        sb._init_host_pid = int(f.read().strip())
    readback(sb, yes, 0)

    # runc's flags, through the same writers.
    args = []
    for it in yes:
        if it.flag and it.values[1] is not None:
            v = it.values[1]
            args += [it.flag, f"{v // MiB}m" if it.field.startswith("memory.") else str(v)]
    args += ["--kernel-memory", "32m"]
    p = env.cli.run("update", *args, sb.id)
    assert p.returncode == 0, p.stderr
    assert "--kernel-memory is ignored" in p.stderr, p.stderr
    readback(sb, [it for it in yes if it.flag and it.values[1] is not None], 1)

    # A LinuxResources file with every field.
    res = {}
    for it in yes:
        it.put(res, it.values[2])
    f = os.path.join(env.root, ".update.json")
    with open(f, "w") as fp:
        json.dump(res, fp)
    p = env.cli.run("update", "-r", f, sb.id)
    assert p.returncode == 0, p.stderr
    readback(sb, yes, 2)

    idle = [it for it in yes if it.field == "cpu.idle"]
    if idle:
        idle[0].values = [1, None, 1]
        with open(f, "w") as fp:
            json.dump({"cpu": {"idle": 1}}, fp)
        p = env.cli.run("update", "-r", f, sb.id)
        assert p.returncode == 0, p.stderr
        readback(sb, idle, 0)


def test_a_resource_the_host_cannot_apply_is_refused_naming_it(env, capable):
    node, yes, no = capable
    if not no:
        pytest.skip("this host applies every resource field the test knows")
    for it in no:
        res = {}
        it.put(res, it.values[0])
        create_fails(env, res, f"linux.resources.{it.field.split('.')[0]}")


@pytest.mark.parametrize("res,field", [
    ({"unified": {"../memory.max": "1"}}, "resources.unified"),
    ({"unified": {"a/b": "1"}}, "resources.unified"),
    ({"unified": {"cgroup.procs": "1"}}, 'unified["cgroup.procs"]'),
    ({"unified": {"nosuch.file": "1"}}, 'unified["nosuch.file"]'),
    ({"hugepageLimits": [{"pageSize": "2MB/../x", "limit": 1}]}, "hugepageLimits[0].pageSize"),
    ({"memory": {"swappiness": 101}}, "memory.swappiness"),
    ({"blockIO": {"weight": 5}}, "blockIO.weight"),
    ({"network": {"priorities": [{"name": "a/b", "priority": 1}]}}, "network.priorities[0].name"),
    # More runtime than its period (1 s by default): the kernel refuses it
    # wherever the container's cgroup is (v1), and v2 has no realtime
    # controller at all.
    ({"cpu": {"realtimeRuntime": 2000000}}, "cpu.realtimeRuntime"),
], ids=["unified-dotdot", "unified-slash", "unified-cgroup-file", "unified-missing",
        "hugepage-size", "swappiness-range", "blkio-weight-range", "netprio-name", "rt-runtime"])
def test_bad_resources_are_refused_naming_the_field(env, res, field):
    create_fails(env, res, field)


def test_update_refusal_names_the_field_and_keeps_the_limits(env, capable):
    node, yes, no = capable
    sb = env.new_sandbox()
    p = env.cli.run("update", "--cpu-rt-runtime", "2000000", sb.id)
    assert p.returncode != 0
    assert "cpu.realtimeRuntime" in p.stderr, p.stderr
    p = env.cli.run("update", "--blkio-weight", "5", sb.id)
    assert p.returncode != 0 and "--blkio-weight" in p.stderr, p.stderr
    p = env.cli.run("update", "--l3-cache-schema", "L3:0=f", sb.id)
    assert p.returncode != 0 and "Intel RDT" in p.stderr, p.stderr


def test_check_before_update_refuses_a_limit_below_the_usage(env):
    sb = env.new_sandbox(start=True)
    mem, path = helpers.read_cgroup_file(sb.init_host_pid(), "memory", "memory.limit_in_bytes",
                                         "memory.max")
    f = os.path.join(env.root, ".check.json")
    with open(f, "w") as fp:
        json.dump({"memory": {"limit": 4096, "checkBeforeUpdate": True}}, fp)
    p = env.cli.run("update", "-r", f, sb.id)
    assert p.returncode != 0
    assert "memory.checkBeforeUpdate" in p.stderr and "below the current usage" in p.stderr, p.stderr
    assert read(path) == mem


def test_hybrid_container_joins_every_v1_hierarchy(env):
    helpers.need_cgroup_layout("hybrid", "v1")
    sb = env.new_sandbox(start=True)
    cg = helpers.cgroups_of(sb.init_host_pid())
    # The container's node has one path, the same in every hierarchy.
    mine = cg.get("") or cg["memory"]
    assert mine != "/"
    missing = [c for m in helpers.cgroup_mounts() if not m.v2 and m.ctrls
               for c in m.ctrls if cg.get(c) != mine]
    assert not missing, f"not in the container's node {mine} of these v1 hierarchies: {missing} ({cg})"

    # An exec'd process joins the same nodes (through the fds the exec
    # spawner keeps). The fixture has no cgroup namespace, so the paths it
    # reads are the host's.
    status, out = sb.run_exec(["cat", "/proc/self/cgroup"])
    assert status == 0, out
    ex = {}
    for line in out.decode().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            ex[c] = path
    missing = [c for m in helpers.cgroup_mounts() if not m.v2 and m.ctrls
               for c in m.ctrls if ex.get(c) != mine]
    assert not missing, f"an exec is not in the container's node of: {missing} ({ex})"

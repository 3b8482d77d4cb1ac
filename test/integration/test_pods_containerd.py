"""A pod the way a Kubernetes node drives containerd: a pause container and
two app containers of the same sandbox id (the CRI annotations in their OCI
specs, given with `ctr run --config`), through containerd's runc shim with
cvisor as its runc binary. The
shim serves the whole pod from one process (grouped by the sandbox-id
annotation); cvisor puts the apps inside the pause container's sandbox.

The containerd is the test's own (test_containerd.Containerd)."""
import json
import os

import pytest

import engines
import helpers
from test_containerd import RUNC_STATE, Containerd

TYPE = "io.kubernetes.cri.container-type"
SANDBOX = "io.kubernetes.cri.sandbox-id"


@pytest.fixture
def pod_ctrd(cvisor, fixture_bundle):
    binary = engines.need_binary("containerd")
    ctr = engines.need_binary("ctr")
    cd = Containerd(binary, ctr, cvisor)
    cd.bundle_rootfs = os.path.join(fixture_bundle, "rootfs")
    try:
        yield cd
    finally:
        cd.close()


def run_in_pod(cd, cid, sandbox_id, kind, marker):
    """`ctr run --config F` as a node's CRI plugin would lay the spec out:
    ctr's default spec with the CRI annotations, the container's own
    cgroupsPath and a private rootfs copy."""
    cd.ids.append(cid)
    rootfs = engines.copy_rootfs(cd.bundle_rootfs, os.path.join(cd.tmp, f"rootfs-{cid}"))
    spec = json.loads(cd("oci", "spec").stdout)
    spec["process"]["args"] = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait", marker]
    spec["process"]["env"] = [engines.PATH_ENV]
    spec["root"] = {"path": rootfs}
    spec["linux"]["cgroupsPath"] = f"/{cd.ns}/{cid}"
    spec["annotations"] = {TYPE: kind, SANDBOX: sandbox_id}
    path = os.path.join(cd.tmp, f"spec-{cid}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    cd("run", "-d", "--runtime", "io.containerd.runc.v2", "--runc-binary", cd.runtime,
       "--config", path, cid)
    return engines.find_init(marker)


def state_of(cd, cid):
    with open(os.path.join(RUNC_STATE, cd.ns, cid, "state.json")) as f:
        return json.load(f)


def boots_of(cd):
    return [p for p in engines.all_pids()
            if "boot" in engines.cmdline(p) and
            any(a.startswith(os.path.join(RUNC_STATE, cd.ns)) for a in engines.cmdline(p))]


def test_pod_through_containerd(pod_ctrd):
    cd = pod_ctrd
    pause = engines.unique("podspause")
    apps = [engines.unique("podsapp"), engines.unique("podsapp")]
    inits = {pause: run_in_pod(cd, pause, pause, "sandbox", engines.unique("m"))}
    for a in apps:
        inits[a] = run_in_pod(cd, a, pause, "container", engines.unique("m"))
    # One sandbox: one boot, the same bootPid and control socket for all three.
    assert len(boots_of(cd)) == 1, boots_of(cd)
    boot = state_of(cd, pause)["bootPid"]
    for a in apps:
        st = state_of(cd, a)
        assert st["bootPid"] == boot and st["sandboxId"] == pause
        assert os.path.realpath(os.path.join(RUNC_STATE, cd.ns, a, "control.sock")) == \
            os.path.join(RUNC_STATE, cd.ns, pause, "control.sock")
    # ctr's task pid is each container's init; each app has its own pid namespace.
    tasks = cd.tasks()
    for cid, init in inits.items():
        assert tasks[cid] == (init, "RUNNING"), (cid, tasks)
    assert len({engines.ns_inode(p, "pid") for p in inits.values()}) == 3
    # One shim process serves the pod: every init is its child.
    shims = {int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
             for p in inits.values()}
    assert len(shims) == 1, shims
    # task ps and exec on each.
    for cid, init in inits.items():
        out = cd("task", "ps", cid).stdout
        assert str(init) in out.split(), out
        p = cd("task", "exec", "--exec-id", engines.unique("e"), cid, "sh", "-c",
               "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname")
        assert p.stdout.split("\n")[0].startswith("sh -c trap"), p.stdout
    # Killing one app leaves the others.
    cd("task", "kill", "--signal", "SIGKILL", apps[0])
    engines.wait_until(lambda: not engines.alive(inits[apps[0]]), what="app 0 gone")
    engines.wait_until(lambda: cd.tasks().get(apps[0], (0, ""))[1] == "STOPPED",
                       what="ctr reports app 0 stopped")
    tasks = cd.tasks()
    assert tasks[pause][1] == "RUNNING" and tasks[apps[1]][1] == "RUNNING", tasks
    cd("task", "delete", apps[0])
    assert not os.path.exists(os.path.join(RUNC_STATE, cd.ns, apps[0]))
    # Deleting the pause container ends the pod, nothing left behind.
    cd("task", "kill", "--signal", "SIGKILL", pause)
    engines.wait_until(lambda: cd.tasks().get(pause, (0, ""))[1] == "STOPPED",
                       what="pause stopped")
    cd("task", "delete", pause)
    engines.wait_until(lambda: not any(engines.alive(p) for p in inits.values()),
                       what="every init gone")
    engines.wait_until(lambda: not boots_of(cd), what="boot gone")
    assert not os.path.exists(os.path.join(RUNC_STATE, cd.ns, pause))
    assert not os.path.exists(os.path.join(RUNC_STATE, cd.ns, apps[1]))
    for cid in [pause] + apps:
        left = [d for d in (m.dir_of(f"/{cd.ns}/{cid}") for m in helpers.cgroup_mounts())
                if d and os.path.isdir(d)]
        assert not left, left

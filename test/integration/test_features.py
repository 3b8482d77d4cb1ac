"""`cvisor features` is printed from the tables the runtime accepts a spec
with (cmd/spec.c): every listed item works in a container here, and an
unlisted one is refused with an error naming the field. (The output's
shape against runc's is in test_cli_verbs.py.)"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import helpers


@pytest.fixture(scope="module")
def features(cvisor):
    p = subprocess.run([cvisor, "features"], capture_output=True, text=True,
                       timeout=helpers.CLI_TIMEOUT)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def fixture(env, key):
    return helpers.fixture_config(env.fixture)[key]


def run(env, args=("true",), check=True, **overrides):
    bundle = env.make_bundle(args=list(args), **overrides)
    p = env.cli.run("run", "--bundle", bundle, helpers.new_id())
    if check:
        assert p.returncode == 0, f"stdout={p.stdout!r} stderr={p.stderr!r}"
    return p


@pytest.fixture
def host_dir():
    d = tempfile.mkdtemp(prefix="cvisor-feat-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_every_listed_mount_option_works(env, features, host_dir):
    opts = features["mountOptions"]
    assert len(set(opts)) == len(opts)
    assert {"defaults", "tmpcopyup", "rbind", "rro", "nosymfollow", "rprivate"} <= set(opts)
    mounts = list(fixture(env, "mounts"))
    for i, o in enumerate(opts):
        if o in ("bind", "rbind"):
            mounts.append({"destination": f"/f/{i}", "type": "bind", "source": host_dir,
                           "options": [o]})
        else:
            mounts.append({"destination": f"/f/{i}", "type": "tmpfs", "source": "tmpfs",
                           "options": [o, "size=1m"]})
    p = run(env, args=["sh", "-c", "grep -c ' /f/' /proc/self/mountinfo"], mounts=mounts)
    assert int(p.stdout) == len(opts), p.stdout


@pytest.mark.parametrize("opt", ["idmap", "ridmap"])
def test_unlisted_mount_option_refused(env, features, host_dir, opt):
    assert opt not in features["mountOptions"]
    mounts = list(fixture(env, "mounts"))
    mounts.append({"destination": "/b", "type": "bind", "source": host_dir,
                   "options": ["rbind", opt]})
    p = run(env, check=False, mounts=mounts)
    assert p.returncode != 0
    assert f'spec.mounts[{len(mounts) - 1}] (/b).options: "{opt}"' in p.stderr, p.stderr


NS_FILES = {"cgroup": "cgroup", "ipc": "ipc", "mount": "mnt", "network": "net", "pid": "pid",
            "user": "user", "uts": "uts", "time": "time"}
USER_MAP = [{"containerID": 0, "hostID": 0, "size": 65536}]


@pytest.mark.parametrize("ns", sorted(NS_FILES))
def test_every_listed_namespace_works(env, features, ns):
    if ns not in features["linux"]["namespaces"]:
        pytest.fail(f"{ns} is not listed")
    linux = dict(fixture(env, "linux"))
    listed = [n for n in linux["namespaces"] if n["type"] != ns]
    linux["namespaces"] = listed + [{"type": ns}]
    if ns == "user":
        # Identity maps: the shared busybox rootfs stays readable.
        linux["uidMappings"] = USER_MAP
        linux["gidMappings"] = USER_MAP
    f = NS_FILES[ns]
    p = run(env, args=["readlink", f"/proc/self/ns/{f}"], linux=linux)
    assert p.stdout.strip() != os.readlink(f"/proc/self/ns/{f}"), \
        f"the container shares the host's {ns} namespace"


def test_listed_namespaces_are_all_tested(features):
    assert set(features["linux"]["namespaces"]) == set(NS_FILES)


def test_unlisted_namespace_refused(env):
    linux = dict(fixture(env, "linux"))
    linux["namespaces"] = list(linux["namespaces"]) + [{"type": "nosuchns"}]
    p = run(env, check=False, linux=linux)
    assert p.returncode != 0
    assert 'unknown namespace type "nosuchns"' in p.stderr, p.stderr


# Syscalls busybox `true` never makes: a rule on them changes nothing it does.
UNUSED = ["acct", "add_key", "bpf", "delete_module", "init_module", "kexec_load", "lookup_dcookie",
          "nfsservctl", "pivot_root", "quotactl", "swapoff", "swapon", "syslog", "umount2",
          "uselib", "vhangup"]


def test_every_listed_seccomp_item_works(env, features):
    sc = features["linux"]["seccomp"]
    names = iter(UNUSED)
    rules = [{"names": [next(names)], "action": a} for a in sc["actions"]]
    rules += [{"names": [next(names)], "action": "SCMP_ACT_ERRNO",
               "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}
              for op in sc["operators"]]
    linux = dict(fixture(env, "linux"))
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": sc["archs"],
                        "flags": sc["supportedFlags"], "syscalls": rules}
    p = run(env, args=["echo", "ok"], linux=linux)
    assert p.stdout == "ok\n"


@pytest.mark.parametrize("what,change,err", [
    ("action", {"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY"),
    ("action", {"defaultAction": "SCMP_ACT_NOPE"}, 'unknown action "SCMP_ACT_NOPE"'),
    ("arch", {"architectures": ["SCMP_ARCH_NOPE"]}, 'unknown architecture "SCMP_ARCH_NOPE"'),
    # Known to libseccomp, but big-endian: a filter here cannot take it.
    ("arch", {"architectures": ["SCMP_ARCH_S390X"]}, "SCMP_ARCH_S390X"),
    ("flag", {"flags": ["SECCOMP_FILTER_FLAG_NOPE"]}, 'unknown flag "SECCOMP_FILTER_FLAG_NOPE"'),
    ("op", {"syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]},
     "SCMP_CMP_NOPE"),
])
def test_unlisted_seccomp_item_refused(env, features, what, change, err):
    sc = features["linux"]["seccomp"]
    listed = {"action": sc["actions"], "arch": sc["archs"], "flag": sc["supportedFlags"],
              "op": sc["operators"]}[what]
    assert err.split('"')[1 if '"' in err else 0] not in listed
    linux = dict(fixture(env, "linux"))
    linux["seccomp"] = dict({"defaultAction": "SCMP_ACT_ALLOW"}, **change)
    p = run(env, check=False, linux=linux)
    assert p.returncode != 0
    assert "spec.linux.seccomp" in p.stderr and err in p.stderr, p.stderr


def test_hooks_are_the_six_of_the_spec(features):
    # Run by the hooks code (test_hooks.py); listed here as the spec names them.
    assert features["hooks"] == ["prestart", "createRuntime", "createContainer",
                                 "startContainer", "poststart", "poststop"]

"""Process fields applied before execve (kernel/procattr.c), as runc does:
a session keyring per container ("_ses.<id>", /proc/keys), ioPriority
(busybox ionice), scheduler (/proc/self/stat's nice and policy fields),
linux.personality (/proc/self/personality), oomScoreAdj, and the LSM exec
labels (applied when the LSM is enabled, else a warning). Values are read
back inside the container, by the init and by an exec'd process."""
import os

import pytest

import helpers

UNMASKED = [p for p in helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["linux"]["maskedPaths"]
            if p != "/proc/keys"]


def linux_with(**kw):
    linux = dict(helpers.fixture_config(os.environ["CVISOR_BUNDLE"])["linux"])
    linux.update(kw)
    return linux


def run(env, script, *flags, process=None, linux=None, check=True, sid=None):
    bundle = env.make_bundle(args=["sh", "-c", script], process=process or {},
                             linux=linux or linux_with())
    p = env.cli.run("run", *flags, "--bundle", bundle, sid or helpers.new_id())
    if check:
        assert p.returncode == 0, f"stdout={p.stdout!r} stderr={p.stderr!r}"
    return p


def stat_fields(line):
    """/proc/<pid>/stat after the command name: index 0 is field 3 (state)."""
    return line.rsplit(")", 1)[1].split()


def test_session_keyring_named_after_the_container(env):
    sid = helpers.new_id()
    p = run(env, "cat /proc/keys", linux=linux_with(maskedPaths=UNMASKED), sid=sid)
    names = [l.split()[8].rstrip(":") for l in p.stdout.splitlines() if l.split()[7:8] == ["keyring"]]
    assert f"_ses.{sid}" in names, p.stdout


def test_no_new_keyring(env):
    sid = helpers.new_id()
    p = run(env, "cat /proc/keys", "--no-new-keyring",
            linux=linux_with(maskedPaths=UNMASKED), sid=sid)
    assert f"_ses.{sid}" not in p.stdout, p.stdout


def test_keyring_not_chosen_by_config_json(env):
    # The key is the CLI's to set: a config.json value is overwritten.
    sid = helpers.new_id()
    bundle = env.make_bundle(args=["cat", "/proc/keys"], linux=linux_with(maskedPaths=UNMASKED),
                             **{"cvisor.sessionKeyring": ""})
    p = env.cli.run("run", "--bundle", bundle, sid)
    assert p.returncode == 0, p.stderr
    assert f"_ses.{sid}" in p.stdout, p.stdout


FIELDS = dict(
    process={"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6},
             "scheduler": {"policy": "SCHED_BATCH", "nice": 7},
             "oomScoreAdj": 321},
    linux=linux_with(personality={"domain": "LINUX32"}),
)
READ_BACK = "ionice -p $$; cat /proc/self/personality; cat /proc/self/oom_score_adj; " \
            "cat /proc/self/stat"


def check_read_back(out):
    lines = out.splitlines()
    assert lines[0] == "best-effort: prio 6", out
    assert lines[1] == "00000008", out  # PER_LINUX32
    assert lines[2] == "321", out
    st = stat_fields(lines[3])
    assert st[16] == "7", out   # field 19: nice
    assert st[38] == "3", out   # field 41: policy, SCHED_BATCH


def test_io_priority_scheduler_personality_oom_in_init(env):
    check_read_back(run(env, READ_BACK, **FIELDS).stdout)


def test_exec_gets_them_too(env):
    bundle = env.make_bundle(process=FIELDS["process"], linux=FIELDS["linux"])
    sb = env.new_sandbox(bundle, start=True)
    status, out = sb.run_exec(["sh", "-c", READ_BACK])
    assert status == 0, out
    check_read_back(out.decode())


def test_sched_idle_and_ioprio_idle(env):
    p = run(env, "ionice -p $$; cat /proc/self/stat",
            process={"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},
                     "scheduler": {"policy": "SCHED_IDLE"}})
    lines = p.stdout.splitlines()
    assert lines[0] == "idle", p.stdout
    assert stat_fields(lines[1])[38] == "5", p.stdout  # SCHED_IDLE


@pytest.mark.parametrize("process,linux,field", [
    ({"ioPriority": {"class": "IOPRIO_CLASS_X", "priority": 0}}, {},
     "spec.process.ioPriority.class"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}, {},
     "spec.process.ioPriority.priority"),
    ({"scheduler": {"policy": "SCHED_X"}}, {}, "spec.process.scheduler.policy"),
    ({"scheduler": {"policy": "SCHED_OTHER", "nice": 40}}, {}, "spec.process.scheduler.nice"),
    ({"scheduler": {"policy": "SCHED_FIFO", "priority": 0}}, {},
     "spec.process.scheduler.priority"),
    ({"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]}}, {},
     "spec.process.scheduler.flags[0]"),
    ({}, {"personality": {"domain": "LINUX64"}}, "spec.linux.personality.domain"),
    ({}, {"personality": {"domain": "LINUX", "flags": ["NOPE"]}},
     "spec.linux.personality.flags[0]"),
])
def test_bad_values_refused_naming_the_field(env, process, linux, field):
    p = run(env, "true", process=process, linux=linux_with(**linux), check=False)
    assert p.returncode != 0
    assert field in p.stderr, p.stderr


def lsm_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().strip() == "Y":
                return "AppArmor"
    except OSError:
        pass
    if os.path.exists("/sys/fs/selinux/enforce"):
        return "SELinux"
    return None


def test_lsm_labels_without_the_lsm_are_a_warning(env):
    lsm = lsm_enabled()
    if lsm:
        reason = f"{lsm} is enabled on this host: the label would need a loaded policy"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    bundle = env.make_bundle(args=["echo", "ran"],
                             process={"apparmorProfile": "cvisor-test",
                                      "selinuxLabel": "system_u:system_r:x:s0"})
    log = os.path.join(env.cli.root, "lsm.log")
    p = env.cli.run("--log", log, "run", "--bundle", bundle, helpers.new_id())
    assert p.returncode == 0 and p.stdout == "ran\n", p.stderr
    with open(log) as f:
        text = f.read()
    assert "spec.process.apparmorProfile" in text and "not enabled" in text, text
    assert "spec.process.selinuxLabel" in text, text

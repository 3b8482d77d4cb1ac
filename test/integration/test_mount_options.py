"""spec.mounts[].options as runc takes them (kernel/mount_opts.c): the
flags, a bind's remount, the recursive attributes (rro ...) through
mount_setattr(AT_RECURSIVE), tmpcopyup, and idmap refused by name. Each
test reads the result inside the container (/proc/self/mountinfo, file
contents), as runc gives it on this host."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import helpers


def fixture_mounts(env):
    return list(helpers.fixture_config(env.fixture)["mounts"])


def run(env, script, mounts=(), rootfs=None, check=True):
    bundle = env.make_bundle(args=["sh", "-c", script],
                             mounts=fixture_mounts(env) + list(mounts))
    if rootfs:
        cfg = helpers.fixture_config(bundle)
        cfg["root"]["path"] = rootfs
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
    p = env.cli.run("run", "--bundle", bundle, helpers.new_id())
    if check:
        assert p.returncode == 0, f"stdout={p.stdout!r} stderr={p.stderr!r}"
    return p


def mountinfo_opts(out, mount_point):
    """The per-mount options (field 6) of the mount at mount_point in the
    mountinfo lines of out (the last one mounted there)."""
    found = None
    for line in out.splitlines():
        f = line.split()
        if len(f) > 6 and f[4] == mount_point:
            found = set(f[5].split(","))
    assert found is not None, f"no mount at {mount_point} in:\n{out}"
    return found


@pytest.fixture
def host_dir():
    d = tempfile.mkdtemp(prefix="cvisor-mopt-")
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["umount", "-R", d], stderr=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def own_rootfs(env):
    """A private copy of the busybox rootfs that a test may change."""
    top = tempfile.mkdtemp(prefix="cvisor-mopt-root-")
    os.chmod(top, 0o755)
    rootfs = os.path.join(top, "rootfs")
    subprocess.run(["cp", "-a", os.path.join(env.fixture, "rootfs"), rootfs], check=True)
    yield rootfs
    shutil.rmtree(top, ignore_errors=True)


def test_tmpcopyup_keeps_the_image_files(env):
    # runc: a tmpfs with tmpcopyup starts with what the image has there.
    with open(os.path.join(env.fixture, "rootfs", "etc", "passwd")) as f:
        image_passwd = f.read()
    p = run(env, "cat /etc/passwd; echo ==; grep ' /etc ' /proc/self/mountinfo; "
                 "echo new > /etc/new && cat /etc/new",
            mounts=[{"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                     "options": ["nosuid", "nodev", "mode=755", "tmpcopyup"]}])
    passwd, rest = p.stdout.split("==\n", 1)
    assert passwd == image_passwd
    assert " - tmpfs " in rest, rest
    assert rest.rstrip().endswith("new"), rest
    # The copy is the container's: the image is unchanged.
    assert not os.path.exists(os.path.join(env.fixture, "rootfs", "etc", "new"))


def test_tmpcopyup_copies_symlinks_and_never_follows_them(env, own_rootfs, host_dir):
    secret = os.path.join(host_dir, "secret")
    with open(secret, "w") as f:
        f.write("host-only\n")
    data = os.path.join(own_rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    os.symlink(secret, os.path.join(data, "link"))       # absolute, to the host's file
    os.symlink(host_dir, os.path.join(data, "dirlink"))  # absolute, to the host's dir
    with open(os.path.join(data, "sub", "f"), "w") as f:
        f.write("image\n")
    os.chmod(os.path.join(data, "sub", "f"), 0o640)
    # The destination itself a symlink out of the rootfs: the tmpfs must
    # land inside the rootfs (resolved in its root), never on host_dir.
    os.symlink(host_dir, os.path.join(own_rootfs, "evil"))
    tmpfs = {"type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}
    p = run(env, "readlink /data/link; readlink /data/dirlink; cat /data/sub/f; "
                 "stat -c %a /data/sub/f; cat /data/link 2>&1; ls -A /evil; "
                 f"grep -c ' {host_dir} .* - tmpfs ' /proc/self/mountinfo; echo end",
            mounts=[dict(tmpfs, destination="/data"), dict(tmpfs, destination="/evil")],
            rootfs=own_rootfs)
    lines = p.stdout.splitlines()
    assert lines[:4] == [secret, host_dir, "image", "640"], p.stdout
    assert "host-only" not in p.stdout, p.stdout
    assert lines[-1] == "end" and "secret" not in lines[5:], p.stdout
    # Where RESOLVE_IN_ROOT put it: at host_dir's path in the container's
    # root (under its /tmp tmpfs here), and nothing changed on the host.
    assert lines[-2] == "1", p.stdout
    assert os.listdir(host_dir) == ["secret"]


def test_bind_ro_nosuid_nodev_noexec_in_mountinfo(env, host_dir):
    p = run(env, "grep ' /b ' /proc/self/mountinfo; touch /b/x 2>&1; echo end",
            mounts=[{"destination": "/b", "type": "bind", "source": host_dir,
                     "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}])
    assert {"ro", "nosuid", "nodev", "noexec"} <= mountinfo_opts(p.stdout, "/b"), p.stdout
    assert "Read-only file system" in p.stdout
    assert not os.path.exists(os.path.join(host_dir, "x"))


def test_rro_makes_submounts_read_only(env, host_dir):
    sub = os.path.join(host_dir, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", sub], check=True)
    script = "cat /proc/self/mountinfo; touch /r/sub/x 2>&1; echo end"
    # ro alone (runc): the bind is read-only, its submount is not.
    p = run(env, script, mounts=[{"destination": "/r", "type": "bind", "source": host_dir,
                                  "options": ["rbind", "ro"]}])
    assert "ro" in mountinfo_opts(p.stdout, "/r")
    assert "rw" in mountinfo_opts(p.stdout, "/r/sub"), p.stdout
    os.unlink(os.path.join(sub, "x"))
    # rro: the whole tree.
    p = run(env, script, mounts=[{"destination": "/r", "type": "bind", "source": host_dir,
                                  "options": ["rbind", "rro"]}])
    assert "ro" in mountinfo_opts(p.stdout, "/r"), p.stdout
    assert "ro" in mountinfo_opts(p.stdout, "/r/sub"), p.stdout
    assert "Read-only file system" in p.stdout
    assert not os.path.exists(os.path.join(sub, "x"))


def test_recursive_nosuid_noexec_and_atime(env, host_dir):
    sub = os.path.join(host_dir, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", sub], check=True)
    p = run(env, "cat /proc/self/mountinfo",
            mounts=[{"destination": "/r", "type": "bind", "source": host_dir,
                     "options": ["rbind", "rnosuid", "rnoexec", "rnodev", "rnoatime"]}])
    for mp in ("/r", "/r/sub"):
        assert {"nosuid", "noexec", "nodev", "noatime"} <= mountinfo_opts(p.stdout, mp), \
            (mp, p.stdout)


def test_defaults_nosymfollow_and_flags_on_tmpfs(env):
    p = run(env, "grep ' /t ' /proc/self/mountinfo; ln -s /etc/passwd /t/l; "
                 "cat /t/l 2>&1; echo end",
            mounts=[{"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                     "options": ["defaults", "nosymfollow", "noexec", "nodev", "nosuid",
                                 "noatime", "size=1m"]}])
    assert {"nosymfollow", "noexec", "nodev", "nosuid", "noatime"} <= \
        mountinfo_opts(p.stdout, "/t"), p.stdout
    # nosymfollow: the link exists but is not followed.
    assert "root:" not in p.stdout, p.stdout


def test_propagation_options(env, host_dir):
    p = run(env, "cat /proc/self/mountinfo",
            mounts=[{"destination": "/s", "type": "bind", "source": host_dir,
                     "options": ["rbind", "rshared"]},
                    {"destination": "/u", "type": "tmpfs", "source": "tmpfs",
                     "options": ["unbindable"]}])
    lines = {l.split()[4]: l for l in p.stdout.splitlines()}
    assert "shared:" in lines["/s"], lines["/s"]
    assert "unbindable" in lines["/u"], lines["/u"]


@pytest.mark.parametrize("opt", ["idmap", "ridmap"])
def test_idmap_refused_naming_the_mount(env, host_dir, opt):
    mounts = fixture_mounts(env)
    p = run(env, "true", check=False,
            mounts=[{"destination": "/b", "type": "bind", "source": host_dir,
                     "options": ["rbind", opt]}])
    assert p.returncode != 0
    assert f'spec.mounts[{len(mounts)}] (/b).options: "{opt}"' in p.stderr, p.stderr


def test_tmpcopyup_only_for_tmpfs(env, host_dir):
    p = run(env, "true", check=False,
            mounts=[{"destination": "/b", "type": "bind", "source": host_dir,
                     "options": ["rbind", "tmpcopyup"]}])
    assert p.returncode != 0
    assert "tmpcopyup is only for type tmpfs" in p.stderr, p.stderr


# --------------------------------------------------------------------------
# podman: --tmpfs and --read-only ask for tmpcopyup, --sysctl for a sysctl
# under the read-only /proc/sys (both failed before: EINVAL from tmpfs).


@pytest.fixture(scope="module")
def podman(cvisor, fixture_bundle):
    import engines
    from test_podman import Podman
    pm = Podman(engines.need_binary("podman"), cvisor)
    try:
        pm.import_rootfs(os.path.join(fixture_bundle, "rootfs"), "localhost/cvisor-mopt")
        yield pm
    finally:
        pm.close()


def test_podman_tmpfs_read_only_sysctl(podman):
    import engines
    name = engines.unique("cvmopt")
    try:
        p = podman("run", "--rm", "--name", name, "--network", "none", "--tmpfs", "/x",
                   "--read-only", "--sysctl", "net.ipv4.ip_forward=1", "localhost/cvisor-mopt",
                   "sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; cat /proc/self/mountinfo; "
                               "touch /x/a /tmp/a && echo writable; touch /a 2>&1; echo end",
                   check=False)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "1", p.stdout
    assert " - tmpfs " in next(l for l in lines if l.split()[4:5] == ["/x"]), p.stdout
    assert "ro" in mountinfo_opts(p.stdout, "/")
    assert "writable" in lines and "Read-only file system" in p.stdout, p.stdout

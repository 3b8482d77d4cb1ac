"""HOME for an exec comes from the container's /etc/passwd, a file the
container controls: it is read only with the target's credentials, never
followed through a symlink, never blocked on (FIFO), only as a regular file
of bounded size; any failure falls back to HOME=/ as in runc."""
import os

import pytest

import helpers

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"


@pytest.fixture
def etc_sandbox(env, fixture_bundle):
    """A running sandbox whose /etc is a host directory the test controls
    (the fixture's rootfs is shared by every test and stays untouched)."""
    etc = os.path.join(env.root, ".etc")
    os.makedirs(etc)
    mounts = helpers.fixture_config(fixture_bundle)["mounts"] + [
        {"destination": "/etc", "type": "bind", "source": etc, "options": ["rbind", "rw"]}]
    sb = env.new_sandbox(env.make_bundle(mounts=mounts), start=True)
    return sb, etc


def home_of(sb, uid=0):
    # RawConn times out (helpers.TIMEOUT) if the exec never answers.
    status, out = sb.run_exec(["sh", "-c", 'echo "$HOME"'], uid=uid, gid=uid)
    assert status == 0, out
    return out.decode().strip()


def test_passwd_symlink_to_dev_zero(etc_sandbox):
    sb, etc = etc_sandbox
    os.symlink("/dev/zero", os.path.join(etc, "passwd"))
    assert home_of(sb) == "/"
    assert home_of(sb, 1000) == "/"


def test_passwd_fifo(etc_sandbox):
    sb, etc = etc_sandbox
    os.mkfifo(os.path.join(etc, "passwd"))
    assert home_of(sb) == "/"
    # The sandbox still answers, and keeps answering.
    assert sb.call(helpers.M_STATE, sb.id) == 2
    assert home_of(sb, 1000) == "/"


def test_passwd_normal_gives_home(etc_sandbox):
    sb, etc = etc_sandbox
    # A line longer than any read buffer before the entries, and a last
    # line without a newline: both parsed as before.
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write("x" * 10000 + ":x:5:5::/nope:/bin/sh\n" + PASSWD + "bob:x:2000:2000::/home/bob:/bin/sh")
    assert home_of(sb) == "/root"
    assert home_of(sb, 1000) == "/home/alice"
    assert home_of(sb, 2000) == "/home/bob"
    assert home_of(sb, 3000) == "/"


def test_passwd_read_with_target_credentials(etc_sandbox):
    sb, etc = etc_sandbox
    path = os.path.join(etc, "passwd")
    with open(path, "w") as f:
        f.write(PASSWD)
    os.chmod(path, 0o600)  # root's only: uid 1000 cannot read it
    assert home_of(sb, 1000) == "/"
    assert home_of(sb) == "/root"


def test_passwd_too_large(etc_sandbox):
    sb, etc = etc_sandbox
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write(PASSWD)
        f.write("#" * (1 << 20) + "\n")
    assert home_of(sb, 1000) == "/"

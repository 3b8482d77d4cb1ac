"""Fixtures for the cvisor integration tests (run as root, see README).

  cvisor           absolute path of the binary (CVISOR_BIN)
  fixture_bundle   the busybox bundle (CVISOR_BUNDLE)
  root_dir         a fresh --root; every sandbox left in it is force-deleted
  cli              helpers.Cli bound to root_dir
  make_bundle      make_bundle(args=[...], **overrides) -> bundle dir
  sandbox          created, not started (helpers.Sandbox)
  running_sandbox  created and started
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import helpers  # noqa: E402

# Every socket the tests or the client open gets a timeout, so a server that
# never answers fails the test instead of hanging CI.
socket.setdefaulttimeout(helpers.TIMEOUT)


def pytest_configure(config):
    # The test process plays the engine's subreaper (helpers.start_reaper).
    if os.geteuid() == 0:
        helpers.start_reaper()


@pytest.fixture(autouse=True)
def _reap_after_test():
    yield
    helpers.reap_adopted()


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.geteuid() != 0:
        reason = "cvisor integration tests need root (namespaces, cgroups, pivot_root)"
    elif not os.environ.get("CVISOR_BIN") or not os.environ.get("CVISOR_BUNDLE"):
        reason = "set CVISOR_BIN and CVISOR_BUNDLE (make integration does)"
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def cvisor():
    path = os.environ["CVISOR_BIN"]
    assert os.path.isabs(path) and os.access(path, os.X_OK), f"CVISOR_BIN={path} not executable"
    return path


@pytest.fixture(scope="session")
def fixture_bundle():
    path = os.path.abspath(os.environ["CVISOR_BUNDLE"])
    assert os.path.isfile(os.path.join(path, "config.json")), f"no config.json in {path}"
    return path


def _new_root():
    # Short path: control.sock must fit in sun_path (108 bytes).
    return tempfile.mkdtemp(prefix="cv", dir="/tmp")


def _clean_root(cvisor_bin, root, sandboxes):
    for sb in sandboxes:
        sb.cleanup()
    cli = helpers.Cli(cvisor_bin, root)
    for name in os.listdir(root) if os.path.isdir(root) else ():
        if os.path.isdir(os.path.join(root, name)):
            try:
                cli.run("delete", "--force", name, timeout=15)
            except subprocess.TimeoutExpired:
                pass
    shutil.rmtree(root, ignore_errors=True)


class _Env:
    """Everything one scope needs to make sandboxes; cleans up after itself."""

    def __init__(self, cvisor_bin, fixture_dir):
        self.cvisor = cvisor_bin
        self.fixture = fixture_dir
        self.root = _new_root()
        self.cli = helpers.Cli(cvisor_bin, self.root)
        self.sandboxes = []
        self.nbundles = 0

    def make_bundle(self, args=None, **overrides):
        self.nbundles += 1
        dest = os.path.join(self.root, f".bundle{self.nbundles}")
        return helpers.make_bundle(self.fixture, dest, args=args, **overrides)

    def new_sandbox(self, bundle=None, start=False):
        sb = helpers.Sandbox(self.cli, bundle or self.make_bundle())
        self.sandboxes.append(sb)
        sb.create()
        if start:
            sb.start()
        return sb

    def close(self):
        _clean_root(self.cvisor, self.root, self.sandboxes)


@pytest.fixture
def env(cvisor, fixture_bundle):
    e = _Env(cvisor, fixture_bundle)
    yield e
    e.close()


@pytest.fixture(scope="module")
def module_env(cvisor, fixture_bundle):
    e = _Env(cvisor, fixture_bundle)
    yield e
    e.close()


@pytest.fixture
def root_dir(env):
    return env.root


@pytest.fixture
def cli(env):
    return env.cli


@pytest.fixture
def make_bundle(env):
    return env.make_bundle


@pytest.fixture
def sandbox(env):
    return env.new_sandbox()


@pytest.fixture
def running_sandbox(env):
    return env.new_sandbox(start=True)

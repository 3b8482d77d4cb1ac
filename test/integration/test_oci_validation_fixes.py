"""Regressions for what the OCI runtime-tools validation suite checks and
cvisor got wrong (docs/oci-validation.md). Each test does what the suite's
test of the same name does, with the project's busybox bundle.

  hooks_stdin     prestart hooks read the state with status "created"
  poststart_fail  a failing poststart hook is a warning and the poststart
                  hooks after it still run
  poststop_fail   the same for poststop hooks
  misc_props      an ociVersion that is not SemVer 2.0.0 (or not 1.x) is an
                  error at create; unknown properties and annotations are not
"""
import os

import pytest

import helpers
from test_hooks import bundle_with, hook, order, out, state_in  # noqa: F401 (out: fixture)


def test_prestart_hook_reads_status_created(env, out):
    """runtime-tools hooks_stdin: the state a prestart hook reads on stdin
    says "created" (crun's value; runc 1.1 says "creating" and fails it)."""
    sid = helpers.new_id()
    hooks = {k: [hook(out, k)] for k in ("prestart", "createRuntime", "createContainer")}
    sb = helpers.Sandbox(env.cli, bundle_with(env, out, hooks), sid)
    env.sandboxes.append(sb)
    sb.create()
    assert order(out) == ["prestart", "createRuntime", "createContainer"]
    st = state_in(out, "prestart")
    assert st["status"] == "created", st
    assert st["id"] == sid and st["pid"] == sb.state()["pid"], st
    assert st["annotations"] == {"org.test.hooks": "yes"}, st
    # createRuntime and createContainer keep runc's "creating".
    assert state_in(out, "createRuntime")["status"] == "creating"
    assert state_in(out, "createContainer")["status"] == "creating"


def test_failed_poststart_hook_does_not_stop_the_next(env, out):
    """runtime-tools poststart_fail: the spec says the runtime MUST log a
    warning "but the remaining hooks and lifecycle continue as if the hook
    had succeeded"."""
    sid = helpers.new_id()
    hooks = {"poststart": [hook(out, "poststart-1", script="fail.sh"),
                           hook(out, "poststart-2"),
                           hook(out, "poststart-3", script="fail.sh"),
                           hook(out, "poststart-4")]}
    sb = helpers.Sandbox(env.cli, bundle_with(env, out, hooks), sid)
    env.sandboxes.append(sb)
    sb.create()
    p = env.cli.run("start", sid)
    assert p.returncode == 0, p.stderr
    assert order(out) == ["poststart-1", "poststart-2", "poststart-3", "poststart-4"], order(out)
    # One warning per failed hook, each named by its own index.
    assert f"spec.hooks.poststart[0]: {out}/fail.sh exited with status 3" in p.stderr, p.stderr
    assert f"spec.hooks.poststart[2]: {out}/fail.sh exited with status 3" in p.stderr, p.stderr
    assert p.stderr.count("warning") == 2, p.stderr
    assert state_in(out, "poststart-4")["status"] == "running"
    assert sb.state()["status"] == "running"


def test_failed_poststop_hook_does_not_stop_the_next(env, out):
    """runtime-tools poststop_fail: the same rule for poststop, at delete."""
    sid = helpers.new_id()
    hooks = {"poststop": [hook(out, "poststop-1", script="fail.sh"),
                          hook(out, "poststop-2")]}
    sb = helpers.Sandbox(env.cli, bundle_with(env, out, hooks, args=("true",)), sid)
    env.sandboxes.append(sb)
    sb.create()
    env.cli.run("start", sid, check=True)
    helpers.wait_until(lambda: sb.state()["status"] == "stopped", what="the container to stop")
    p = env.cli.run("delete", sid)
    assert p.returncode == 0, p.stderr
    assert f"spec.hooks.poststop[0]: {out}/fail.sh exited with status 3" in p.stderr, p.stderr
    assert order(out) == ["poststop-1", "poststop-2"], order(out)
    assert state_in(out, "poststop-2")["status"] == "stopped"


@pytest.mark.parametrize("version", ["invalid", "", "1.0", "01.0.0", "1.0.0-01", "2.0.0"])
def test_invalid_oci_version_fails_create(env, version):
    """runtime-tools misc_props: ociVersion "invalid" MUST be an error (crun
    refuses it; runc 1.1 takes it)."""
    sid = helpers.new_id()
    bundle = env.make_bundle(args=["true"], ociVersion=version)
    rc, text = env.cli.detached("create", "--bundle", bundle, sid, check=False)
    if rc == 0:
        env.sandboxes.append(helpers.Sandbox(env.cli, bundle, sid))
    assert rc != 0, f"create took ociVersion {version!r}"
    assert "spec.ociVersion" in text and f'"{version}"' in text, text
    assert not os.path.exists(os.path.join(env.root, sid)), "a refused create left its state"


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.2.0+dev", "1.0.0-rc.1+b.2"])
def test_valid_oci_version_and_unknown_properties_are_taken(env, version):
    """runtime-tools misc_props: unknown properties and annotation keys MUST
    NOT be errors; each SemVer 1.x version is taken."""
    sid = helpers.new_id()
    bundle = env.make_bundle(args=["true"], ociVersion=version, unknown="unknown",
                             annotations={f"org.{sid}": ""})
    sb = helpers.Sandbox(env.cli, bundle, sid)
    env.sandboxes.append(sb)
    sb.create()
    env.cli.run("start", sid, check=True)
    helpers.wait_until(lambda: sb.state()["status"] == "stopped", what="the container to stop")

"""Spec fields cvisor does not implement are refused by name when they ask
for something, never skipped; an empty value asks for nothing."""
import json
import os

import pytest

import helpers


def create(env, linux_extra):
    b = env.make_bundle()
    with open(os.path.join(b, "config.json")) as f:
        cfg = json.load(f)
    cfg["linux"].update(linux_extra)
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    sb = helpers.Sandbox(env.cli, b)
    env.sandboxes.append(sb)
    code, out = env.cli.detached("create", "--bundle", b, sb.id, check=False)
    return sb, code, out


@pytest.mark.parametrize("key,value,words", [
    ("intelRdt", {"closID": "cvt", "l3CacheSchema": "L3:0=f"}, "Intel RDT"),
    ("timeOffsets", {"monotonic": {"secs": 10, "nanosecs": 0}}, "clock offsets"),
    ("netDevices", {"eth9": {"name": "eth9"}}, "network devices"),
], ids=["intelRdt", "timeOffsets", "netDevices"])
def test_refused_by_name(env, key, value, words):
    sb, code, out = create(env, {key: value})
    assert code != 0, out
    assert f"spec.linux.{key}" in out and words in out, out
    assert not os.path.exists(sb.dir), "a refused create left state"


@pytest.mark.parametrize("key,value", [("intelRdt", {}), ("timeOffsets", {}),
                                       ("netDevices", {})],
                         ids=["intelRdt", "timeOffsets", "netDevices"])
def test_empty_value_asks_for_nothing(env, key, value):
    sb, code, out = create(env, {key: value})
    assert code == 0, out

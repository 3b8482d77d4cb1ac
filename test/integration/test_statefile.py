"""`cvisor statefile` on good and damaged state files (docs/STATEFILE.md).

Files come from test/integration/statefile_fmt.py (a Python writer of the
format, independent of state/) and from the C writer through the unit test
binary (build/unit/test_state --write), which statefile_fmt.parse reads
back: the two implementations and the document check each other. No
sandbox is needed, but the suite runs as root like the others."""
import json
import os
import struct
import subprocess

import pytest

import statefile_fmt as sf

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(cvisor, *args):
    return subprocess.run([cvisor, "statefile", *args], capture_output=True, text=True, timeout=60)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def c_writer():
    # CVISOR_BIN is build*/cvisor; the unit binary sits beside it.
    build = os.path.dirname(os.environ["CVISOR_BIN"])
    exe = os.path.join(build, "unit", "test_state")
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{exe} not built (make unit builds it)")
    return exe


def test_list_prints_the_metadata(cvisor, tmp_path):
    f = write(tmp_path, "a.img", sf.sample(sf.default_meta(network="none", memory_bytes=8192)))
    r = run(cvisor, "--list", f)
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    assert meta["version"] == 1 and meta["compression"] == "lz4"
    assert meta["container_count"] == 1 and meta["network"] == "none"
    assert json.loads(meta["container_specs"]["web"]) == {"ociVersion": "1.0.2"}
    r = run(cvisor, "--get", "network", f)
    assert r.returncode == 0 and r.stdout == "none\n"
    r = run(cvisor, "--get", "nope", f)
    assert r.returncode == 1 and '"nope" not found' in r.stderr


def test_verify_counts_a_python_written_file(cvisor, tmp_path):
    f = write(tmp_path, "a.img", sf.sample())
    r = run(cvisor, "--verify", f)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    _, n, nbytes = sf.sample_records()
    assert out["ok"] is True and out["records"] == n and out["data_bytes"] == nbytes
    assert out["file_bytes"] == os.path.getsize(f)
    assert out["kinds"] == {k: 1 for k in ("container", "task", "thread", "mapping", "pages",
                                           "fd", "pipe", "file", "blob")}


def test_c_written_file_reads_in_python_and_verifies(cvisor, tmp_path):
    f = str(tmp_path / "c.img")
    subprocess.run([c_writer(), "--write", f], check=True, timeout=60)
    meta, recs = sf.parse(open(f, "rb").read())
    assert meta["version"] == 1 and meta["compression"] == "lz4" and meta["_timestamp"].endswith("Z")
    assert meta["kernel_release"] == os.uname().release and meta["arch"] == os.uname().machine
    kinds = [r["kind"] for r in recs]
    assert kinds[-1] == "end" and kinds.count("end") == 1
    assert recs[-1]["records"] == len(recs) - 1
    assert recs[-1]["data_bytes"] == sum(len(r["_data"]) for r in recs)
    pages = next(r for r in recs if r["kind"] == "pages")
    assert pages["addr"] == 0x400000 and len(pages["_data"]) == 3 * 4096
    r = run(cvisor, "--verify", f)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["records"] == len(recs) - 1


def refused(cvisor, tmp_path, data, expect):
    f = write(tmp_path, "bad.img", data)
    for mode in ("--verify",):
        r = run(cvisor, mode, f)
        assert r.returncode == 1, f"{mode} accepted a damaged file ({expect})"
        assert expect in r.stderr, r.stderr
        assert r.stdout == ""
    return r.stderr


def test_every_damage_is_refused_with_its_name(cvisor, tmp_path):
    good = sf.sample()
    env = sf.envelope(sf.default_meta())
    stream, n, nbytes = sf.sample_records()
    refused(cvisor, tmp_path, b"", "the file is empty")
    refused(cvisor, tmp_path, b"gVisorSF" + good[8:], "bad magic")
    refused(cvisor, tmp_path, sf.envelope(sf.default_meta(version=7)) + sf.frame(sf.end(0, 0)),
            "unknown version 7")
    refused(cvisor, tmp_path, sf.envelope(sf.default_meta(), crc=False) + sf.frame(sf.end(0, 0)),
            "metadata checksum mismatch")
    refused(cvisor, tmp_path, b"CVISORSF" + struct.pack(">Q", 2 << 20), "metadata length")
    refused(cvisor, tmp_path, sf.envelope([1]) + sf.frame(sf.end(0, 0)), "metadata is not a map")
    refused(cvisor, tmp_path, env + sf.frame(stream), "no end record")
    refused(cvisor, tmp_path, env + sf.frame(stream + sf.end(n, nbytes + 1)), "end record counts")
    refused(cvisor, tmp_path, env + sf.frame(sf.record("epoll", fd=4) + sf.end(1, 0)),
            'unknown kind "epoll"')
    refused(cvisor, tmp_path, good + b"\0", "garbage after the end of the LZ4 frame")
    mid = bytearray(good)
    mid[len(good) // 2] ^= 1
    refused(cvisor, tmp_path, bytes(mid), "checksum mismatch")
    for cut in (5, 12, 30, len(env) - 1, len(env) + 10, len(good) // 2, len(good) - 1):
        refused(cvisor, tmp_path, good[:cut], "truncated")
    # --list reads only the envelope, but refuses a damaged one too.
    f = write(tmp_path, "m.img", b"gVisorSF" + good[8:])
    r = run(cvisor, "--list", f)
    assert r.returncode == 1 and "bad magic" in r.stderr


def test_flipped_byte_anywhere_is_refused(cvisor, tmp_path):
    good = sf.sample()
    # Every region: magic, length, metadata, CRC, frame header, blocks, end mark, checksum.
    for i in sorted(set([0, 9, 40, len(good) - 260, len(good) - 5, len(good) - 1] +
                        list(range(0, len(good), max(1, len(good) // 40))))):
        b = bytearray(good)
        b[i] ^= 0x08
        f = write(tmp_path, "f.img", bytes(b))
        r = run(cvisor, "--verify", f)
        assert r.returncode == 1, f"flip at byte {i} of {len(good)} accepted"


def test_usage_errors(cvisor, tmp_path):
    f = write(tmp_path, "a.img", sf.sample())
    r = run(cvisor, f)
    assert r.returncode == 1 and "--list" in r.stderr
    r = run(cvisor, "--list", "--verify", f)
    assert r.returncode == 1 and "exclude" in r.stderr
    r = run(cvisor, "--verify", str(tmp_path / "missing.img"))
    assert r.returncode == 1 and "No such file" in r.stderr
    r = run(cvisor, "--help")
    assert r.returncode == 0 and "statefile --list" in r.stdout


def test_engine_image_verifies_and_parses(env, cli):
    """A real checkpoint (the engine's static counter, --leave-running) passes
    --verify, and the independent Python reader agrees with it record for
    record: the engine, state/ and docs/STATEFILE.md describe one format."""
    import helpers
    from test_checkpoint import counter_bundle, counters, wait_count

    bundle, log = counter_bundle(env, "sf", ["/counter", "16", "/root/log", "50"])
    sid = helpers.new_id()
    cli.detached("create", "--bundle", bundle, sid)
    cli.run("start", sid, check=True)
    wait_count(log, 2)
    img = os.path.join(env.root, ".img-sf")
    p = cli.run("checkpoint", "--image-path", img, "--leave-running", sid)
    assert p.returncode == 0, p.stderr
    n = len(counters(log))
    wait_count(log, n + 1)  # --leave-running: it goes on
    cli.run("delete", "--force", sid)
    f = os.path.join(img, "checkpoint.img")
    r = run(env.cvisor, "--verify", f)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    meta, recs = sf.parse(open(f, "rb").read())
    body = recs[:-1]
    assert out["records"] == len(body) == recs[-1]["records"]
    assert out["data_bytes"] == sum(len(x["_data"]) for x in recs) == recs[-1]["data_bytes"]
    kinds = {}
    for x in body:
        kinds[x["kind"]] = kinds.get(x["kind"], 0) + 1
    assert out["kinds"] == kinds
    assert kinds.get("task", 0) >= 1 and kinds.get("mapping", 0) >= 1 and kinds.get("pages", 0) >= 1
    assert out["data_bytes"] >= 16 << 20  # the counter's 16 MiB patterned heap is in it
    assert meta["container_count"] == 1 and meta["compression"] == "lz4"

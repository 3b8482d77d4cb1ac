#!/usr/bin/python3
"""Writes the seeds of the state file reader's fuzz target into
test/fuzz/corpus/state/ (run from the top directory; needs python3-msgpack
and python3-lz4): a good file with every record kind and an empty one, and
one file for each refusal the reader must make (names say which), so that
replaying the corpus walks every stage of the reader. Also the seeds of the
round-trip target (corpus/state_rt/): writer scripts, one per record kind
and a few mixed ones (fuzz_state_rt.c says how bytes become calls)."""
import os
import struct
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "test", "integration"))
import statefile_fmt as sf  # noqa: E402

OUT = os.path.join(TOP, "test", "fuzz", "corpus", "state")


def put(name, data, out=OUT):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def rt_seeds():
    out = os.path.join(TOP, "test", "fuzz", "corpus", "state_rt")
    put("empty", b"", out)
    # fuzz_state_rt: kind byte, value byte, then kind-specific bytes, extras, data pieces.
    for k, name in enumerate(("container", "task", "thread", "mapping", "pages", "fd", "pipe",
                              "file", "blob")):
        put(f"one_{name}", bytes([k, 5, 1, 3, 2, 7, 9, 200, 1, 1, 1, 1]) * 2, out)
    put("mixed_counting", bytes(range(256)), out)
    put("mixed_pages_small_pieces", bytes([4, 1, 7, 0] + [0] * 200 + [9, 3, 40] + [0] * 100), out)


def main():
    good = sf.sample()
    put("good_every_kind", good)
    put("good_empty", sf.envelope(sf.default_meta()) + sf.frame(sf.end(0, 0)))
    env = sf.envelope(sf.default_meta())
    stream, n, nbytes = sf.sample_records()
    put("bad_magic", b"gVisorSF" + good[8:])
    put("bad_meta_crc", sf.envelope(sf.default_meta(), crc=False) + sf.frame(sf.end(0, 0)))
    put("bad_version", sf.envelope(sf.default_meta(version=2)) + sf.frame(sf.end(0, 0)))
    put("bad_compression", sf.envelope(sf.default_meta(compression="none")) + sf.frame(sf.end(0, 0)))
    put("bad_meta_not_map", sf.envelope([1, 2]) + sf.frame(sf.end(0, 0)))
    put("bad_meta_huge_map", sf.envelope(b"\xdf\xff\xff\xff\xff") + sf.frame(sf.end(0, 0)))
    put("bad_meta_len", b"CVISORSF" + struct.pack(">Q", 1 << 40))
    put("bad_truncated_middle", good[: len(good) // 2])
    put("bad_truncated_envelope", good[:20])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    put("bad_flipped_frame_byte", bytes(flipped))
    put("bad_missing_end", env + sf.frame(stream))
    put("bad_end_counts", env + sf.frame(stream + sf.end(n + 1, nbytes)))
    put("bad_unknown_kind", env + sf.frame(sf.record("socket", fd=3) + sf.end(1, 0)))
    put("bad_missing_field", env + sf.frame(sf.record("task") + sf.end(1, 0)))
    put("bad_pages_unaligned", env + sf.frame(sf.record("pages", data=b"x" * 4096, addr=1) + sf.end(1, 4096)))
    put("bad_short_data_run", env + sf.frame(sf.record("pages", addr=4096, data=b"x" * 4096)[:-100]))
    put("bad_after_end", env + sf.frame(sf.end(0, 0) + sf.record("task", pid=1)))
    put("bad_record_len", env + sf.frame(b"\x7f\xff\xff\xff"))
    put("bad_record_overrun", env + sf.frame(b"\x00\x00\x00\x05\xdf\x00\x10\x00\x00"))
    put("bad_deep", env + sf.frame(struct.pack(">I", 40) + b"\x91" * 39 + b"\xc0"))
    put("bad_trailing_garbage", good + b"garbage")
    dup = b"\x83\xa4kind\xa4task\xa3pid\x01\xa3pid\x02"
    put("bad_duplicate_key", env + sf.frame(struct.pack(">I", len(dup)) + dup + sf.end(1, 0)))
    put("bad_empty", b"")
    rt_seeds()


if __name__ == "__main__":
    main()

"""The state file format (docs/STATEFILE.md) written and read in Python,
independently of state/: the integration test and the fuzz seed generator
make files with it (good ones and damaged ones), and it reads what cvisor
writes, so the C code and the document are checked against each other.

Needs python3-msgpack and python3-lz4 (scripts/deps.sh)."""
import struct
import zlib

import lz4.frame
import msgpack

MAGIC = b"CVISORSF"
VERSION = 1


def default_meta(**over):
    meta = {
        "version": VERSION,
        "_timestamp": "2026-01-01T00:00:00.000000000Z",
        "compression": "lz4",
        "container_count": 1,
        "container_specs": {"web": '{"ociVersion":"1.0.2"}'},
        "network": "sandbox",
        "kernel_release": "6.1.0",
        "arch": "x86_64",
        "memory_bytes": 0,
    }
    meta.update(over)
    return meta


def envelope(meta, magic=MAGIC, crc=True):
    """magic | u64 BE length | msgpack metadata | u32 BE CRC-32 of the three."""
    m = msgpack.packb(meta) if not isinstance(meta, bytes) else meta
    head = magic + struct.pack(">Q", len(m)) + m
    return head + struct.pack(">I", zlib.crc32(head) if crc else 0)


def record(kind, data=b"", **fields):
    """u32 BE length | msgpack map with kind [and data = len] | the data run."""
    body = {"kind": kind}
    body.update(fields)
    if data:
        body["data"] = len(data)
    b = msgpack.packb(body)
    return struct.pack(">I", len(b)) + b + data


def end(records, data_bytes):
    return record("end", records=records, data_bytes=data_bytes)


def frame(stream):
    return lz4.frame.compress(stream, block_size=lz4.frame.BLOCKSIZE_MAX1MB,
                              content_checksum=True, block_checksum=True, block_linked=True)


def sample_records():
    """(stream bytes without end, number of records, data bytes)."""
    pages = bytes((i * 131) & 0xFF for i in range(2 * 4096))
    recs = [
        record("container", id="web", cgroup="/cvisor/web"),
        record("task", pid=1, pids=[4242, 1], regs=b"\x01\x02\x03\x04"),
        record("thread", tid=1),
        record("mapping", start=0x400000, end=0x402000, prot=3, flags=0x22, offset=0,
               path="[heap]"),
        record("pages", data=pages, addr=0x400000),
        record("fd", fd=3, path="/root/log"),
        record("pipe", data=b"hello\n", id=7),
        record("file", data=b"x" * 3000, path="/tmp/a"),
        record("blob", data=b"\x00" * 10, name="xstate"),
    ]
    return b"".join(recs), len(recs), len(pages) + 6 + 3000 + 10


def sample(meta=None):
    stream, n, nbytes = sample_records()
    return envelope(meta or default_meta()) + frame(stream + end(n, nbytes))


def parse(blob):
    """Reads a whole state file: (meta dict, [record dicts with '_data' bytes]).
    Raises ValueError on anything the format forbids (a cross-check of cvisor's
    writer, not a second reader to trust)."""
    if blob[:8] != MAGIC:
        raise ValueError("bad magic")
    (n,) = struct.unpack(">Q", blob[8:16])
    meta_b = blob[16:16 + n]
    (crc,) = struct.unpack(">I", blob[16 + n:20 + n])
    if crc != zlib.crc32(blob[:16 + n]):
        raise ValueError("metadata checksum")
    meta = msgpack.unpackb(meta_b, raw=False)
    d = lz4.frame.LZ4FrameDecompressor()
    stream = d.decompress(blob[20 + n:])
    if not d.eof or d.unused_data:
        raise ValueError("frame not exactly the rest of the file")
    recs, pos = [], 0
    while pos < len(stream):
        (ln,) = struct.unpack(">I", stream[pos:pos + 4])
        r = msgpack.unpackb(stream[pos + 4:pos + 4 + ln], raw=False)
        pos += 4 + ln
        dl = r.get("data", 0)
        r["_data"] = stream[pos:pos + dl]
        pos += dl
        recs.append(r)
    if not recs or recs[-1]["kind"] != "end":
        raise ValueError("no end record")
    return meta, recs

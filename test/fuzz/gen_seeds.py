#!/usr/bin/python3
"""Writes the hand-made seeds of the decoder fuzz targets into
test/fuzz/corpus/<target>/ (run from the top directory; needs python3-msgpack).

Seeds: the busybox bundle's config.json (`make bundle`) and `cvisor spec`'s
default, both as JSON text (spec_json, json_mp) and as their msgpack form
(spec); a few process.json documents and resource documents; for each
method, the valid arguments of test/integration/helpers.py exec_args and
docs/API.md, and invalid ones (wrong types, out-of-range numbers, NUL in a
string, missing required keys). Names say what each seed is, so a replay
failure points at its input. Fuzzer-found inputs are merged in afterwards
(`-merge=1`, see fuzz.mk)."""
import json
import os
import subprocess
import sys
import tempfile

import msgpack

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(TOP, "test", "fuzz", "corpus")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Index = the first input byte of fuzz_methods (its `served` order).
EXEC, SIGNAL, WAITPID, WAIT, PROCESSES, STATE = range(6)


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def exec_args(cid, argv, env=(), cwd="/", uid=0, gid=0, guest_fds=(), files=None, **extra):
    # As test/integration/helpers.py.
    arg = {
        "filename": "",
        "argv": list(argv),
        "envv": [PATH_ENV, *env],
        "wd": cwd,
        "KUID": uid,
        "KGID": gid,
        "ExtraKGIDs": [],
        "Capabilities": None,
        "StdioIsPty": False,
        "GuestFDs": list(guest_fds),
        "ContainerID": cid,
        "Files": len(guest_fds) if files is None else files,
    }
    arg.update(extra)
    return arg


def method(name, index, arg, raw=False):
    body = arg if raw else msgpack.packb(arg, use_bin_type=True)
    put("methods", name, bytes([index]) + body)


def methods():
    method("exec_valid", EXEC, exec_args("c1", ["sh", "-c", "echo hi"]))
    method("exec_api_md", EXEC, {"ContainerID": "web", "argv": ["sh", "-c", "echo hi"],
                                 "envv": ["PATH=/bin"], "GuestFDs": [0, 1, 2]})
    method("exec_caps", EXEC, exec_args("c1", ["id"], uid=1000, gid=1000, ExtraKGIDs=[1, 2, 3],
                                        NoNewPrivileges=True, Capabilities={
                                            "PermittedCaps": 0xffffffffff, "InheritableCaps": 0,
                                            "EffectiveCaps": 1 << 21, "BoundingCaps": 2**64 - 1,
                                            "AmbientCaps": 0}))
    method("exec_filename_only", EXEC, {"ContainerID": "c1", "filename": "/bin/true"})
    method("exec_lowercase_keys", EXEC, {"containerid": "c1", "ARGV": ["ls"], "kuid": 5})
    method("exec_no_cid", EXEC, {"argv": ["ls"]})
    method("exec_cid_nil", EXEC, {"ContainerID": None, "argv": ["ls"]})
    method("exec_cid_int", EXEC, {"ContainerID": 7})
    method("exec_nul_in_argv", EXEC, exec_args("c1", ["a\0b"]))
    method("exec_argv_not_strings", EXEC, exec_args("c1", ["ls", 1, None]))
    method("exec_uid_negative", EXEC, exec_args("c1", ["ls"], uid=-1))
    method("exec_uid_too_big", EXEC, exec_args("c1", ["ls"], uid=2**32))
    method("exec_guest_fds_range", EXEC, exec_args("c1", ["ls"], GuestFDs=[-1, 2**31, 1024]))
    method("exec_caps_not_map", EXEC, exec_args("c1", ["ls"], Capabilities=[1, 2]))
    method("exec_bin_string", EXEC, {"ContainerID": b"c1", "argv": [b"ls"]})
    method("exec_float", EXEC, exec_args("c1", ["ls"], KUID=1.5))
    method("exec_not_map", EXEC, ["c1", ["ls"]])
    method("exec_dup_keys", EXEC,
           b"\x83\xabContainerID\xa2c1\xabContainerID\xa2c2\xa4argv\x91\xa2ls", raw=True)
    method("signal_api_md", SIGNAL, {"CID": "web", "Signo": 9, "PID": 0, "Mode": 1})
    method("signal_process", SIGNAL, {"CID": "c1", "Signo": 15, "PID": 3, "Mode": 0})
    method("signal_group", SIGNAL, {"CID": "c1", "Signo": 2, "PID": 3, "Mode": 3})
    method("signal_bad_mode", SIGNAL, {"CID": "c1", "Signo": 2, "Mode": 9})
    method("signal_bad_signo", SIGNAL, {"CID": "c1", "Signo": 65})
    method("signal_negative_pid", SIGNAL, {"CID": "c1", "Signo": 9, "PID": -1})
    method("signal_signo_i64", SIGNAL, {"CID": "c1", "Signo": -2**63})
    method("signal_missing", SIGNAL, {"Signo": 9})
    method("waitpid_api_md", WAITPID, {"PID": 2, "CID": "web"})
    method("waitpid_zero", WAITPID, {"PID": 0, "CID": "web"})
    method("waitpid_pid_str", WAITPID, {"PID": "2", "CID": "web"})
    method("waitpid_nil", WAITPID, None)
    method("wait_api_md", WAIT, "web")
    method("wait_int", WAIT, 5)
    method("wait_nul", WAIT, "we\0b")
    method("wait_map", WAIT, {"CID": "web"})
    method("processes_api_md", PROCESSES, "web")
    method("processes_all", PROCESSES, "")
    method("processes_array", PROCESSES, ["web"])
    method("state_api_md", STATE, "web")
    method("state_nil", STATE, None)
    method("state_ext", STATE, msgpack.ExtType(1, b"xx"))


def process_docs():
    return {
        "process_min": {"args": ["sh"], "cwd": "/"},
        "process_full": {
            "terminal": False, "user": {"uid": 1000, "gid": 1000, "umask": 18,
                                        "additionalGids": [5, 6], "username": "u"},
            "args": ["sh", "-c", "id"], "env": [PATH_ENV, "A=1"], "cwd": "/tmp",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "inheritable": [], "permitted": ["CAP_KILL"], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True, "oomScoreAdj": -500, "apparmorProfile": "x"},
        "process_relative_cwd": {"args": ["sh"], "cwd": "tmp"},
        "process_bad_rlimit": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_BOGUS"}]},
        "process_empty_args": {"args": [], "cwd": "/"},
    }


def resources_docs():
    return {
        "resources": {"memory": {"limit": 67108864, "reservation": -1, "swap": 0},
                      "cpu": {"shares": 512, "quota": 50000, "period": 100000,
                              "cpus": "0-1", "mems": "0"},
                      "pids": {"limit": 64}},
        "resources_bad_type": {"memory": {"limit": "64M"}},
    }


def specs():
    docs = {}
    busybox = os.path.join(TOP, "test", "fixtures", "busybox", "config.json")
    if os.path.exists(busybox):
        with open(busybox, "rb") as f:
            docs["busybox_config"] = f.read()
    else:
        print("gen_seeds: no busybox bundle (run `make bundle`); its seed is left out",
              file=sys.stderr)
    cvisor = os.path.join(TOP, "build", "cvisor")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([cvisor, "spec", "--bundle", d], check=True)
        with open(os.path.join(d, "config.json"), "rb") as f:
            docs["cvisor_spec"] = f.read()
    base = json.loads(docs["cvisor_spec"])
    variants = {
        "spec_seccomp": {"linux": {**base["linux"], "seccomp": {
            "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir", "chmod"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 13, "args": [{"index": 1, "value": 2, "valueTwo": 0,
                                                    "op": "SCMP_CMP_EQ"}]}]}}},
        "spec_userns": {"linux": {**base["linux"],
                                  "namespaces": base["linux"]["namespaces"] + [{"type": "user"}],
                                  "uidMappings": [{"containerID": 0, "hostID": 100000,
                                                   "size": 65536}],
                                  "gidMappings": [{"containerID": 0, "hostID": 100000,
                                                   "size": 65536}],
                                  "sysctl": {"net.ipv4.ip_forward": "1"},
                                  "cgroupsPath": "/cv/x", "rootfsPropagation": "private"}},
        "spec_annotations": {"annotations": {"dev.cvisor.fuzz": "1", "a": "b"},
                             "hostname": "h", "domainname": "d"},
        "spec_dup_namespace": {"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}},
        "spec_bad_namespace": {"linux": {"namespaces": [{"type": "nope"}]}},
        "spec_relative_mount": {"mounts": [{"destination": "proc", "type": "proc"}]},
        "spec_no_root": {"root": None},
        "spec_sysctl_int": {"linux": {"sysctl": {"kernel.shmmax": 1}}},
    }
    for name, change in variants.items():
        docs[name] = json.dumps({**base, **change}, indent=1).encode()
    for name, p in process_docs().items():
        docs[name] = json.dumps(p).encode()  # process.json: spec_json refuses it, as boot would
        docs[name + "_in_spec"] = json.dumps({**base, "process": p}).encode()
    for name, r in resources_docs().items():
        docs[name] = json.dumps(r).encode()
    return docs


def main():
    methods()
    for name, text in specs().items():
        put("spec_json", name + ".json", text)
        put("json_mp", name + ".json", text)
        put("spec", name + ".mp", msgpack.packb(json.loads(text), use_bin_type=True))
    # Raw msgpack only the wire can carry (JSON cannot say these).
    put("spec", "bin_strings.mp", msgpack.packb(
        {"process": {"args": [b"sh"], "cwd": b"/"}, "root": {"path": b"rootfs"}},
        use_bin_type=True))
    put("spec", "nul_in_cwd.mp", msgpack.packb(
        {"process": {"args": ["sh"], "cwd": "/\0x"}, "root": {"path": "rootfs"}}))
    put("spec", "int_keys.mp", b"\x82\x01\x02\xa7process\x81\x03\x04")
    put("spec", "huge_array_header.mp", b"\x81\xa5mounts\xdd\xff\xff\xff\xff")
    # JSON edge cases for the converter.
    edges = {
        "null": "null", "true": "true", "int_max": "9223372036854775807",
        "uint64_max": "18446744073709551615", "int_min": "-9223372036854775808",
        "too_big": "18446744073709551616", "double": "[1.5e300, -0.0, 1e-320]",
        "unicode": '{"k\\u00e9y": "\\ud83d\\ude00", "nul": "a\\u0000b"}',
        "dup_keys": '{"a": 1, "a": 2, "b": [], "c": {}}',
        "trailing_comma": "[1, 2,]", "trailing_garbage": "{} x", "truncated": '{"a": [1, ',
        "deep": "[" * 40 + "]" * 40, "empty": "",
    }
    for name, text in edges.items():
        put("json_mp", "edge_" + name + ".json", text)
        put("spec_json", "edge_" + name + ".json", text)


if __name__ == "__main__":
    main()

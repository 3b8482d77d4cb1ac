"""The host's cvisor binary is never reachable for writing from a container
(the CVE-2019-5736 pattern): processes that cvisor places in a container's
namespaces are non-dumpable until their execve, and boot runs from a
read-only, detached mount of its binary."""
import errno
import os

import pytest

import helpers

POLLER = r"""
me=$$
: > /tmp/seen
end=$(( $(date +%s) + 60 ))
while [ ! -e /tmp/stop ] && [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$me" ] && continue
    s=$(stat -L -c '%d %i' $d/exe 2>/dev/null) && echo "$p $s" >> /tmp/seen
  done
done
echo done > /tmp/finished
sleep 1000
"""


def _dev_ino(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_container_never_gets_the_host_binary_during_execs(env, cvisor):
    """A process of the container polls /proc while 100 execs run: no
    /proc/<pid>/exe it can open is the host's cvisor binary."""
    bundle = env.make_bundle(args=["sh", "-c", POLLER])
    sb = env.new_sandbox(bundle, start=True)
    host = _dev_ino(cvisor)
    for _ in range(100):
        status, _ = sb.run_exec(["true"])
        assert status == 0
    status, _ = sb.run_exec(["touch", "/tmp/stop"])
    assert status == 0
    helpers.wait_until(lambda: sb.run_exec(["cat", "/tmp/finished"])[0] == 0,
                       what="the poller to finish")
    _, seen = sb.run_exec(["cat", "/tmp/seen"])
    hits = []
    for line in seen.decode().splitlines():
        pid, dev, ino = line.split()
        # busybox stat prints the device in decimal.
        if (int(dev), int(ino)) == host:
            hits.append(line)
    assert not hits, f"the container reached the host's binary: {hits}"


def test_boot_and_created_init_run_a_read_only_binary(env, cvisor):
    """boot, and an init that has not exec'd yet, run the host's binary from
    a read-only mount: a handle on their exe can never be opened for
    writing, even by host root, even once they are gone."""
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]))
    handles = []
    for pid in (sb.boot_pid, sb.init_host_pid()):
        exe = f"/proc/{pid}/exe"
        assert _dev_ino(exe) == _dev_ino(cvisor)
        assert os.statvfs(exe).f_flag & os.ST_RDONLY, f"{exe} is on a writable mount"
        handles.append(os.open(exe, os.O_PATH))
    sb.delete(force=True)
    try:
        for fd in handles:
            with pytest.raises(OSError) as e:
                os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
            # EROFS; ETXTBSY while another sandbox still runs the binary.
            assert e.value.errno in (errno.EROFS, errno.ETXTBSY), e.value
    finally:
        for fd in handles:
            os.close(fd)

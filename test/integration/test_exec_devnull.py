"""An exec given no fds for 0-2 gets the container's /dev/null, a file the
container controls and that the exec opens while it still holds every
capability: a symlink or a FIFO in its place is refused with a clear error,
and the sandbox keeps answering."""
import pytest

import helpers


@pytest.mark.parametrize("swap, expect", [
    ("ln -s /dev/zero /dev/null", "opening /dev/null in the container"),
    ("mkfifo /dev/null", "the container's /dev/null is not the null device"),
])
def test_swapped_dev_null_is_refused(running_sandbox, swap, expect):
    sb = running_sandbox
    status, out = sb.run_exec(["sh", "-c", f"rm /dev/null && {swap}"])
    assert status == 0, out
    with sb.raw() as conn:
        err, _ = conn.recv_reply(conn.request(helpers.M_EXEC, helpers.exec_args(sb.id, ["true"])))
    assert err and expect in err, err
    assert sb.call(helpers.M_STATE, sb.id) == 2

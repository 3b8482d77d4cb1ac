"""Terminals of the root container (process.terminal), as runc makes them.

The init opens the pty in the container's own devpts after pivot_root, so
inside `tty` names /dev/pts/0 and /dev/console is that replica; the master
reaches the engine over --console-socket (one recvmsg: SCM_RIGHTS plus the
name "/dev/ptmx" as data, as runc sends), or, for an attached `cvisor run`,
over a socketpair that run proxies to its own stdio.
"""
import array
import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios

import helpers

READ_TIMEOUT = helpers.TIMEOUT


def terminal_bundle(make_bundle, args, **process):
    return make_bundle(args=args, process={"terminal": True, **process})


def listen_console(root):
    path = os.path.join(root, f".console-{helpers.new_id()}.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.settimeout(READ_TIMEOUT)
    return s, path


def recv_master(listener):
    """What conmon and the containerd shim do: accept, one recvmsg."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(READ_TIMEOUT)
        fds = array.array("i")
        data, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, body in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(body[:len(body) - len(body) % fds.itemsize])
    assert len(fds) == 1, f"expected one fd on the console socket, got {list(fds)}"
    return data, fds[0]


def read_until(fd, done, what):
    """Reads fd until done(output) or EOF/EIO (the pty's replicas all closed)."""
    out = b""
    while not done(out):
        r, _, _ = select.select([fd], [], [], READ_TIMEOUT)
        assert r, f"no output for {READ_TIMEOUT}s waiting for {what}; so far {out!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every replica is closed
            break
        if not chunk:
            break
        out += chunk
    return out


def read_all(fd, what):
    return read_until(fd, lambda _: False, what)


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_console_socket_gets_a_pty_of_the_containers_devpts(cli, root_dir, make_bundle):
    script = ("tty; stty size; [ /dev/console -ef /dev/pts/0 ] && echo console-is-pts0; "
              "stat -c '%t:%T:%F' /dev/console; exit 0")
    bundle = terminal_bundle(make_bundle, ["sh", "-c", script],
                             consoleSize={"height": 33, "width": 77})
    listener, path = listen_console(root_dir)
    sid = helpers.new_id()
    with listener:
        cli.detached("create", "--bundle", bundle, "--console-socket", path, sid)
        name, master = recv_master(listener)
    try:
        assert os.isatty(master)
        cli.run("start", sid, check=True)
        lines = read_all(master, "the container's output").decode().split("\r\n")
    finally:
        os.close(master)
    # Inside, the pty is the container's (the host's would print "not a tty").
    assert lines[0] == "/dev/pts/0", lines
    assert lines[1] == "33 77", f"spec.process.consoleSize not applied: {lines}"
    assert lines[2] == "console-is-pts0", f"/dev/console is not the replica: {lines}"
    # A character device of major 136 (0x88): a devpts pty, not the host's console.
    assert lines[3] == "88:0:character special file", lines
    # runc sends its master's file name as the message's data.
    assert name == b"/dev/ptmx", name
    cli.run("delete", "--force", sid)


def test_console_socket_interactive_shell(cli, root_dir, make_bundle):
    bundle = terminal_bundle(make_bundle, ["sh"])
    listener, path = listen_console(root_dir)
    sid = helpers.new_id()
    with listener:
        cli.detached("create", "--bundle", bundle, "--console-socket", path, sid)
        _, master = recv_master(listener)
    try:
        cli.run("start", sid, check=True)
        os.write(master, b"tty; echo sum=$((6*7)); exit 3\n")
        out = read_all(master, "the shell's answers").decode()
    finally:
        os.close(master)
    assert "\r\n/dev/pts/0\r\n" in out, out
    assert "sum=42" in out, out
    # The shell's exit ends the sandbox; wait reads the status boot left
    # (asked while boot is closing, wait can meet a closed socket).
    with open(os.path.join(root_dir, sid, "state.json")) as f:
        boot = json.load(f)["bootPid"]
    helpers.wait_until(lambda: not helpers.pid_alive(boot), what=f"boot {boot} to end")
    p = cli.run("wait", sid, check=True)
    cli.run("delete", "--force", sid)
    assert json.loads(p.stdout)["exitStatus"] == 3, p


def test_console_size_out_of_range_is_refused(cli, root_dir, make_bundle):
    bundle = terminal_bundle(make_bundle, ["true"], consoleSize={"height": 70000, "width": 80})
    listener, path = listen_console(root_dir)
    sid = helpers.new_id()
    with listener:
        rc, out = cli.detached("create", "--bundle", bundle, "--console-socket", path, sid,
                               check=False)
    assert rc != 0 and "consoleSize" in out, (rc, out)
    assert cli.run("state", sid).returncode != 0, "a refused create left the container behind"


def test_create_terminal_without_console_socket_fails(cli, make_bundle):
    bundle = terminal_bundle(make_bundle, ["tty"])
    sid = helpers.new_id()
    rc, out = cli.detached("create", "--bundle", bundle, sid, check=False)
    assert rc != 0 and "--console-socket" in out, (rc, out)
    assert cli.run("state", sid).returncode != 0, "a refused create left the container behind"
    # Detached run has no one to hand the pty to either.
    rc, out = cli.detached("run", "-d", "--bundle", bundle, sid, check=False)
    assert rc != 0 and "--console-socket" in out, (rc, out)


def test_run_without_a_tty_still_gives_the_container_one(cli, make_bundle):
    bundle = terminal_bundle(make_bundle, ["sh", "-c", "tty; exit 4"])
    p = cli.run("run", "--bundle", bundle, helpers.new_id())
    assert p.returncode == 4, p
    assert p.stdout.splitlines()[0] == "/dev/pts/0", p


def test_run_under_a_pty_proxies_the_terminal(cli, make_bundle):
    script = "tty; stty size; read x; echo got-$x; stty size; exit 7"
    bundle = terminal_bundle(make_bundle, ["sh", "-c", script])
    master, replica = os.openpty()
    set_winsize(master, 20, 50)
    before = termios.tcgetattr(master)
    try:
        p = subprocess.Popen(cli.argv("run", "--bundle", bundle, helpers.new_id()),
                             stdin=replica, stdout=replica, stderr=replica,
                             start_new_session=True)
        os.close(replica)
        replica = -1
        try:
            out = read_until(master, lambda o: b"20 50\r\n" in o, "the first size")
            # The caller's terminal is raw while run proxies: our \r reaches
            # the container's line discipline unchanged.
            assert termios.tcgetattr(master)[3] & termios.ICANON == 0, \
                "run did not put its terminal in raw mode"
            set_winsize(master, 30, 90)
            os.kill(p.pid, signal.SIGWINCH)  # what the terminal emulator's kernel does
            os.write(master, b"hello\r")
            out += read_all(master, "the rest of the output")
            rc = p.wait(timeout=helpers.CLI_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        after = termios.tcgetattr(master)
    finally:
        os.close(master)
        if replica >= 0:
            os.close(replica)
    lines = out.decode().split("\r\n")
    assert rc == 7, (rc, lines)
    assert lines[0] == "/dev/pts/0", lines
    assert lines[1] == "20 50", f"the caller's size did not reach the container: {lines}"
    assert "got-hello" in lines, lines
    assert lines[-2] == "30 90", f"SIGWINCH did not resize the container's pty: {lines}"
    assert after == before, "run did not restore its terminal's settings"


def test_exec_t_gives_the_process_a_terminal(env):
    """`exec -t` from a terminal: the process's stdio is a terminal and its
    exit code comes back (the pty is still the host's for exec; see README)."""
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    argv = env.cli.argv("exec", "-t", sb.id, "sh", "-c",
                        "[ -t 0 ] && [ -t 1 ] && echo IS-A-TTY; exit 5")
    # Not a Popen child: keep the test's reaper off it until it is waited for.
    with helpers.reaper_paused():
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        out = b""
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        _, st = os.waitpid(pid, 0)
        os.close(fd)
    assert b"IS-A-TTY" in out, out
    assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 5

"""containerManager.PortForward and `cvisor port-forward` (docs/API.md).

The container runs busybox httpd on port 8080 serving a small page and a
32 MiB random file from its /tmp (a tmpfs). A client hands one end of a
socketpair to PortForward and speaks HTTP over the other; the sandbox
relays it to 127.0.0.1:8080 inside the container's network namespace.
"""
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import threading
import time

import pytest

import helpers

M_PF = "containerManager.PortForward"
PAGE = "hello-from-cvisor"
BIG_MIB = 32
SERVE = ("mkdir -p /tmp/www && echo %s > /tmp/www/index.html && "
         "dd if=/dev/urandom of=/tmp/www/big bs=1M count=%d 2>/dev/null && "
         "touch /tmp/www/ready && exec httpd -f -p 8080 -h /tmp/www" % (PAGE, BIG_MIB))


def new_id():
    return "pf-" + secrets.token_hex(4)


def wait_serving(sb):
    """Until SERVE's httpd listens in sb (a connection forwarded before
    that is refused inside, and the relay resets it)."""
    helpers.wait_until(lambda: sb.run_exec(["test", "-e", "/tmp/www/ready"])[0] == 0,
                       what="the web root")
    # httpd listens right after the file exists; wait until it answers.
    helpers.wait_until(lambda: sb.run_exec(["sh", "-c", "netstat -ltn | grep -q :8080"])[0] == 0,
                       what="httpd listening")


@pytest.fixture(scope="module")
def web(module_env):
    """A running sandbox serving /tmp/www on port 8080, and the sha256 of /big."""
    env = module_env
    sb = helpers.Sandbox(env.cli, env.make_bundle(args=["sh", "-c", SERVE]), sid=new_id())
    env.sandboxes.append(sb)
    sb.create()
    sb.start()
    wait_serving(sb)
    status, out = sb.run_exec(["sha256sum", "/tmp/www/big"])
    assert status == 0, out
    return sb, out.decode().split()[0]


def forward(sb, port=8080, conn=None):
    """A socket whose peer the sandbox relays to port in the container."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if conn:
            conn.call(M_PF, {"ContainerID": sb.id, "Port": port, "Files": 1}, fds=[theirs.fileno()])
        else:
            sb.call(M_PF, {"ContainerID": sb.id, "Port": port, "Files": 1}, fds=[theirs.fileno()])
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    mine.settimeout(60)
    return mine


def http_get(s, path):
    """GET path over s (HTTP/1.0: the server closes after the answer):
    (status line, body bytes)."""
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    chunks = []
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        chunks.append(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


def test_fetch_a_page_through_a_forwarded_socketpair(web):
    sb, _ = web
    before = helpers.settled_fd_count(sb.boot_pid)
    with forward(sb) as s:
        status, body = http_get(s, "/index.html")
    assert "200" in status, status
    assert body.decode().strip() == PAGE
    assert helpers.settled_fd_count(sb.boot_pid) == before


def test_four_concurrent_32mib_downloads_arrive_whole(web):
    sb, want = web
    before = helpers.settled_fd_count(sb.boot_pid)
    socks = [forward(sb) for _ in range(4)]
    results = [None] * 4

    def fetch(i):
        try:
            results[i] = http_get(socks[i], "/big")
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for s in socks:
        s.close()
    for r in results:
        assert isinstance(r, tuple), r
        status, body = r
        assert "200" in status, status
        assert len(body) == BIG_MIB << 20
        assert hashlib.sha256(body).hexdigest() == want
    assert sb.call(helpers.M_STATE, sb.id) == 2
    assert helpers.settled_fd_count(sb.boot_pid) == before


def test_client_half_close_reaches_the_container(web):
    """The client shuts its side for writing after the request: the
    container's side sees EOF, and the answer still comes back."""
    sb, _ = web
    with forward(sb) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    assert PAGE.encode() in data


def test_closed_port_is_an_error_naming_it_and_the_sandbox_carries_on(web):
    sb, _ = web
    before = helpers.settled_fd_count(sb.boot_pid)
    with sb.raw() as conn:
        with pytest.raises(RuntimeError, match=r"port forward to port 8081 of container \"%s\": "
                           r"Connection refused" % sb.id):
            forward(sb, 8081, conn=conn)
        # The same connection still works.
        assert conn.call(helpers.M_STATE, sb.id) == 2
    with forward(sb) as s:
        assert http_get(s, "/index.html")[1].decode().strip() == PAGE
    assert helpers.settled_fd_count(sb.boot_pid) == before


@pytest.mark.parametrize("arg,fds,msg", [
    ({"Port": 8080, "Files": 0}, 0, r"stream FD is required for port forward"),
    ({"Port": 0, "Files": 1}, 1, r"PortForwardOpts\.Port: 0 is not a TCP port \(1-65535\)"),
    ({"Port": 70000, "Files": 1}, 1, r"PortForwardOpts\.Port: 70000 is not a TCP port"),
    ({"Port": "80", "Files": 1}, 1, r"PortForwardOpts\.Port: expected"),
    ({"ContainerID": "nope", "Port": 8080, "Files": 1}, 1, r"container \"nope\" not found"),
    ({"Port": 8080, "Files": 1}, "pipe", r"PortForwardOpts\.Files\[0\]: not a stream socket"),
    ({"Port": 8080, "Files": 1}, "dgram", r"PortForwardOpts\.Files\[0\]: not a stream socket"),
])
def test_bad_arguments(web, arg, fds, msg):
    sb, _ = web
    before = helpers.settled_fd_count(sb.boot_pid)
    a = {"ContainerID": sb.id}
    a.update(arg)
    close = []
    if fds == "pipe":
        r, w = os.pipe()
        close, send = [r, w], [r]
    elif fds == "dgram":
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        close, send = [x.detach(), y.detach()], None
        send = [close[0]]
    elif fds:
        x, y = socket.socketpair()
        close, send = [x.detach(), y.detach()], None
        send = [close[0]]
    else:
        send = []
    try:
        with pytest.raises(RuntimeError, match=msg):
            sb.call(M_PF, a, fds=send)
    finally:
        for fd in close:
            os.close(fd)
    assert helpers.settled_fd_count(sb.boot_pid) == before


def test_created_container_is_not_started(env):
    sb = env.new_sandbox()
    x, y = socket.socketpair()
    try:
        with pytest.raises(RuntimeError, match=r"container \"%s\" not started" % sb.id):
            sb.call(M_PF, {"ContainerID": sb.id, "Port": 8080, "Files": 1}, fds=[x.fileno()])
    finally:
        x.close()
        y.close()


def test_streams_are_capped_and_all_freed(web):
    sb, _ = web
    before = helpers.settled_fd_count(sb.boot_pid)
    socks = []
    try:
        with sb.raw() as conn:
            for _ in range(128):
                socks.append(forward(sb, conn=conn))
            with pytest.raises(RuntimeError, match=r"too many port-forward streams \(limit 128\)"):
                forward(sb, conn=conn)
    finally:
        for s in socks:
            s.close()
    # Each httpd child sees EOF and exits; every relay ends.
    helpers.wait_until(lambda: helpers.fd_count(sb.boot_pid) <= before, timeout=30,
                       what="the relays to end")
    assert helpers.settled_fd_count(sb.boot_pid) == before
    with forward(sb) as s:
        assert http_get(s, "/index.html")[1].decode().strip() == PAGE


# --------------------------------------------------------------------------
# the CLI


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch_local(port):
    deadline = time.monotonic() + helpers.TIMEOUT
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with s:
        return http_get(s, "/index.html")


def test_cli_port_forward_serves_the_page_until_sigint(web):
    sb, _ = web
    port = free_port()
    p = subprocess.Popen(sb.cli.argv("port-forward", sb.id, f"{port}:8080"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # one PortForward per accepted connection
            status, body = fetch_local(port)
            assert "200" in status and body.decode().strip() == PAGE
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        assert p.returncode == 0, err
        assert f"forwarding 127.0.0.1:{port} to port 8080 of {sb.id}" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_cli_port_forward_ends_when_the_container_stops(env):
    sb = helpers.Sandbox(env.cli, env.make_bundle(args=["sh", "-c", SERVE.replace(
        "count=%d" % BIG_MIB, "count=1")]), sid=new_id())
    env.sandboxes.append(sb)
    sb.create()
    sb.start()
    wait_serving(sb)
    port = free_port()
    p = subprocess.Popen(sb.cli.argv("port-forward", sb.id, f"{port}:8080"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        status, body = fetch_local(port)
        assert body.decode().strip() == PAGE
        env.cli.run("kill", sb.id, "KILL", check=True)
        p.communicate(timeout=15)
        assert p.returncode == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_cli_stream_hands_a_unix_connection_over(web, tmp_path):
    sb, _ = web
    path = str(tmp_path / "s.sock")
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(1)
    with lst:
        p = sb.cli.run("port-forward", "--stream", path, sb.id, "8080")
        assert p.returncode == 0, p.stderr
        c, _ = lst.accept()
        with c:
            status, body = http_get(c, "/index.html")
    assert body.decode().strip() == PAGE


def test_cli_refuses_bad_operands(web):
    sb, _ = web
    for args, msg in [((sb.id, "80"), "is not LOCAL:REMOTE"),
                      ((sb.id, "0:80"), "is not LOCAL:REMOTE"),
                      ((sb.id,), "needs an ID and LOCAL:REMOTE"),
                      (("--stream", "/nonexistent/x", sb.id, "80"), "connecting to /nonexistent/x"),
                      (("nope-" + secrets.token_hex(2), "1:2"), "does not exist")]:
        p = sb.cli.run("port-forward", *args)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)


def test_debug_stacks_lists_the_streams(web):
    sb, _ = web
    with forward(sb) as s:
        s.sendall(b"GET")  # a request httpd waits to complete: the stream stays open
        text = sb.call("debug.Stacks")
        assert "port forwards: 1 of 128" in text, text
        assert f"to {sb.id} port 8080: relaying" in text, text
        assert "client -> container: 3 bytes" in text, text
    helpers.wait_until(lambda: "port forwards:" not in sb.call("debug.Stacks"),
                       what="the stream to end")


# A listener inside the container's namespace whose accept queue is full and
# never drained: the kernel drops further SYNs, so a connect to it hangs.
STUCK_LISTENER = """
import socket, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 9100)); l.listen(0)
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try:
        c.connect(("127.0.0.1", 9100))
    except BlockingIOError:
        pass
    fill.append(c)
print("ready", flush=True)
time.sleep(60)
"""


def test_connect_that_hangs_is_cancelled_or_times_out(web):
    sb, _ = web
    if subprocess.run(["which", "nsenter"], capture_output=True).returncode != 0:
        pytest.skip("nsenter (util-linux) is not installed: cannot make a stuck listener")
    before = helpers.settled_fd_count(sb.boot_pid)
    stuck = subprocess.Popen(["nsenter", f"--net=/proc/{sb.init_host_pid()}/ns/net",
                              "/usr/bin/python3", "-c", STUCK_LISTENER],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stuck.stdout.readline().strip() == "ready", stuck.stderr.read()
        # The client goes away while the connect hangs: the forward is freed.
        mine, theirs = socket.socketpair()
        with mine, sb.raw() as conn:
            conn.request(M_PF, {"ContainerID": sb.id, "Port": 9100, "Files": 1},
                         fds=[theirs.fileno()])
            theirs.close()
            helpers.wait_until(lambda: "connecting" in sb.call("debug.Stacks"),
                               what="the forward to be connecting")
        helpers.wait_until(lambda: "port forwards:" not in sb.call("debug.Stacks"),
                           what="the cancelled forward to be freed")
        assert helpers.settled_fd_count(sb.boot_pid) == before
        # Waited out: an error after 10 s, and the sandbox carries on meanwhile.
        t0 = time.monotonic()
        with helpers.RawConn(sb.sock, timeout=30) as conn:
            with pytest.raises(RuntimeError, match=r"port forward to port 9100 of container "
                               r"\"%s\": no connection within 10 s" % sb.id):
                forward(sb, 9100, conn=conn)
        assert 9 <= time.monotonic() - t0 < 20
        assert helpers.settled_fd_count(sb.boot_pid) == before
    finally:
        stuck.kill()
        stuck.wait()


def test_exited_subcontainer_is_not_running(env):
    import test_pods
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    cid = test_pods.pod_id()
    out, _ = test_pods.start_sub(sb, env, cid, ["true"])
    out.close()
    helpers.wait_until(lambda: sb.call(helpers.M_STATE, cid) == 3, what="the sub to exit")
    x, y = socket.socketpair()
    try:
        with pytest.raises(RuntimeError, match=r"container \"%s\" is not running" % cid):
            sb.call(M_PF, {"ContainerID": cid, "Port": 8080, "Files": 1}, fds=[x.fileno()])
    finally:
        x.close()
        y.close()


def test_forward_to_a_subcontainer(env):
    """The socket is made in the named container's namespace (a pod shares
    one): a forward to the sub reaches the httpd the sub runs."""
    import test_pods
    sb = env.new_sandbox(env.make_bundle(args=["sleep", "1000"]), start=True)
    cid = test_pods.pod_id()
    out, _ = test_pods.start_sub(sb, env, cid, ["httpd", "-f", "-p", "8082", "-h", "/etc"])
    out.close()

    def page():
        try:
            with forward(sb, 8082) as s:
                return http_get(s, "/hostname")
        except RuntimeError:
            return None

    status, body = helpers.wait_until(page, what="the sub's httpd")
    assert "200" in status and body.decode().strip() == "cvisor"
    # Through the sub's own id too.
    mine, theirs = socket.socketpair()
    with mine:
        sb.call(M_PF, {"ContainerID": cid, "Port": 8082, "Files": 1}, fds=[theirs.fileno()])
        theirs.close()
        mine.settimeout(30)
        assert http_get(mine, "/hostname")[1].decode().strip() == "cvisor"

"""Network modes and Network.CreateLinksAndRoutes (docs/API.md).

Modes come from the global flag --network (none, sandbox, host). A veth
end made in a donor network namespace is donated by fd, moved into the
sandbox and configured there; its peer sits in a test namespace the
container pings. Every validation error is checked, and after each one
the sandbox still answers and the donor still has its link.
"""
import os
import secrets
import subprocess

import pytest

import helpers

M_LINKS = "Network.CreateLinksAndRoutes"
MASK24 = b"\xff\xff\xff\x00"
MASK0 = b"\x00\x00\x00\x00"


class NetCli(helpers.Cli):
    """The CLI with a global --network flag before the verb."""

    def __init__(self, cli, mode):
        super().__init__(cli.binary, cli.root)
        self.mode = mode

    def argv(self, *args):
        return [self.binary, "--root", self.root, "--network", self.mode, *map(str, args)]


def new_sandbox(env, mode=None, start=True):
    cli = NetCli(env.cli, mode) if mode else env.cli
    sb = helpers.Sandbox(cli, env.make_bundle(args=["sleep", "1000"]),
                         sid="net-" + secrets.token_hex(4))
    env.sandboxes.append(sb)
    sb.create()
    if start:
        sb.start()
    return sb


def ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and p.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def sh(sb, cmd):
    status, out = sb.run_exec(["sh", "-c", cmd])
    return status, out.decode()


CAP_NET_RAW = 1 << 13


def ping(sb, addr):
    """busybox ping from the container with CAP_NET_RAW (an exec has no
    capabilities unless asked): (wait status, output)."""
    caps = {"PermittedCaps": CAP_NET_RAW, "InheritableCaps": 0, "EffectiveCaps": CAP_NET_RAW,
            "BoundingCaps": CAP_NET_RAW, "AmbientCaps": 0}
    r, w = os.pipe()
    with sb.raw() as conn:
        pid = conn.call(helpers.M_EXEC, helpers.exec_args(
            sb.id, ["ping", "-c", "1", "-W", "5", addr], guest_fds=[1, 2], Capabilities=caps),
            fds=[w, w])
        os.close(w)
        with os.fdopen(r) as f:
            out = f.read()
        return conn.call(helpers.M_WAITPID, {"PID": pid, "CID": sb.id}), out


def links_of(sb):
    status, out = sh(sb, "ip -o link")
    assert status == 0, out
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


class Netns:
    """A named network namespace for the test (ip netns), removed after."""

    def __init__(self, tag):
        self.name = f"net-{tag}-{secrets.token_hex(3)}"
        r = ip("netns", "add", self.name, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot make a network namespace here: {r.stderr.strip()}")
        self.path = f"/run/netns/{self.name}"

    def ip(self, *args, check=True):
        return ip("-n", self.name, *args, check=check)

    def fd(self):
        return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def has_link(self, name):
        return self.ip("link", "show", name, check=False).returncode == 0

    def close(self):
        ip("netns", "del", self.name, check=False)


@pytest.fixture
def netns():
    made = []

    def make(tag):
        ns = Netns(tag)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.close()


def veth_in(donor, peer_ns=None):
    """A veth pair made in donor; the peer end moved to peer_ns when given.
    Returns (name, peer name)."""
    tag = secrets.token_hex(3)
    name, peer = f"nv{tag}", f"np{tag}"
    r = donor.ip("link", "add", name, "type", "veth", "peer", "name", peer, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot make a veth pair here: {r.stderr.strip()}")
    if peer_ns:
        donor.ip("link", "set", peer, "netns", peer_ns.name)
    return name, peer


# --------------------------------------------------------------------------
# modes


def test_mode_none_has_only_loopback_up(env):
    sb = new_sandbox(env, "none")
    assert links_of(sb) == ["lo"]
    status, out = sh(sb, "ip -o addr show lo")
    assert status == 0, out
    assert "127.0.0.1/8" in out and "::1/128" in out, out
    status, out = sh(sb, "ip -o link show lo")
    assert "UP" in out.split("<")[1].split(">")[0].split(","), out


def test_mode_sandbox_is_a_new_namespace_with_lo_up(env):
    sb = new_sandbox(env)  # the default
    assert links_of(sb) == ["lo"]
    status, out = sh(sb, "ip -o addr show lo")
    assert "127.0.0.1/8" in out, out
    with open(f"/proc/{sb.init_host_pid()}/ns/net") as _:
        pass
    assert os.readlink(f"/proc/{sb.init_host_pid()}/ns/net") != os.readlink("/proc/self/ns/net")


def test_mode_host_shares_the_host_namespace(env):
    sb = new_sandbox(env, "host")
    assert os.readlink(f"/proc/{sb.init_host_pid()}/ns/net") == os.readlink("/proc/self/ns/net")


def test_mode_host_refuses_links_and_none_refuses_fd_links(env, netns):
    host = new_sandbox(env, "host")
    with pytest.raises(RuntimeError, match="uses the host's network namespace"):
        host.call(M_LINKS, {"LoopbackLinks": [{"Name": "lo"}]})
    none = new_sandbox(env, "none")
    donor = netns("donor")
    name, _ = veth_in(donor)
    fd = donor.fd()
    try:
        with pytest.raises(RuntimeError, match=r"network is none \(--network none\): it takes no links"):
            none.call(M_LINKS, {"FDBasedLinks": [{"Name": name}], "Files": 1}, fds=[fd])
    finally:
        os.close(fd)
    assert donor.has_link(name)
    # Loopback addresses are fine in none.
    none.call(M_LINKS, {"LoopbackLinks": [{"Name": "lo", "Addresses": [
        {"Address": "127.0.0.9", "PrefixLen": 8}]}]})
    status, out = sh(none, "ip -o addr show lo")
    assert "127.0.0.9/8" in out, out


def test_bad_network_flag_is_refused(env):
    p = env.cli.run("--network", "bridge", "list")
    assert p.returncode != 0
    assert "--network must be none, sandbox or host" in p.stderr


# --------------------------------------------------------------------------
# a veth donated by fd


def test_veth_is_moved_configured_and_pings_its_peer(env, netns):
    sb = new_sandbox(env)
    donor, peer_ns = netns("donor"), netns("peer")
    name, peer = veth_in(donor, peer_ns)
    peer_ns.ip("addr", "add", "10.213.7.1/24", "dev", peer)
    peer_ns.ip("link", "set", peer, "up")
    peer_ns.ip("addr", "add", "10.214.7.1/32", "dev", "lo")
    peer_ns.ip("link", "set", "lo", "up")
    mac = bytes([0x02, 0x42, 0x0a, 0xd5, 0x07, 0x02])
    before = helpers.settled_fd_count(sb.boot_pid)
    fd = donor.fd()
    try:
        res = sb.call(M_LINKS, {
            "LoopbackLinks": [{"Name": "lo", "Addresses": [{"Address": "127.0.0.1", "PrefixLen": 8}]}],
            "FDBasedLinks": [{
                "Name": name, "InterfaceIndex": 0, "MTU": 1400,
                "Addresses": [{"Address": "10.213.7.2", "PrefixLen": 24}],
                "Routes": [{"Destination": {"IP": "10.215.0.0", "Mask": b"\xff\xff\x00\x00"},
                            "Gateway": "10.213.7.1", "MTU": 0}],
                "LinkAddress": mac,
                "Neighbors": [{"IP": "10.213.7.99", "HardwareAddr": b"\x02\x00\x00\x00\x00\x99"}],
                "NumChannels": 1,
            }],
            "Defaultv4Gateway": {"Route": {"Destination": {"IP": "0.0.0.0", "Mask": MASK0},
                                           "Gateway": "10.213.7.1"}, "Name": name},
            "Files": 1,
        }, fds=[fd])
    finally:
        os.close(fd)
    assert res is None
    assert helpers.settled_fd_count(sb.boot_pid) == before
    assert not donor.has_link(name), "the link is still in the donor namespace"
    status, out = sh(sb, f"ip -o addr show {name}; ip -o link show {name}; ip route; ip neigh")
    assert status == 0, out
    assert "10.213.7.2/24" in out, out
    assert "mtu 1400" in out, out
    assert "02:42:0a:d5:07:02" in out, out
    assert "default via 10.213.7.1" in out, out
    assert "10.215.0.0/16 via 10.213.7.1" in out, out
    assert "10.213.7.99" in out and "PERMANENT" in out, out
    for addr in ("10.213.7.1", "10.214.7.1"):  # the peer, then through the default route
        status, out = ping(sb, addr)
        assert status == 0, out
        assert "1 packets received" in out, out


def test_links_by_interface_index_and_in_several_calls(env, netns):
    sb = new_sandbox(env)
    donor = netns("donor")
    a, b = veth_in(donor)
    index = int(donor.ip("-o", "link", "show", b).stdout.split(":")[0])
    fd = donor.fd()
    try:
        sb.call(M_LINKS, {"FDBasedLinks": [{"Name": a, "Addresses": [
            {"Address": "fd00:77::2", "PrefixLen": 64}]}], "Files": 1}, fds=[fd])
        sb.call(M_LINKS, {"FDBasedLinks": [{"InterfaceIndex": index, "Addresses": [
            {"Address": "10.216.0.3", "PrefixLen": 24}]}],
            "Defaultv6Gateway": {"Route": {"Destination": {"IP": "::", "Mask": bytes(16)},
                                           "Gateway": "fd00:77::1"}, "Name": a},
            "Files": 1}, fds=[fd])
    finally:
        os.close(fd)
    assert links_of(sb) == sorted(["lo", a, b])
    status, out = sh(sb, "ip -o addr; ip -6 route")
    assert "fd00:77::2/64" in out and "10.216.0.3/24" in out, out
    assert "default via fd00:77::1" in out, out


# --------------------------------------------------------------------------
# validation


@pytest.fixture
def checked(env, netns):
    """A sandbox and a donor with a veth: each error case runs against them,
    then the sandbox must still answer and the donor keep its link."""
    sb = new_sandbox(env)
    donor = netns("donor")
    name, _ = veth_in(donor)
    fd = donor.fd()
    before = helpers.settled_fd_count(sb.boot_pid)
    yield sb, donor, name, fd
    os.close(fd)
    assert donor.has_link(name)
    assert sb.call(helpers.M_STATE, sb.id) == 2
    assert helpers.settled_fd_count(sb.boot_pid) == before


def link(name, **kw):
    d = {"Name": name}
    d.update(kw)
    return d


CASES = [
    ("fd count", lambda n: ({"FDBasedLinks": [link(n)], "Files": 0}, False),
     r"Files: 0 fds for 1 FDBasedLinks"),
    ("too many fds", lambda n: ({"FDBasedLinks": [], "Files": 1}, True),
     r"Files: 1 fds for 0 FDBasedLinks"),
    ("unknown link", lambda n: ({"FDBasedLinks": [link("nosuchlink0")], "Files": 1}, True),
     r"FDBasedLinks\[0\]\.Name: no link \"nosuchlink0\" in the donated network namespace"),
    ("unknown index", lambda n: ({"FDBasedLinks": [{"InterfaceIndex": 4000}], "Files": 1}, True),
     r"FDBasedLinks\[0\]\.InterfaceIndex: no link with index 4000"),
    ("no name", lambda n: ({"FDBasedLinks": [{"MTU": 1400}], "Files": 1}, True),
     r"FDBasedLinks\[0\]: needs a Name or an InterfaceIndex"),
    ("bad address", lambda n: ({"FDBasedLinks": [link(n, Addresses=[
        {"Address": "10.0.0.300", "PrefixLen": 24}])], "Files": 1}, True),
     r"FDBasedLinks\[0\]\.Addresses\[0\]\.Address: \"10\.0\.0\.300\" is not an IP address"),
    ("bad prefix", lambda n: ({"FDBasedLinks": [link(n, Addresses=[
        {"Address": "10.0.0.3", "PrefixLen": 33}])], "Files": 1}, True),
     r"Addresses\[0\]\.PrefixLen: 33 is not in 0\.\.32"),
    ("mask not contiguous", lambda n: ({"FDBasedLinks": [link(n, Routes=[
        {"Destination": {"IP": "10.1.0.0", "Mask": b"\xff\x00\xff\x00"}}])], "Files": 1}, True),
     r"Routes\[0\]\.Destination\.Mask: the mask is not contiguous"),
    ("mask as text", lambda n: ({"FDBasedLinks": [link(n, Routes=[
        {"Destination": {"IP": "10.1.0.0", "Mask": "255.255.0.0"}}])], "Files": 1}, True),
     r"Routes\[0\]\.Destination\.Mask: expected bin, got string"),
    ("bad gateway", lambda n: ({"FDBasedLinks": [link(n, Routes=[
        {"Destination": {"IP": "10.1.0.0", "Mask": MASK24}, "Gateway": "fd00::1"}])],
        "Files": 1}, True),
     r"Routes\[0\]\.Gateway: \"fd00::1\" is not of the destination's family"),
    ("bad mac", lambda n: ({"FDBasedLinks": [link(n, LinkAddress="02:00:00:00:00:01")],
                            "Files": 1}, True),
     r"FDBasedLinks\[0\]\.LinkAddress: expected bin, got string"),
    ("bad neighbour", lambda n: ({"FDBasedLinks": [link(n, Neighbors=[
        {"IP": "nope", "HardwareAddr": b"\x02\x00\x00\x00\x00\x01"}])], "Files": 1}, True),
     r"Neighbors\[0\]\.IP: \"nope\" is not an IP address"),
    ("default route link", lambda n: ({"FDBasedLinks": [link(n)], "Defaultv4Gateway": {
        "Route": {"Destination": {"IP": "0.0.0.0", "Mask": MASK0}, "Gateway": "10.0.0.1"},
        "Name": "nope0"}, "Files": 1}, True),
     r"Defaultv4Gateway\.Name: invalid interface name \"nope0\" for default route"),
    ("default route family", lambda n: ({"Defaultv6Gateway": {
        "Route": {"Destination": {"IP": "::", "Mask": bytes(16)}, "Gateway": "10.0.0.1"},
        "Name": "lo"}}, False),
     r"Defaultv6Gateway\.Route\.Gateway: \"10\.0\.0\.1\" is not of the destination.s family"),
    ("name already in sandbox", lambda n: ({"FDBasedLinks": [link("lo")], "Files": 1}, True),
     r"FDBasedLinks\[0\]: a link named \"lo\" is already in the sandbox"),
    ("same link twice", lambda n: ({"FDBasedLinks": [link(n), link(n)], "Files": 2}, 2),
     r"FDBasedLinks\[1\]: link \"\w+\" is also CreateLinksAndRoutesArgs\.FDBasedLinks\[0\]"),
    ("xdp", lambda n: ({"XDPLinks": [{"Name": n}]}, False),
     r"XDPLinks: AF_XDP links are not supported"),
    ("pcap", lambda n: ({"PCAP": True}, False), r"PCAP: packet capture is not supported"),
    ("unknown loopback", lambda n: ({"LoopbackLinks": [{"Name": "lo9"}]}, False),
     r"LoopbackLinks\[0\]\.Name: no link \"lo9\" in the sandbox"),
    ("not a map", lambda n: ("eth0", False), r"CreateLinksAndRoutesArgs: expected map"),
    ("wrong type", lambda n: ({"FDBasedLinks": {"Name": n}}, False),
     r"CreateLinksAndRoutesArgs\.FDBasedLinks: expected array"),
]


@pytest.mark.parametrize("what,make,msg", CASES, ids=[c[0] for c in CASES])
def test_validation_errors(checked, what, make, msg):
    sb, donor, name, fd = checked
    arg, with_fd = make(name)
    fds = [fd] * (2 if with_fd == 2 else 1) if with_fd else []
    with pytest.raises(RuntimeError, match=msg):
        sb.call(M_LINKS, arg, fds=fds)


def test_a_file_that_is_not_a_netns_is_refused(checked):
    sb, donor, name, fd = checked
    r, w = os.pipe()
    try:
        with pytest.raises(RuntimeError, match=r"Files\[0\]: not a network namespace fd"):
            sb.call(M_LINKS, {"FDBasedLinks": [link(name)], "Files": 1}, fds=[r])
        own = os.open(f"/proc/{sb.init_host_pid()}/ns/net", os.O_RDONLY)
        try:
            with pytest.raises(RuntimeError, match=r"Files\[0\]: the sandbox's own network namespace"):
                sb.call(M_LINKS, {"FDBasedLinks": [link(name)], "Files": 1}, fds=[own])
        finally:
            os.close(own)
    finally:
        os.close(r)
        os.close(w)


def test_spec_netns_path_is_joined_and_configurable(env, netns):
    """A CNI-made namespace named by path in the spec: the container joins
    it (as runc does), its lo is left as the orchestrator made it (down
    here), and CreateLinksAndRoutes adds links to it."""
    cni = netns("cni")
    cfg = helpers.fixture_config(env.fixture)
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    nss.append({"type": "network", "path": cni.path})
    linux = dict(cfg["linux"], namespaces=nss)
    sb = helpers.Sandbox(env.cli, env.make_bundle(args=["sleep", "1000"], linux=linux),
                         sid="net-" + secrets.token_hex(4))
    env.sandboxes.append(sb)
    sb.create()
    sb.start()
    assert os.stat(f"/proc/{sb.init_host_pid()}/ns/net").st_ino == os.stat(cni.path).st_ino
    assert "UP" not in cni.ip("-o", "link", "show", "lo").stdout.split("<")[1].split(">")[0]
    donor = netns("donor")
    name, _ = veth_in(donor)
    fd = donor.fd()
    try:
        sb.call(M_LINKS, {"FDBasedLinks": [{"Name": name, "Addresses": [
            {"Address": "10.217.0.2", "PrefixLen": 24}]}], "Files": 1}, fds=[fd])
    finally:
        os.close(fd)
    assert cni.has_link(name) and not donor.has_link(name)
    assert "10.217.0.2/24" in cni.ip("-o", "addr", "show", name).stdout


def test_mode_none_replaces_a_spec_netns_path(env, netns):
    cni = netns("cni")
    cfg = helpers.fixture_config(env.fixture)
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    nss.append({"type": "network", "path": cni.path})
    cli = NetCli(env.cli, "none")
    sb = helpers.Sandbox(cli, env.make_bundle(args=["sleep", "1000"],
                                              linux=dict(cfg["linux"], namespaces=nss)),
                         sid="net-" + secrets.token_hex(4))
    env.sandboxes.append(sb)
    sb.create()
    sb.start()
    ino = os.stat(f"/proc/{sb.init_host_pid()}/ns/net").st_ino
    assert ino != os.stat(cni.path).st_ino and ino != os.stat("/proc/self/ns/net").st_ino
    assert links_of(sb) == ["lo"]


def test_subcontainers_share_the_sandbox_network(env, netns):
    """A subcontainer whose spec asks for a new network namespace still
    gets the sandbox's: same namespace, same links, for its init and its
    execs."""
    import test_pods
    sb = new_sandbox(env)
    donor = netns("donor")
    name, _ = veth_in(donor)
    fd = donor.fd()
    try:
        sb.call(M_LINKS, {"FDBasedLinks": [{"Name": name}], "Files": 1}, fds=[fd])
    finally:
        os.close(fd)
    cid = test_pods.pod_id()
    out, _ = test_pods.start_sub(sb, env, cid, ["sh", "-c", "readlink /proc/self/ns/net; "
                                                           "ip -o link; sleep 999"])
    with out:
        first = out.readline().decode().strip()
        links = out.readline().decode() + out.readline().decode()
    status, root_ns = sh(sb, "readlink /proc/self/ns/net")
    assert status == 0
    assert first == root_ns.strip(), (first, root_ns)
    assert name in links, links
    _, status, data = test_pods.exec_in(sb, cid, ["readlink", "/proc/self/ns/net"])
    assert status == 0 and data.decode().strip() == root_ns.strip()

"""Reference client for the cvisor control socket (MessagePack-RPC).

The sandbox's control socket speaks MessagePack-RPC over an AF_UNIX stream:

    request   [0, msgid, method, [arg]]
    response  [1, msgid, error, result]

``error`` is nil or a string; responses may arrive out of order, so many
calls can be in flight on one connection. File descriptors travel as
SCM_RIGHTS ancillary data with the first bytes of the message that carries
them, and the argument (or result) map says how many: ``"Files": N``.

Uses only the standard library and python3-msgpack::

    from cvisor_client import Client, RemoteError
    with Client("/run/cvisor/sb1/control.sock") as c:
        pid = c.call("containerManager.ExecuteAsync", {...})
        status = c.call("containerManager.WaitPID", {"CID": "web", "PID": pid})

For pipelining, ``send`` returns the msgid and ``recv`` returns the next
response, whatever call it answers. ``raw_send`` writes arbitrary bytes, for
hostile-input tests.
"""

import array
import socket

import msgpack

__all__ = ["Client", "RemoteError", "ProtocolError"]

# The kernel's SCM_MAX_FD: the most fds one message can carry.
_MAX_RECV_FDS = 253
_READ_SIZE = 65536


class RemoteError(Exception):
    """The sandbox answered the call with an error string.

    ``message`` is the server's text, verbatim (clients compare it).
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class ProtocolError(Exception):
    """The connection broke or the server sent something that is not a
    response."""


class Client:
    """One connection to a control socket.

    ``path`` is the socket's filesystem path. ``timeout`` (seconds, or None
    to block forever) applies to each socket operation.
    """

    def __init__(self, path, timeout=None):
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                          max_buffer_size=0)
        self._next_id = 1
        # fds received but not yet handed out with a response, in arrival
        # order (a response's fds arrive with its first bytes).
        self._fds = []
        # Responses read while looking for another msgid (call()).
        self._stash = {}
        self._closed = False

    # -- context manager ---------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Closes the connection and any fds received but not handed out."""
        if self._closed:
            return
        self._closed = True
        self._sock.close()
        for fd in self._fds:
            _close_quietly(fd)
        self._fds = []
        for (_, _, _, fds) in self._stash.values():
            for fd in fds:
                _close_quietly(fd)
        self._stash = {}

    def fileno(self):
        """The socket's fd (for select/poll)."""
        return self._sock.fileno()

    # -- sending -------------------------------------------------------------
    def send(self, method, arg=None, fds=()):
        """Sends one request and returns its msgid without waiting.

        ``fds`` (ints or objects with fileno()) go with the first bytes of
        the request; the caller keeps its own copies. When sending fds the
        arg map must say ``"Files": len(fds)``.
        """
        msgid = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        self.raw_send(msgpack.packb([0, msgid, method, [arg]], use_bin_type=True), fds)
        return msgid

    def raw_send(self, data, fds=()):
        """Writes ``data`` as is; ``fds`` ride with the first sendmsg."""
        fds = [f if isinstance(f, int) else f.fileno() for f in fds]
        view = memoryview(data)
        first = True
        while first or len(view) > 0:
            anc = []
            if first and fds:
                anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            n = self._sock.sendmsg([view], anc)
            view = view[n:]
            first = False

    # -- receiving -----------------------------------------------------------
    def _read_more(self):
        bufsize = socket.CMSG_SPACE(_MAX_RECV_FDS * array.array("i").itemsize)
        data, anc, _flags, _addr = self._sock.recvmsg(_READ_SIZE, bufsize)
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[: len(payload) - len(payload) % a.itemsize])
                self._fds.extend(a)
        if not data:
            raise ProtocolError("connection closed by the sandbox")
        self._unpacker.feed(data)

    def recv(self):
        """Reads the next response: ``(msgid, error, result, fds)``.

        ``fds`` lists the descriptors that arrived with it (the caller owns
        them) when the result says ``"Files": N``; otherwise it is empty.
        ``msgid`` is None for connection-level errors (limits, bad input).
        """
        if self._stash:
            key = next(iter(self._stash))
            return self._stash.pop(key)
        while True:
            for msg in self._unpacker:
                return self._parse(msg)
            self._read_more()

    def _parse(self, msg):
        if not isinstance(msg, list) or len(msg) != 4 or msg[0] != 1:
            raise ProtocolError("unexpected message from the sandbox: %r" % (msg,))
        _, msgid, error, result = msg
        nfds = 0
        if isinstance(result, dict):
            n = result.get("Files")
            if isinstance(n, int) and n > 0:
                nfds = n
        fds, self._fds = self._fds[:nfds], self._fds[nfds:]
        return msgid, error, result, fds

    def call(self, method, arg=None, fds=()):
        """Calls ``method`` and waits for its response.

        Returns the result, or ``(result, fds)`` when the response carries
        fds (``Usage.UsageFD``). Raises ``RemoteError`` with the server's
        message on an error response. Responses to other calls (sent with
        ``send``) are kept for later ``recv`` calls.
        """
        try:
            msgid = self.send(method, arg, fds)
        except (BrokenPipeError, ConnectionResetError):
            # The server may have refused the request and hung up while
            # we were still writing it (message too large): report its
            # reason when it sent one.
            try:
                _, error, _, _ = self.recv()
            except (OSError, ProtocolError):
                error = None
            if error is not None:
                raise RemoteError(error)
            raise
        while True:
            if msgid in self._stash:
                got = self._stash.pop(msgid)
            else:
                got = None
                for msg in self._unpacker:
                    got = self._parse(msg)
                    break
                if got is None:
                    self._read_more()
                    continue
            rid, error, result, rfds = got
            if rid is None and error is not None:
                # Not tied to a msgid: the connection is being refused or
                # closed (e.g. "too many connections").
                raise RemoteError(error)
            if rid != msgid:
                self._stash[rid] = got
                continue
            if error is not None:
                for fd in rfds:
                    _close_quietly(fd)
                raise RemoteError(error)
            if rfds:
                return result, rfds
            return result


def _close_quietly(fd):
    import os

    try:
        os.close(fd)
    except OSError:
        pass

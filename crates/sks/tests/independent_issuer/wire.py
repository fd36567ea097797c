"""SKS 1.00 byte-stream encoding (seed section 7.1, 7.2, 7.4) and the transport to `sks serve`.

A call is one frame: `[method id][arguments]`; the reply is `[status][outputs]` on success or
`[status][ErrorString:string]` on failure. Frames travel as a 4-octet big-endian length
followed by the payload.
"""

import socket
import struct


class SksError(Exception):
    """A non-zero status returned by the SKS."""

    def __init__(self, method, status, text):
        super().__init__(f"method {method}: status 0x{status:02X} ({text})")
        self.method = method
        self.status = status
        self.text = text


class ProtocolError(Exception):
    """A reply that does not follow the layout of seed section 7.4."""


# --- primitives (layout document section 1.1) -------------------------------------------------

def u8(v):
    return struct.pack(">B", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def short(v):
    return struct.pack(">H", v)


def int32(v):
    return struct.pack(">I", v)


def array(b):
    """`byte[]`: 2-octet big-endian length, then the octets."""
    if len(b) > 0xFFFF:
        raise ValueError("byte[] longer than 65535 octets")
    return short(len(b)) + bytes(b)


def blob(b):
    """`blob`: 4-octet big-endian length, then the octets."""
    return int32(len(b)) + bytes(b)


def string(s):
    """`string`, `uri`, `id`: UTF-8 octets encoded as `byte[]`."""
    return array(s.encode("utf-8"))


class Reader:
    """Reads the outputs of one reply; `end()` insists that nothing is left over."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError(f"reply truncated at offset {self.pos} (+{n})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def boolean(self):
        v = self.u8()
        if v not in (0, 1):
            raise ProtocolError(f"bool octet 0x{v:02X}")
        return v == 1

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int32(self):
        return struct.unpack(">I", self.take(4))[0]

    def array(self):
        return self.take(self.short())

    def blob(self):
        return self.take(self.int32())

    def string(self):
        return self.array().decode("utf-8")

    def end(self):
        if self.pos != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.pos} trailing octets in reply")


# --- transport ------------------------------------------------------------------------------

def connect(address, token_file):
    """Opens the transport to `sks serve`; `address` is `HOST:PORT` (loopback TCP).

    The only place that knows how to reach the server: presents the token (the contents of the
    server's token file) as the first frame, checks the `[0x00]` acceptance, and returns the
    connected stream socket.
    """
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with open(token_file, "rb") as f:
        token = f.read(1024).strip()  # the server trims ASCII white space too
    sock.sendall(struct.pack(">I", len(token)) + token)
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            raise ProtocolError("connection closed during the token handshake")
        header += chunk
    (length,) = struct.unpack(">I", header)
    reply = b""
    while len(reply) < length:
        chunk = sock.recv(length - len(reply))
        if not chunk:
            raise ProtocolError("connection closed during the token handshake")
        reply += chunk
    if reply != b"\x00":
        raise ProtocolError(f"token refused: {reply!r}")
    return sock


class Connection:
    """Frames SKS calls over a connected stream socket."""

    def __init__(self, sock):
        self.sock = sock

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ProtocolError("connection closed by the SKS")
            buf += chunk
        return bytes(buf)

    def call(self, method, args=b""):
        """Sends `[method][args]`; returns a Reader over the outputs, or raises SksError."""
        payload = bytes([method]) + args
        self.sock.sendall(int32(len(payload)) + payload)
        (length,) = struct.unpack(">I", self._recv_exact(4))
        reply = self._recv_exact(length)
        if not reply:
            raise ProtocolError("empty reply")
        status = reply[0]
        if status != 0:
            r = Reader(reply[1:])
            text = r.string()
            r.end()
            raise SksError(method, status, text)
        return Reader(reply[1:])

    def close(self):
        self.sock.close()

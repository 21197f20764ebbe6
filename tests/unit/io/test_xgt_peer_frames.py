"""pyXGTClient (the independent XGT peer, tests/xgt_peers.py) against a tiny recording
server of this test's own: the request frames it sends match the reference layout
(docs/io.md, the protocol sheet's test vectors) byte for byte, and it understands the
reference's answers. What softplc's XGT server must accept from a real third-party
client starts here."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from xgt_peers import Client, XgtNakReply

# The reference's vectors (hex, wire order).
V1_READ_MW0 = (
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 00 00 0E 00 00 3C "
    "54 00 02 00 00 00 01 00 04 00 25 4D 57 30"
)
V2_READ_MW0_ANSWER = (
    "4C 53 49 53 2D 58 47 54 00 00 11 01 A0 11 00 00 0E 00 03 2F "
    "55 00 02 00 08 01 00 00 01 00 02 00 00 00"
)
V3_READ_MB0_2 = (
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 00 01 10 00 00 3F "
    "54 00 14 00 00 00 01 00 04 00 25 4D 42 30 02 00"
)
V4_READ_MB0_2_ANSWER = (
    "4C 53 49 53 2D 58 47 54 00 00 02 08 A0 11 00 01 0E 00 01 26 "
    "55 00 14 00 00 00 00 00 01 00 02 00 00 00"
)
WRITE_MW100 = (
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 01 00 14 00 00 43 "
    "58 00 02 00 00 00 01 00 06 00 25 4D 57 31 30 30 02 00 34 12"
)
WRITE_MW100_ACK = (
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 11 01 00 0A 00 00 17 59 00 02 00 00 00 00 00 01 00"
)
NAK_AREA_EXCEEDED = (
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 11 01 00 0A 00 00 17 55 00 02 00 00 00 FF FF 04 00"
)

HEADER = 20
TYPES = {"X": 0, "B": 1, "W": 2, "D": 3, "L": 4}
SIZES = {"X": 1, "B": 1, "W": 2, "D": 4, "L": 8}


def vec(text: str) -> bytes:
    return bytes.fromhex(text)


def bcc(header: bytes) -> int:
    return sum(header[:19]) & 0xFF


def with_invoke(frame: bytes, invoke: int) -> bytes:
    """``frame`` with another invoke ID and the BCC made to match."""
    b = bytearray(frame)
    b[14:16] = struct.pack("<H", invoke)
    b[19] = bcc(b)
    return bytes(b)


# The reference layout, written out from the protocol sheet (independently of the peer
# and of softplc's Rust codec).


def header(instruction: bytes, *, invoke: int, source: int, cpu: int = 0xA0) -> bytes:
    h = bytearray(
        b"LSIS-XGT\0\0" + struct.pack("<HBBHHB", 0, cpu, source, invoke, len(instruction), 0)
    )
    h.append(bcc(h))
    return bytes(h) + instruction


def block(name: str) -> bytes:
    return struct.pack("<H", len(name)) + name.encode()


def individual_read(names: list[str], *, invoke: int = 0) -> bytes:
    ty = TYPES[names[0][2]]
    body = struct.pack("<HHHH", 0x54, ty, 0, len(names)) + b"".join(block(n) for n in names)
    return header(body, invoke=invoke, source=0x33)


def individual_write(names: list[str], values: list[int], *, invoke: int = 0) -> bytes:
    letter = names[0][2]
    size = SIZES[letter]
    body = struct.pack("<HHHH", 0x58, TYPES[letter], 0, len(names))
    body += b"".join(block(n) for n in names)
    body += b"".join(struct.pack("<H", size) + v.to_bytes(size, "little") for v in values)
    return header(body, invoke=invoke, source=0x33)


def continuous_write(name: str, data: bytes, *, invoke: int = 0) -> bytes:
    body = struct.pack("<HHHH", 0x58, 0x14, 0, 1) + block(name) + struct.pack("<H", len(data))
    return header(body + data, invoke=invoke, source=0x33)


def read_answer(letter: str, values: list[int], *, invoke: int) -> bytes:
    size = SIZES[letter]
    body = struct.pack("<HHHHH", 0x55, TYPES[letter], 0, 0, len(values))
    body += b"".join(struct.pack("<H", size) + v.to_bytes(size, "little") for v in values)
    return header(body, invoke=invoke, source=0x11)


def write_answer(type_code: int, blocks: int, *, invoke: int) -> bytes:
    body = struct.pack("<HHHHH", 0x59, type_code, 0, 0, blocks)
    return header(body, invoke=invoke, source=0x11)


def invoke_of(frame: bytes) -> int:
    return int(struct.unpack_from("<H", frame, 14)[0])


class RecordingPlc:
    """Answers XGT requests on 127.0.0.1 with ``answer(request)``, recording each
    request frame (framed by the header's Length field, as a PLC reads them)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name="xgt-recorder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.05)
                while not self._stop.is_set():
                    frame = self._read_frame(conn)
                    if frame is None:
                        break
                    self.frames.append(frame)
                    # One write per answer: the peer reads it with one recv.
                    conn.sendall(self.answer(frame))

    def _read_exact(self, conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n and not self._stop.is_set():
            try:
                chunk = conn.recv(n - len(buf))
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf if len(buf) == n else None

    def _read_frame(self, conn: socket.socket) -> bytes | None:
        head = self._read_exact(conn, HEADER)
        if head is None:
            return None
        (length,) = struct.unpack_from("<H", head, 16)
        body = self._read_exact(conn, length)
        return None if body is None else head + body

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def plc() -> Iterator[Callable[[Callable[[bytes], bytes]], RecordingPlc]]:
    made: list[RecordingPlc] = []

    def make(answer: Callable[[bytes], bytes]) -> RecordingPlc:
        p = RecordingPlc(answer)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_peer_individual_read_of_mw0_is_reference_vector_1_and_reads_vector_2(plc) -> None:
    p = plc(lambda req: with_invoke(vec(V2_READ_MW0_ANSWER), invoke_of(req)))
    with Client("127.0.0.1", p.port) as c:
        assert c.read(["%MW0"]) == [0]
    assert p.frames == [vec(V1_READ_MW0)]


def test_peer_continuous_read_matches_vector_3_and_reads_vector_4(plc) -> None:
    p = plc(lambda req: with_invoke(vec(V4_READ_MB0_2_ANSWER), invoke_of(req)))
    with Client("127.0.0.1", p.port) as c:
        assert c.read_bytes("%MB0", 2) == b"\0\0"
    # The vector's invoke ID is 0x0100; the peer's is its own (0): all else is equal.
    assert p.frames == [with_invoke(vec(V3_READ_MB0_2), invoke_of(p.frames[0]))]
    assert invoke_of(p.frames[0]) == 0


def test_peer_write_of_mw100_matches_the_composed_write_and_reads_its_ack(plc) -> None:
    p = plc(lambda req: with_invoke(vec(WRITE_MW100_ACK), invoke_of(req)))
    with Client("127.0.0.1", p.port) as c:
        c.write(["%MW100"], [0x1234])
    assert p.frames == [with_invoke(vec(WRITE_MW100), invoke_of(p.frames[0]))]


def test_peer_raises_on_the_reference_nak(plc) -> None:
    p = plc(lambda req: with_invoke(vec(NAK_AREA_EXCEEDED), invoke_of(req)))
    with Client("127.0.0.1", p.port) as c, pytest.raises(XgtNakReply):
        c.read(["%MW0"])


def test_peer_reads_sixteen_blocks_in_the_reference_layout(plc) -> None:
    names = [f"%DW{1000 + 7 * i}" for i in range(16)]
    values = [(0x1111 * i) & 0xFFFF for i in range(16)]
    p = plc(lambda req: read_answer("W", values, invoke=invoke_of(req)))
    with Client("127.0.0.1", p.port) as c:
        assert c.read(names) == values
    assert p.frames == [individual_read(names)]


@pytest.mark.parametrize(
    ("letter", "value"),
    [("X", 1), ("B", 0xA5), ("W", 0xBEEF), ("D", 0xDEADBEEF), ("L", 0x0123456789ABCDEF)],
)
def test_peer_reads_and_writes_every_data_type_in_the_reference_layout(
    plc, letter: str, value: int
) -> None:
    def answer(req: bytes) -> bytes:
        if req[HEADER] == 0x54:
            return read_answer(letter, [value, 0], invoke=invoke_of(req))
        return write_answer(TYPES[letter], 2, invoke=invoke_of(req))

    names = [f"%M{letter}10", f"%M{letter}11"]
    p = plc(answer)
    with Client("127.0.0.1", p.port) as c:
        assert c.read(names) == [value, 0]
        c.write(names, [value, 0])
    # Individual writes list every name, then every value (not interleaved).
    assert p.frames == [individual_read(names), individual_write(names, [value, 0])]


def test_peer_continuous_write_is_in_the_reference_layout(plc) -> None:
    data = bytes(range(200))
    p = plc(lambda req: write_answer(0x14, 1, invoke=invoke_of(req)))
    with Client("127.0.0.1", p.port) as c:
        c.write_bytes("%DB2468", data)
    assert p.frames == [continuous_write("%DB2468", data)]


def test_every_peer_frame_carries_the_byte_sum_and_its_length(plc) -> None:
    def answer(req: bytes) -> bytes:
        if req[HEADER + 2] == 0x14:
            return with_invoke(vec(V4_READ_MB0_2_ANSWER), invoke_of(req))
        return read_answer("W", [1], invoke=invoke_of(req))

    p = plc(answer)
    with Client("127.0.0.1", p.port) as c:
        c.read(["%MW0"])
        c.read_bytes("%MB0", 2)
    for f in p.frames:
        assert f[:10] == b"LSIS-XGT\0\0"
        assert f[12:14] == b"\xa0\x33"
        assert f[19] == bcc(f)
        assert struct.unpack_from("<H", f, 16)[0] == len(f) - HEADER


def test_a_silent_server_is_a_connection_error_not_a_none(plc) -> None:
    p = plc(lambda req: b"")
    with Client("127.0.0.1", p.port, timeout=0.2) as c, pytest.raises(ConnectionError):
        c.read(["%MW0"])
    assert p.frames == [vec(V1_READ_MW0)]

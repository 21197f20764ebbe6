"""External writes against declared ranges and ``writable=False``, and a runtime that
stays up in FAULT (issue: hardening, item 2).

One unauthenticated Modbus write used to end the runtime: blink's ``half_period`` at
holding registers 4096-4099 set to 0 divided by zero, the engine faulted and
``softplc run`` exited, taking the server with it. Now the range refuses the write
(exception 03, an event), an in-range write that faults the program leaves the runtime
up with safe outputs, and ``--exit-on-fault`` keeps the old behaviour for scripts.
"""

from __future__ import annotations

import enum
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modbus_peers import Client, ModbusExceptionReply
from softplc import (
    BOOL,
    INT,
    TIME,
    ConfigError,
    Engine,
    InvalidValue,
    Memory,
    Output,
    ms,
    program,
    s,
)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect(port: int, timeout: float = 20.0) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client("127.0.0.1", port, timeout=1.0)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def regs_of_time(ns: int) -> list[int]:
    """A TIME (LINT ns) as the default map's four holding registers (ABCD order)."""
    raw = struct.pack(">q", ns)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 8, 2)]


def start_run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "softplc.cli", "run", *args, "--priority", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def stop(p: subprocess.Popen[str]) -> tuple[str, str]:
    p.send_signal(signal.SIGINT)
    return p.communicate(timeout=20)


def test_a_modbus_write_outside_blinks_range_is_refused_with_exception_03() -> None:
    port = free_port()
    p = start_run("programs/blink.py", "--cycle", "1ms", "--modbus-server", f"127.0.0.1:{port}")
    try:
        with connect(port) as bus:
            # %ML0 -> holding registers 4096..4099.
            with pytest.raises(ModbusExceptionReply) as e:
                bus.write("holding_register", 4096, regs_of_time(0))
            assert e.value.code == 3
            with pytest.raises(ModbusExceptionReply):
                bus.write("holding_register", 4096, regs_of_time(s(11)))
            # A partial write of the value is checked on the value it would make.
            with pytest.raises(ModbusExceptionReply):
                bus.write("holding_register", 4098, [0])  # 500 ms -> 25.856 us
            assert bus.read("holding_register", 4096, 4) == regs_of_time(ms(500))
            # In range: accepted, and the program sees it.
            bus.write("holding_register", 4096, regs_of_time(ms(20)))
            deadline = time.monotonic() + 5
            while bus.read("holding_register", 4096, 4) != regs_of_time(ms(20)):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert p.poll() is None, "the runtime is still up"
    finally:
        out, err = stop(p)
    assert p.returncode == 0, (out, err)


def test_refused_writes_are_counted_and_logged(tmp_path: Path) -> None:
    @program
    class Setpoint:
        level = Memory(INT, 50, min=0, max=100)
        locked = Memory(INT, 7, writable=False)
        out = Output(BOOL)

        def scan(self) -> None:
            self.out = self.level > 10

    import softplc.io as sio

    e = Engine(clock="real", cycle="5ms")
    e.add_program(Setpoint(), mode="reference")
    server = sio.modbus_server("127.0.0.1:0")
    e.add_driver(server)
    e.start()
    try:
        addr = server.address
        assert addr is not None
        level, locked = (1024 + v["offset"] // 2 for v in e.variables if v["type"] == "INT")
        with Client(*addr) as bus:
            with pytest.raises(ModbusExceptionReply) as ex:
                bus.write("holding_register", level, [101])
            assert ex.value.code == 3
            with pytest.raises(ModbusExceptionReply) as ex:
                bus.write("holding_register", locked, [1])
            assert ex.value.code == 2
            # A multi-register write touching a refused variable lands nowhere.
            if locked == level + 1:
                with pytest.raises(ModbusExceptionReply):
                    bus.write("holding_register", level, [60, 1])
                assert bus.read("holding_register", level, 1) == [50]
            bus.write("holding_register", level, [100])
        st = server.status()
        assert st["writes_refused"] >= 2, st
        texts = [ev["text"] for ev in e.events()[0]]
        assert any("setpoint.level = 101) refused" in t and "maximum 100" in t for t in texts)
        assert any("setpoint.locked" in t and "not writable" in t for t in texts), texts
    finally:
        e.close()


class Step(enum.IntEnum):
    IDLE = 0
    FILL = 1
    DRAIN = 4


def test_a_bus_write_of_a_value_that_is_no_member_of_an_enumeration_is_refused() -> None:
    @program
    class Seq:
        step = Memory(Step, address="%MW0")
        out = Output(BOOL)

        def scan(self) -> None:
            self.out = self.step == Step.DRAIN

    import softplc.io as sio

    e = Engine(clock="real", cycle="5ms")
    e.add_program(Seq(), mode="reference")
    server = sio.modbus_server("127.0.0.1:0")
    e.add_driver(server)
    e.start()
    try:
        addr = server.address
        assert addr is not None
        with Client(*addr) as bus:
            for bad in (2, 3, 65535):
                with pytest.raises(ModbusExceptionReply) as ex:
                    bus.write("holding_register", 1024, [bad])
                assert ex.value.code == 3
            bus.write("holding_register", 1024, [4])
            deadline = time.monotonic() + 5
            while e.read("seq.out") is not True:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        texts = [ev["text"] for ev in e.events()[0]]
        assert any("not a value of the variable's enumeration" in t for t in texts), texts
    finally:
        e.close()


def test_the_api_write_is_an_external_write_and_checked_too() -> None:
    @program
    class P:
        half = Memory(TIME, ms(500), min=ms(10), max=s(10))
        code = Memory(INT, 3, writable=False)

        def scan(self) -> None:
            pass

    with Engine(clock="virtual", cycle="10ms") as e:
        e.add_program(P(), mode="reference")
        e.start()
        with pytest.raises(InvalidValue, match=r"p\.half \(TIME\): T#0ms is below .*T#10ms"):
            e.write("p.half", 0)
        with pytest.raises(InvalidValue, match=r"p\.code .*not writable from outside"):
            e.write("p.code", 4)
        e.write("p.half", ms(20))
        e.run_cycles(1)
        assert e.read("p.half") == ms(20)
        # Forcing is a maintenance override, not an external write.
        e.force("p.code", 9)
        e.run_cycles(1)
        assert e.read("p.code") == 9


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Memory(INT, 5, min=9), "initial value is outside the range"),
        (lambda: Memory(INT, 5, min=9, max=1), "min 9 is greater than max 1"),
        (lambda: Memory(INT, 5, max=40000), "max=40000 does not fit INT"),
        (lambda: Memory(BOOL, min=0), "a BOOL has no min"),
        (lambda: Memory(INT, writable="no"), "writable must be True or False"),
    ],
)
def test_a_bad_range_is_an_error_naming_the_variable(make, message) -> None:  # type: ignore[no-untyped-def]
    @program
    class Bad:
        x = Output(BOOL)

        def scan(self) -> None:
            pass

    with pytest.raises(ConfigError, match=message):
        var = make()

        @program
        class P:
            v = var

            def scan(self) -> None:
                pass

        with Engine(clock="virtual") as e:
            e.add_program(P(), mode="reference")


FAULTY = """
from softplc import program, Output, Memory, BOOL, INT

@program
class Div:
    lamp = Output(BOOL, "%QX0.0")
    divisor = Memory(INT, 2, min=-100, max=100)
    q = Memory(INT)

    def scan(self):
        self.lamp = True
        self.q = 100 // (self.divisor - 5)
"""


def test_a_runtime_that_faults_keeps_serving_its_bus_with_outputs_safe(tmp_path: Path) -> None:
    prog = tmp_path / "div.py"
    prog.write_text(textwrap.dedent(FAULTY))
    port = free_port()
    p = start_run(str(prog), "--cycle", "1ms", "--modbus-server", f"127.0.0.1:{port}")
    try:
        with connect(port) as bus:
            deadline = time.monotonic() + 5
            while not bus.read("coil", 0)[0]:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            # In range, but it divides by zero: the program faults.
            bus.write("holding_register", 1024 + 0, [5])
            deadline = time.monotonic() + 5
            while bus.read("coil", 0)[0]:
                assert time.monotonic() < deadline, "the lamp never went safe"
                time.sleep(0.01)
            # Still up: the server answers, the process lives.
            time.sleep(0.3)
            assert bus.read("coil", 0) == [False]
            assert p.poll() is None
    finally:
        out, err = stop(p)
    assert p.returncode == 3, (out, err)
    assert "still running and serving" in err
    assert "division by zero" in out


def test_exit_on_fault_ends_the_run_at_the_fault(tmp_path: Path) -> None:
    prog = tmp_path / "div.py"
    prog.write_text(textwrap.dedent(FAULTY).replace("Memory(INT, 2,", "Memory(INT, 5,"))
    p = start_run(str(prog), "--cycle", "1ms", "--exit-on-fault", "--duration", "30s")
    out, err = p.communicate(timeout=20)
    assert p.returncode == 3, (out, err)
    assert "division by zero" in out


def test_modbus_server_options_make_tables_read_only_and_allow_clients() -> None:
    port = free_port()
    p = start_run(
        "programs/blink.py", "--cycle", "1ms", "--modbus-server", f"127.0.0.1:{port}",
        "--modbus-read-only", "coil,holding_register",
    )  # fmt: skip
    try:
        with connect(port) as bus:
            for table, addr in (("coil", 0), ("holding_register", 4096)):
                with pytest.raises(ModbusExceptionReply) as e:
                    bus.write(table, addr, [1])
                assert e.value.code == 1
    finally:
        stop(p)
    port = free_port()
    p = start_run(
        "programs/blink.py", "--cycle", "1ms", "--modbus-server", f"127.0.0.1:{port}",
        "--modbus-allow", "10.0.0.0/8",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    # Refused by the allowlist: closed (or reset) without an answer.
                    try:
                        sock.sendall(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 0, 1))
                        answer = sock.recv(16)
                    except ConnectionResetError:
                        answer = b""
                    assert answer == b""
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        out, err = stop(p)
    assert p.returncode == 0, (out, err)


def test_modbus_server_options_without_a_server_are_an_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "run", "programs/blink.py", "--modbus-allow",
         "10.0.0.0/8", "--duration", "1s"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 2
    assert "need --modbus-server" in r.stderr

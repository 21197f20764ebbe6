"""The watchdog, enforced from outside the scan thread (issue: hardening, item 1).

A program stuck in a cycle is caught by the watchdog thread at its limit: the engine
enters FAULT naming the program and the line, the outputs reach their safe values on the
bus through the drivers while the program is still stuck, and the stuck code is
interrupted. ``close()``, ``--duration`` and Ctrl-C return in bounded time whatever the
program does. Reaction times are measured by tests/benchmarks/test_watchdog_bench.py;
the bounds here only catch a watchdog that does not fire.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import softplc.io as sio
from modbus_peers import Client, Device
from softplc import Engine
from softplc.loader import load_program_file

LIMIT_NS = 5_000_000

# One program file: `stuck` (a memory flag the test sets) sends the scan into a loop.
# `kind` picks the loop: plain Python, a compiled loop, or Python that swallows the
# watchdog's exception.
PROGRAM = """
from softplc import program, Output, Memory, BOOL, DINT

@program
class P:
    coil = Output(BOOL, "%QX0.0")
    stuck = Memory(BOOL)
    n = Memory(DINT)

    def scan(self):
        self.coil = True
        if self.stuck:
{loop}
"""

LOOPS = {
    "python": """\
            while True:
                pass
""",
    "compiled": """\
            for i in range(30000):
                for j in range(30000):
                    self.n = self.n + 1
""",
    "stubborn": """\
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass
""",
}


def program_file(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"stuck_{kind}.py"
    p.write_text(textwrap.dedent(PROGRAM).format(loop=LOOPS[kind]))
    return p


def loop_lines(path: Path) -> range:
    """The lines of the loop the program gets stuck in (after ``if self.stuck:``)."""
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines, 1) if "if self.stuck:" in line) + 1
    return range(first, len(lines) + 1)


def names_a_loop_line(message: str, path: Path, prefix: str) -> bool:
    """True when ``message`` holds ``prefix`` + a line of the stuck loop."""
    return any(f"{prefix}{n}" in message for n in loop_lines(path))


def start_engine(path: Path, *, mode: str, watchdog: str | None) -> Engine:
    """A real-time engine (not started) running the program in a 1 ms task."""
    prog = load_program_file(path).module.P()
    e = Engine(clock="real", cycle="1ms")
    e.add_task("main", period="1ms", watchdog=watchdog)
    e.add_program(prog, task="main", mode=mode)  # type: ignore[arg-type]
    return e


@pytest.fixture
def device():
    d = Device().start()
    yield d
    d.close()


def run_stuck(tmp_path: Path, device: Device, kind: str, mode: str) -> dict:
    """Runs the program until it is stuck and the watchdog fired, with a Modbus server
    (default map: the coil at 0) and a Modbus client writing the coil to a pymodbus
    device (at 7); checks both buses on the way. Returns the fault."""
    path = program_file(tmp_path, kind)
    e = start_engine(path, mode=mode, watchdog="5ms")
    toml = tmp_path / "io.toml"
    toml.write_text(
        textwrap.dedent(f"""
        [[device]]
        name = "field"
        host = "127.0.0.1"
        port = {device.port}
        poll_ms = 20
        timeout_ms = 200

        [[device.write]]
        var = "p.coil"
        table = "coil"
        address = 7
        """)
    )
    drivers = sio.attach(e, io=toml, modbus_server="127.0.0.1:0")
    server = next(d for d in drivers if d.name == "modbus-server")
    try:
        e.start()
        host, port = server.address or ("", 0)
        with Client(host, port) as bus:
            deadline = time.monotonic() + 5
            while not (bus.read("coil", 0)[0] and device.get("coil", 7)[0]):
                assert time.monotonic() < deadline, "the coil never turned on"
                time.sleep(0.005)
            e.write("p.stuck", True)
            # Watch the bus while the program is stuck.
            seen_safe_ns = None
            deadline = time.monotonic() + 5
            while seen_safe_ns is None:
                assert time.monotonic() < deadline, "the coil never went to its safe value"
                if not bus.read("coil", 0)[0]:
                    seen_safe_ns = time.monotonic_ns()
            fault = e.fault
            assert fault is not None
            assert e.state == "FAULT"
            # The watchdog fired at its limit, not at the VM's budget or never.
            fired_after_ms = (fault["t_ns"] - fault["started_ns"]) / 1e6
            assert 5.0 <= fired_after_ms < 1000, fired_after_ms
            assert seen_safe_ns >= fault["started_ns"] + LIMIT_NS
            # The Modbus client's device got the safe value too.
            deadline = time.monotonic() + 5
            while device.get("coil", 7)[0]:
                assert time.monotonic() < deadline, "the device's coil stayed on"
                time.sleep(0.002)
            # The scan comes back from the interrupted code and stays in FAULT with
            # safe outputs.
            deadline = time.monotonic() + 5
            while "Traceback" not in (e.fault or {}).get("message", "") and kind != "compiled":
                assert time.monotonic() < deadline, "the stuck code was not interrupted"
                time.sleep(0.01)
            time.sleep(0.05)
            assert not bus.read("coil", 0)[0]
            assert e.state == "FAULT"
            fault = e.fault
            assert fault is not None
            return fault
    finally:
        t0 = time.monotonic()
        e.close()
        assert time.monotonic() - t0 < 5


def test_a_python_program_stuck_in_a_loop_faults_at_its_watchdog_with_outputs_safe_on_the_bus(
    tmp_path: Path, device: Device
) -> None:
    fault = run_stuck(tmp_path, device, "python", "reference")
    path = tmp_path / "stuck_python.py"
    assert fault["kind"] == "watchdog"
    assert fault["source"] == "p"
    assert "still running after" in fault["message"]
    # The line the code was stuck on, from the interrupt and from the traceback.
    assert names_a_loop_line(fault["message"], path, f"was at {path}:")
    assert names_a_loop_line(fault["message"], path, f'"{path}", line ')
    assert "WatchdogInterrupt" in fault["message"]


def test_a_compiled_runaway_loop_is_stopped_by_the_watchdog_not_the_loop_budget(
    tmp_path: Path, device: Device
) -> None:
    fault = run_stuck(tmp_path, device, "compiled", "compiled")
    path = tmp_path / "stuck_compiled.py"
    assert fault["kind"] == "watchdog"
    assert fault["source"] == "p"
    assert "stopped by the watchdog in a loop" in fault["message"]
    assert names_a_loop_line(fault["message"], path, f"{path.name}:")
    # Stopped at the watchdog's limit: long before the VM's budget of 10^8 iterations.
    assert (fault["t_ns"] - fault["started_ns"]) < 500_000_000


def test_close_returns_in_bounded_time_on_a_stuck_program_without_a_watchdog(
    tmp_path: Path,
) -> None:
    prog = load_program_file(program_file(tmp_path, "python")).module.P()
    e = Engine(clock="real", cycle="1ms")
    e.add_program(prog, mode="reference")
    e.start()
    e.write("p.stuck", True)
    time.sleep(0.1)
    assert e.state == "RUN"  # nobody is watching
    t0 = time.monotonic()
    e.close()
    assert time.monotonic() - t0 < 3.0
    assert not e.scan_abandoned
    assert e.state == "FAULT"
    assert e.read("p.coil") is False
    fault = e.fault
    assert fault is not None and fault["message"].startswith("close:")


def test_an_interrupted_program_leaves_later_python_code_unaffected(tmp_path: Path) -> None:
    # Withdrawing an interrupt used to leave CPython's asynchronous-exception signal
    # raised for good: afterwards a failing Hypothesis run never finished shrinking.
    # In a subprocess, so that a regression cannot hang this test session.
    path = program_file(tmp_path, "python")
    script = textwrap.dedent(f"""
        import time
        from hypothesis import given, settings, strategies as st
        from softplc import Engine
        from softplc.loader import load_program_file
        e = Engine(clock="real", cycle="1ms")
        e.add_program(load_program_file({str(path)!r}).module.P(), mode="reference")
        e.start()
        e.write("p.stuck", True)
        time.sleep(0.1)
        e.close()
        assert e.state == "FAULT", e.state

        @settings(max_examples=200, database=None, deadline=None)
        @given(st.lists(st.integers()))
        def prop(xs):
            assert sum(xs) < 100

        try:
            prop()
        except AssertionError:
            print("shrunk")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "shrunk" in r.stdout, r.stderr


def cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "softplc.cli", "run", *args, "--cycle", "1ms", "--priority", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def test_softplc_run_ends_on_the_watchdog_fault_with_exit_code_3(tmp_path: Path) -> None:
    path = program_file(tmp_path, "python")
    # The program is stuck from its first cycle: force the flag through initial value.
    path.write_text(path.read_text().replace("Memory(BOOL)", "Memory(BOOL, True)"))
    t0 = time.monotonic()
    p = cli(
        tmp_path, str(path), "--reference", "--watchdog", "5ms", "--duration", "30s",
        "--exit-on-fault",
    )  # fmt: skip
    out, err = p.communicate(timeout=20)
    assert p.returncode == 3, (out, err)
    assert time.monotonic() - t0 < 15
    assert "watchdog" in out and "still running after" in out


def test_softplc_run_duration_ends_a_stuck_program_without_a_watchdog(tmp_path: Path) -> None:
    path = program_file(tmp_path, "python")
    path.write_text(path.read_text().replace("Memory(BOOL)", "Memory(BOOL, True)"))
    t0 = time.monotonic()
    p = cli(tmp_path, str(path), "--reference", "--duration", "1s")
    out, err = p.communicate(timeout=20)
    assert p.returncode == 3, (out, err)
    assert time.monotonic() - t0 < 10
    assert "close: the scan was still in a cycle" in out


def test_ctrl_c_ends_softplc_run_while_the_program_is_stuck(tmp_path: Path) -> None:
    path = program_file(tmp_path, "python")
    path.write_text(path.read_text().replace("Memory(BOOL)", "Memory(BOOL, True)"))
    p = cli(tmp_path, str(path), "--reference")
    time.sleep(1.5)  # started, and stuck in its first cycle
    assert p.poll() is None
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert time.monotonic() - t0 < 10
    assert p.returncode == 3, (out, err)
    assert "FAULT" in out


def test_a_program_that_swallows_the_interrupt_is_abandoned_and_the_process_still_ends(
    tmp_path: Path,
) -> None:
    path = program_file(tmp_path, "stubborn")
    path.write_text(path.read_text().replace("Memory(BOOL)", "Memory(BOOL, True)"))
    t0 = time.monotonic()
    p = cli(tmp_path, str(path), "--reference", "--duration", "0.5s")
    out, err = p.communicate(timeout=20)
    assert time.monotonic() - t0 < 10
    assert p.returncode == 3, (out, err)
    assert "abandoned" in err

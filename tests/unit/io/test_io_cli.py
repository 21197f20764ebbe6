"""The command line with fieldbus I/O, as real subprocesses: ``softplc io check`` and
``softplc run PROGRAM.py --modbus-server HOST:PORT`` read by pymodbus while it runs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_until
from modbus_peers import Client

ROOT = Path(__file__).resolve().parents[3]


def softplc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softplc.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_io_check_with_a_program_checks_the_health_variable(tmp_path):
    toml = (ROOT / "programs" / "pump_station.toml").read_text()
    good = tmp_path / "good.toml"
    good.write_text(toml)
    r = softplc("io", "check", str(good), "--program", "programs/pump_station.py")
    assert r.returncode == 0, r.stderr
    assert "bound to the program" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(toml.replace('health_var = "pump_station.comms_ok"', 'health_var = "comms"'))
    r = softplc("io", "check", str(bad), "--program", "programs/pump_station.py")
    assert r.returncode == 2, r.stdout
    assert f"{bad}:" in r.stderr and "`health_var`" in r.stderr and "comms" in r.stderr, r.stderr
    # A variable that exists but cannot hold a health flag (an output) is named too.
    worse = tmp_path / "worse.toml"
    worse.write_text(toml.replace('"pump_station.comms_ok"', '"pump_station.pump1"', 1))
    r = softplc("io", "check", str(worse), "--program", "programs/pump_station.py")
    assert r.returncode == 2 and "`health_var`" in r.stderr and "BOOL input" in r.stderr, r.stderr


PROGRAM = """
from softplc import INT, Output, program


@program
class Served:
    answer = Output(INT, "%QW3")

    def scan(self):
        self.answer = 1234
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_softplc_run_serves_the_image_with_the_default_map_until_ctrl_c(tmp_path):
    prog = tmp_path / "served.py"
    prog.write_text(PROGRAM)
    port = free_port()
    # A shell or a test runner may start children with SIGINT ignored, and Python then
    # leaves it ignored. Ctrl-C must reach `softplc run` as KeyboardInterrupt, so the
    # child restores Python's handler before running the command line (this, and not
    # preexec_fn, which is unsafe in a parent with threads).
    boot = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from softplc.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", boot, "run", str(prog), "--modbus-server", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:

        def answer() -> list[int] | None:
            try:
                with Client("127.0.0.1", port, timeout=0.5) as c:
                    return c.read("holding_register", 3)
            except (ConnectionError, OSError):
                return None

        assert wait_until(lambda: answer() == [1234], timeout=30, step=0.1), proc.poll()
        with Client("127.0.0.1", port) as c:
            assert c.read("holding_register", 3, unit=255) == [1234]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    # Interrupted, it stops cleanly and prints its summary.
    assert " cycles in " in out and "state RUN" in out, out
    # The port is free again once the process is gone.
    time.sleep(0.05)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1:99999", 'write host = "127.0.0.1" and port = 99999'),
        ("plc.local:502", 'write host = "plc.local" and port = 502'),
        ("[::1]", "without brackets"),
        ("plc..local", "not a host name or IP address"),
    ],
)
def test_io_check_refuses_a_host_with_a_port_in_it(tmp_path, host, why):
    f = tmp_path / "io.toml"
    f.write_text(
        f'[[device]]\nname = "d"\nhost = "{host}"\n'
        '[[device.read]]\nvar = "a"\ntable = "holding_register"\naddress = 0\n'
    )
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "io", "check", str(f)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout
    assert f"{f}:3:8:" in r.stderr and "`host`" in r.stderr and why in r.stderr, r.stderr


def test_io_check_accepts_ipv6_addresses_and_host_names(tmp_path):
    for host in ("::1", "plc-7.local", "localhost"):
        f = tmp_path / "io.toml"
        f.write_text(
            f'[[device]]\nname = "d"\nhost = "{host}"\n'
            '[[device.read]]\nvar = "a"\ntable = "holding_register"\naddress = 0\n'
        )
        r = subprocess.run(
            [sys.executable, "-m", "softplc.cli", "io", "check", str(f)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr

"""The watchdog's safe-output override reaches XGT buses: a program stuck in a loop that
even swallows the watchdog's interrupt (so the scan never comes back) has its outputs
forced to their safe values through the XGT server (an XGT client reads the safe value)
and through the XGT client (the PLC it writes gets the safe value).

The stuck runtime is ``softplc run`` in a subprocess (an abandoned scan thread must not
spin in this test process); the PLC its XGT client writes to is an engine here, and
pyXGTClient (tests/xgt_peers.py) watches the runtime's XGT server."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import softplc.io as sio
from conftest import wait_until
from softplc import BOOL, Engine
from xgt_peers import Client, XgtNakReply

PROGRAM = """
from softplc import program, Output, Memory, BOOL

@program
class P:
    coil = Output(BOOL, "%QX0.0")
    stuck = Memory(BOOL, address="%MX1.0")

    def scan(self):
        self.coil = True
        if self.stuck:
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass
"""

BOOT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from softplc.cli import main; sys.exit(main(sys.argv[1:]))"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_stuck_program_has_its_outputs_made_safe_on_both_xgt_buses(tmp_path: Path) -> None:
    # The PLC the runtime's XGT client writes its coil to: M0007 (bit 7 of word M000).
    plc = Engine(clock="real", cycle="5ms")
    plc.declare("field.coil", "memory", BOOL, "%MX0.7")
    plc.add_task("main", period="5ms")
    (plc_server,) = sio.attach(plc, xgt_server="127.0.0.1:0", xgt_cpu="XGK")
    plc.start()
    assert plc_server.address is not None
    prog = tmp_path / "stuck.py"
    prog.write_text(textwrap.dedent(PROGRAM))
    io = tmp_path / "io.toml"
    io.write_text(
        textwrap.dedent(f"""
        [[device]]
        name = "field"
        protocol = "xgt"
        host = "127.0.0.1"
        port = {plc_server.address[1]}
        cpu = "XGK"
        poll_ms = 20
        timeout_ms = 200

        [[device.write]]
        var = "p.coil"
        address = "M0007"
        """)
    )
    port = free_port()
    cmd = [sys.executable, "-c", BOOT, "run", str(prog), "--reference", "--cycle", "1ms"]
    cmd += ["--watchdog", "5ms", "--priority", "0", "--no-control", "--io", str(io)]
    cmd += ["--xgt-server", f"127.0.0.1:{port}", "--duration", "60s"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def coil() -> list[int] | None:
            try:
                with Client("127.0.0.1", port, timeout=0.5) as c:
                    return c.read(["%QX0"])
            except (ConnectionError, OSError, XgtNakReply):
                return None

        assert wait_until(lambda: coil() == [1], timeout=30, step=0.05), proc.poll()
        assert wait_until(lambda: plc.read("field.coil"))
        with Client("127.0.0.1", port) as bus:
            bus.write(["%MX8"], [1])  # stuck: the scan loops for good
            # The server's bus shows the safe value while the program is stuck.
            assert wait_until(lambda: bus.read(["%QX0"]) == [0], timeout=10, step=0.002)
        # The PLC got the safe value through the XGT client.
        assert wait_until(lambda: plc.read("field.coil") is False, timeout=10)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 3, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        plc.close()

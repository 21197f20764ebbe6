"""Bad OPC UA server input is one line before anything starts, and nothing is left
listening: a port in use, an endpoint URL that does not parse, a certificate directory
that cannot be written, a pattern that selects no variable, an address that would need
security."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import softplc.io as sio
from softplc import INT, Engine
from softplc.errors import ConfigError, SoftPlcError

ROOT = Path(__file__).resolve().parents[3]
BLINK = str(ROOT / "programs" / "blink.py")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softplc", "run", BLINK, "--no-control", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softplc: error: "), p.stderr
    return lines[0]


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_a_port_in_use_is_one_line_and_stops_what_had_started():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        line = one_line_error(run("--opcua", f"opc.tcp://127.0.0.1:{port}", "--duration", "1s"))
        assert f"cannot listen on 127.0.0.1:{port}" in line, line
        # In process: the Modbus server started before it is stopped again.
        e = Engine(clock="real", cycle="10ms")
        e.declare("a.x", "memory", INT)
        e.add_task("main", period="10ms")
        modbus = sio.modbus_server("127.0.0.1:0")
        e.add_driver(modbus)
        e.add_driver(sio.opcua_server(f"opc.tcp://127.0.0.1:{port}"))
        with pytest.raises(SoftPlcError, match="cannot listen"):
            e.start()
        listen = modbus.status()["listen"]
        assert listen is not None and refuses(int(listen.rsplit(":", 1)[1]))
        e.close()
    finally:
        busy.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4840",
        "opc.tcp://127.0.0.1:99999",
        "opc.tcp://:4840",
        "opc.tcp://[::1:4840",
    ],
)
def test_an_endpoint_url_that_does_not_parse_is_one_line(url):
    line = one_line_error(run("--opcua", url, "--duration", "1s"))
    assert "is not an endpoint URL" in line and "opc.tcp://HOST:PORT" in line, line


def test_another_address_without_security_is_refused_with_what_to_do(tmp_path):
    line = one_line_error(run("--opcua", "opc.tcp://0.0.0.0:4840", "--duration", "1s"))
    assert "[server.opcua]" in line and "pki_dir" in line, line
    toml = tmp_path / "io.toml"
    toml.write_text('[server.opcua]\nendpoint = "opc.tcp://0.0.0.0:4840"\n')
    line = one_line_error(run("--io", str(toml), "--duration", "1s"))
    assert f"{toml}:1:1: server.opcua: key `user`" in line, line


def test_a_certificate_directory_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    toml = tmp_path / "io.toml"
    toml.write_text(
        '[server.opcua]\nendpoint = "opc.tcp://127.0.0.1:0"\npki_dir = "not-a-dir/pki"\n'
        '[[server.opcua.user]]\nname = "eng"\npassword = "pw"\nrole = "engineer"\n'
    )
    line = one_line_error(run("--io", str(toml), "--duration", "1s"))
    assert "certificate directory" in line and str(blocker / "pki") in line, line


def test_a_pattern_that_selects_no_variable_is_one_line_naming_file_and_pattern(tmp_path):
    toml = tmp_path / "io.toml"
    toml.write_text(
        '[server.opcua]\nendpoint = "opc.tcp://127.0.0.1:0"\nexpose = ["blink.*", "blnik.*"]\n'
    )
    line = one_line_error(run("--io", str(toml), "--duration", "1s"))
    assert f"{toml}:1:1: server.opcua: key `expose`" in line, line
    assert '"blnik.*" matches no variable' in line, line


def test_the_python_api_checks_its_arguments_before_anything_is_built():
    with pytest.raises(ConfigError, match="unknown role"):
        sio.opcua_server("opc.tcp://127.0.0.1:0", anonymous="boss")
    with pytest.raises(ConfigError, match="at least 10ms"):
        sio.opcua_server("opc.tcp://127.0.0.1:0", sampling="1ms")
    with pytest.raises(ConfigError, match="pki_dir"):
        sio.opcua_server("opc.tcp://127.0.0.1:0", users=[sio.OpcuaUser("a", "b", "engineer")])
    with pytest.raises(ConfigError, match="loopback"):
        sio.opcua_server("opc.tcp://0.0.0.0:0", pki_dir="/tmp/x", users=[("a", "b", "viewer")])

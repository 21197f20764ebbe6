"""XGT in the I/O configuration: bad input from the issue (a name the protocol cannot
express, a map entry past 1,400 bytes, an unknown CPU type) as errors naming file, line,
device and key, through the library and ``softplc io check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import softplc.io as sio
from softplc import ConfigError

ROOT = Path(__file__).resolve().parents[3]

HEAD = """[[device]]
name = "press"
protocol = "xgt"
host = "127.0.0.1"
cpu = "{cpu}"
"""

VARS = [("cell.level", "input", "INT", None), ("cell.flag", "input", "BOOL", None)]


def check(tmp_path: Path, text: str, variables: list | None = None) -> dict:
    path = tmp_path / "io.toml"
    path.write_text(text)
    return sio.check_config(path, variables=variables)


def error(tmp_path: Path, text: str, variables: list | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        check(tmp_path, text, variables)
    return str(e.value)


def test_an_unknown_cpu_type_names_the_line_and_the_families(tmp_path):
    text = HEAD.format(cpu="XGB") + '[[device.read]]\nvar = "level"\naddress = "D0"\n'
    e = error(tmp_path, text)
    assert e.startswith(f'{tmp_path / "io.toml"}:5:7: device "press": key `cpu`'), e
    assert "XGB-MK" in e and "XGB-IEC" in e


@pytest.mark.parametrize(
    ("address", "ty", "why"),
    [
        ("W100", "BOOL", "not a device of XGK CPUs"),
        ("D99999999999999", "INT", "more than 16"),
        ("%MW100", "BOOL", "the mapping's type is bit"),
        ("D100", "BOOL", "word.bit"),
        ("S10", "BOOL", "no user form for a bit"),
    ],
)
def test_a_name_the_protocol_cannot_express_is_named_with_key_and_line(tmp_path, address, ty, why):
    text = (
        HEAD.format(cpu="XGK") + f'[[device.read]]\nvar = "flag"\naddress = "{address}"\n'
        f'type = "{ty}"\n'
    )
    e = error(tmp_path, text)
    assert ':8:11: device "press" read #1: key `address`' in e and why in e, e


def words(cpu: str, n: int) -> tuple[str, list]:
    """A read of ``n`` INT variables from D0 on: one mapping entry of 2n bytes."""
    names = [f"cell.w{i}" for i in range(n)]
    text = (
        HEAD.format(cpu=cpu)
        + "[[device.read]]\n"
        + "vars = ["
        + ", ".join(f'"{v}"' for v in names)
        + "]\n"
        + 'address = "D0"\n'
    )
    return text, [(v, "input", "INT", None) for v in names]


def test_a_map_entry_past_1400_bytes_is_refused_with_its_size(tmp_path):
    e = error(tmp_path, *words("XGK", 701))
    assert ':8:11: device "press" read #1: key `address`' in e, e
    assert "1402 bytes, more than the 1400 of one continuous request" in e, e
    assert check(tmp_path, *words("XGK", 700))["xgt_devices"][0]["read_requests_per_poll"] == 1
    # 512 on an XGB CPU.
    e = error(tmp_path, *words("XGB-MK", 257))
    assert "514 bytes, more than the 512" in e, e


def test_the_report_counts_requests_per_poll_once_bound(tmp_path):
    text = (
        HEAD.format(cpu="XGK")
        + '[[device.read]]\nvar = "level"\naddress = "D100"\n'
        + '[[device.read]]\nvar = "flag"\naddress = "M172C"\n'
        + '[server.xgt]\nlisten = "127.0.0.1:0"\ncpu = "XGB-IEC"\nread_only = ["I"]\n'
    )
    r = check(tmp_path, text, VARS)
    (d,) = r["xgt_devices"]
    assert (d["cpu"], d["endpoint"], d["read_requests_per_poll"]) == ("XGK", "127.0.0.1:2004", 2)
    s = r["xgt_server"]
    assert (s["cpu"], s["default_map"], s["read_only"], s["map_entries"]) == (
        "XGB-IEC",
        True,
        ["I"],
        2,
    )
    assert r["devices"] == [] and r["server"] is None


def softplc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softplc.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_io_check_prints_the_xgt_device_and_server(tmp_path):
    r = softplc("io", "check", "programs/xgt_press.toml", "--program", "programs/xgt_press.py")
    assert r.returncode == 0, r.stderr
    assert "xgt device press: 127.0.0.1:2004 XGK" in r.stdout, r.stdout
    assert "2 read requests per poll" in r.stdout, r.stdout
    r = softplc("io", "check", "programs/xgt_press_plc.toml")
    assert r.returncode == 0 and "xgt server: 127.0.0.1:2004 as XGK, explicit map" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "programs" / "xgt_press.toml").read_text().replace('"XGK"', '"XGQ"'))
    r = softplc("io", "check", str(bad))
    assert r.returncode == 2 and f"{bad}:" in r.stderr and "`cpu`" in r.stderr, r.stderr


def test_xgt_server_arguments_are_checked_before_the_native_call():
    with pytest.raises(ConfigError, match="cpu must be one of"):
        sio.xgt_server("127.0.0.1:0", cpu="S7")
    with pytest.raises(ConfigError, match="read_only"):
        sio.xgt_server("127.0.0.1:0", cpu="XGI", read_only=["D"])
    with pytest.raises(ConfigError, match="max_connections"):
        sio.xgt_server("127.0.0.1:0", max_connections=0)
    with pytest.raises(ConfigError, match="--xgt-cpu needs --xgt-server"):
        sio.build_drivers(xgt_cpu="XGK")

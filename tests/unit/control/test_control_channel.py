"""The control channel of a running runtime, as real processes and real sockets:
``softplc run`` in a subprocess, driven through the CLI and the Python client."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from softplc import ControlError, InvalidValue
from softplc.control import Client, list_runtimes

ROOT = Path(__file__).resolve().parents[3]
TANK = ROOT / "programs" / "tank.py"


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own runtime directory (the user's is left alone)."""
    d = tmp_path / "xdg"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(d))
    return d


def start(*args: str, name: str | None = "tank") -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "softplc.cli", "run", str(TANK), "--priority", "0"]
    if name is not None:
        cmd += ["--name", name]
    p = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return p


def wait_for_runtime(name: str, p: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert p.poll() is None, p.communicate()
        try:
            with Client(name, timeout=2) as c:
                c.status()
            return
        except ControlError:
            assert time.monotonic() < deadline, "the runtime never answered"
            time.sleep(0.05)


def stop(p: subprocess.Popen[str]) -> tuple[str, str]:
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    return p.communicate(timeout=20)


@pytest.fixture
def tank() -> Iterator[subprocess.Popen[str]]:
    p = start()
    wait_for_runtime("tank", p)
    yield p
    stop(p)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softplc.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )


def test_a_running_runtime_is_listed_and_its_socket_is_private(
    tank: subprocess.Popen[str], runtime_dir: Path
) -> None:
    sock = runtime_dir / "softplc" / "tank.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    (rt,) = list_runtimes()
    assert (rt.name, rt.pid, rt.alive) == ("tank", tank.pid, True)
    r = cli("ps")
    assert r.returncode == 0 and "tank" in r.stdout and str(tank.pid) in r.stdout
    r = cli("status", "tank", "--json")
    st = json.loads(r.stdout)
    assert st["state"] == "RUN" and st["name"] == "tank" and st["pid"] == tank.pid


def test_the_client_reads_writes_forces_and_changes_states(tank: subprocess.Popen[str]) -> None:
    with Client("tank") as c:
        v = c.read("tank.level", "tank.pump")
        assert set(v) == {"tank.level", "tank.pump"}
        # One cycle: the sample carries its cycle number and every value's quality.
        s = c.sample("tank.level", "tank.pump")
        assert s["cycle"] > 0 and s["quality"]["tank.level"] == "good"
        c.write(**{"tank.low_limit": 31.5})
        deadline = time.monotonic() + 5
        while c.read("tank.low_limit")["tank.low_limit"] != 31.5:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        c.force("tank.pump", False)
        time.sleep(0.1)
        assert c.sample("tank.pump")["forced"]["tank.pump"] is True
        assert c.read("tank.pump") == {"tank.pump": False}
        c.unforce()
        c.stop()
        deadline = time.monotonic() + 5
        while c.status()["state"] != "STOP":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        c.run()
        while c.status()["state"] != "RUN":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        events, _ = c.events()
        assert any("tank.low_limit=31.5" in e["text"] for e in events)


def test_bad_requests_are_one_clear_error_and_change_nothing(tank: subprocess.Popen[str]) -> None:
    with Client("tank") as c:
        with pytest.raises(ControlError, match=r"unknown variable 'tank\.levle' \(did you mean"):
            c.read("tank.levle")
        before = c.read("tank.low_limit", "tank.high_limit")
        # A write of the wrong type is refused, and with it the good value beside it.
        with pytest.raises(InvalidValue, match=r"tank\.high_limit \(REAL\): expected a number"):
            c.write(**{"tank.low_limit": 12.0, "tank.high_limit": "high"})
        time.sleep(0.1)
        assert c.read("tank.low_limit", "tank.high_limit") == before
    r = cli("write", "tank", "nosuch=1")
    assert r.returncode == 2 and "unknown variable 'nosuch'" in r.stderr
    r = cli("write", "tank", "tank.low_limit")
    assert r.returncode == 2 and "expected VAR=VALUE" in r.stderr
    r = cli("status", "nobody")
    assert r.returncode == 2 and "no runtime named 'nobody' is running" in r.stderr


def test_the_cli_verbs_work_against_a_runtime(tank: subprocess.Popen[str]) -> None:
    assert cli("write", "tank", "tank.low_limit=25").returncode == 0
    assert cli("force", "tank", "tank.pump=false").returncode == 0
    r = cli("read", "tank", "tank.pump", "--json")
    assert json.loads(r.stdout)["forced"]["tank.pump"] is True
    assert cli("unforce", "tank").returncode == 0
    r = cli("stop", "tank")
    assert r.returncode == 0 and "STOP" in r.stdout
    r = cli("start", "tank")
    assert r.returncode == 0 and "RUN" in r.stdout
    r = cli("watch", "tank", "-s", "tank.*", "--count", "2", "--interval", "50ms")
    assert r.returncode == 0, r.stderr
    assert "tank.level" in r.stdout and "quality" in r.stdout


def test_subscriptions_deliver_values_from_one_cycle_at_the_interval(
    tank: subprocess.Popen[str],
) -> None:
    with Client("tank") as c:
        sub = c.subscribe(["tank.*"], interval="50ms")
        t0 = time.monotonic()
        updates = [next(sub) for _ in range(10)]
        took = time.monotonic() - t0
        sub.close()
    assert 0.3 < took < 5, took
    cycles = [u["cycle"] for u in updates]
    assert cycles == sorted(cycles) and cycles[-1] > cycles[0]
    assert set(updates[0]["values"]) >= {"tank.level", "tank.pump", "tank.low_limit"}


def test_a_name_already_running_is_refused_and_a_default_name_takes_a_suffix(
    tank: subprocess.Popen[str],
) -> None:
    p = start("--duration", "5s", name="tank")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 2
    assert f"a runtime named 'tank' is already running (pid {tank.pid})" in err
    # Without --name, the file's name is the default, with a suffix when it is taken.
    p = start("--duration", "3s", "--json", name=None)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["name"] == "tank-2"


def test_a_socket_path_that_is_not_ours_is_never_touched(runtime_dir: Path) -> None:
    d = runtime_dir / "softplc"
    d.mkdir(mode=0o700)
    (d / "tank.sock").write_text("not a socket")
    p = start("--duration", "2s")
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 2
    assert "is not a socket of this user: refusing to touch it" in err
    assert (d / "tank.sock").read_text() == "not a socket"


def test_a_stale_socket_is_replaced(runtime_dir: Path) -> None:
    d = runtime_dir / "softplc"
    d.mkdir(mode=0o700)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(d / "tank.sock"))
    s.close()  # bound, never listened: what a killed runtime leaves
    p = start()
    try:
        wait_for_runtime("tank", p)
    finally:
        stop(p)


def test_tcp_needs_the_token_and_listens_on_loopback(runtime_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    p = start("--control-tcp", f"127.0.0.1:{port}")
    try:
        wait_for_runtime("tank", p)
        token = (runtime_dir / "softplc" / "tank.token").read_text()
        assert stat.S_IMODE((runtime_dir / "softplc" / "tank.token").stat().st_mode) == 0o600
        with Client(f"127.0.0.1:{port}", token=token) as c:
            assert c.status()["name"] == "tank"
        with pytest.raises(ControlError, match="wrong token"):
            Client(f"127.0.0.1:{port}", token="guess")
        # Without hello, nothing but an error.
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            raw.sendall(frame({"id": 1, "op": "status"}))
            answer = read_frame(raw)
            assert answer["ok"] is False and answer["error"]["type"] == "auth"
    finally:
        stop(p)


def frame(msg: dict) -> bytes:  # type: ignore[type-arg]
    body = msgpack.packb(msg)
    return struct.pack(">I", len(body)) + body


def read_frame(s: socket.socket) -> dict:  # type: ignore[type-arg]
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return {}
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return {}
        body += chunk
    msg: dict = msgpack.unpackb(body, strict_map_key=False)  # type: ignore[type-arg]
    return msg


def test_garbage_and_abrupt_disconnects_never_disturb_other_clients_or_the_scan(
    tank: subprocess.Popen[str], runtime_dir: Path
) -> None:
    path = str(runtime_dir / "softplc" / "tank.sock")
    rng = random.Random(1234)
    with Client("tank") as good:
        cycles0 = good.status()["tasks"][0]["cycles"]
        sub = good.subscribe(["tank.level"], interval="20ms")
        next(sub)
        for i in range(300):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(path)
                kind = i % 6
                if kind == 0:  # random bytes
                    s.sendall(rng.randbytes(rng.randint(1, 200)))
                elif kind == 1:  # oversized length prefix
                    s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"xx")
                elif kind == 2:  # truncated message, then gone
                    s.sendall(struct.pack(">I", 100) + b"\x81\xa2op")
                elif kind == 3:  # valid framing, not a map
                    s.sendall(frame([1, 2, 3]))  # type: ignore[arg-type]
                elif kind == 4:  # unknown operation: an error answer, the link stays
                    s.sendall(frame({"id": 7, "op": "explode"}))
                    ans = read_frame(s)
                    assert ans["ok"] is False and "unknown operation" in ans["error"]["message"]
                else:  # a subscription, then an abrupt close
                    s.sendall(frame({"id": 1, "op": "subscribe", "patterns": ["*"]}))
        # The other client and its subscription carried on; the scan too.
        assert next(sub)["values"]["tank.level"] is not None
        sub.close()
        st = good.status()
        assert st["state"] == "RUN"
        assert st["tasks"][0]["cycles"] > cycles0
    assert tank.poll() is None

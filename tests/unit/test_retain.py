"""Retained and persistent variables: what survives which restart, program changes,
forces, and damaged files (issue: runtime services, item 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from softplc import DINT, INT, ConfigError, Engine, Input, Memory, program

ROOT = Path(__file__).resolve().parents[2]


def run(
    d: Path,
    decls: list[tuple[str, Any, str | None]],
    *,
    restart: str = "warm",
    signature: str = "prog-1",
    writes: dict[str, int] | None = None,
    force: dict[str, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One engine life: declares (name, type, retain kind), starts, writes, stops.
    Returns the values read just after start and the retain status."""
    e = Engine(clock="virtual", cycle="10ms")
    try:
        for name, ty, kind in decls:
            e.declare(name, "memory", ty, retain=kind)  # type: ignore[arg-type]
        e.add_task("main", period="10ms")
        e.set_retain(d, name="plc", restart=restart, signature=signature)  # type: ignore[arg-type]
        e.start()
        seen = {name: e.read(name) for name, _, _ in decls}
        status = e.retain_status()
        assert status is not None
        for name, v in (force or {}).items():
            e.force(name, v)
        for name, v in (writes or {}).items():
            e.write(name, v)
        e.run_cycles(2)
    finally:
        e.close()
    return seen, status


DECLS = [("r", DINT, "retain"), ("p", DINT, "persistent"), ("m", DINT, None)]


def test_warm_start_keeps_retain_and_persistent_and_plain_memory_starts_afresh(
    tmp_path: Path,
) -> None:
    run(tmp_path, DECLS, writes={"r": 7, "p": 8, "m": 9})
    seen, st = run(tmp_path, DECLS)
    assert seen == {"r": 7, "p": 8, "m": 0}
    assert sorted(st["report"]["restored"]) == ["p", "r"]
    assert st["report"]["level"] == "warm" and st["report"]["loaded_seq"] >= 1


def test_cold_start_resets_retain_and_keeps_persistent(tmp_path: Path) -> None:
    run(tmp_path, DECLS, writes={"r": 7, "p": 8})
    seen, st = run(tmp_path, DECLS, restart="cold")
    assert seen == {"r": 0, "p": 8, "m": 0}
    assert ("r", "cold restart") in [tuple(x) for x in st["report"]["reset"]]


def test_origin_reset_starts_everything_afresh_and_clears_the_file(tmp_path: Path) -> None:
    run(tmp_path, DECLS, writes={"r": 7, "p": 8})
    seen, _ = run(tmp_path, DECLS, restart="origin")
    assert seen == {"r": 0, "p": 0, "m": 0}
    # What the origin run saved is what the next warm start sees: nothing from before.
    seen, _ = run(tmp_path, DECLS)
    assert seen == {"r": 0, "p": 0, "m": 0}


def test_a_changed_program_resets_retain_and_migrates_persistent_reporting_each(
    tmp_path: Path,
) -> None:
    run(tmp_path, [*DECLS, ("gone", DINT, "persistent"), ("t", INT, "persistent")],
        writes={"r": 7, "p": 8, "gone": 5, "t": 3})  # fmt: skip
    changed = [*DECLS, ("t", DINT, "persistent"), ("new", DINT, "persistent")]
    seen, st = run(tmp_path, changed, signature="prog-2")
    assert seen["r"] == 0 and seen["p"] == 8
    assert seen["t"] == 0 and seen["new"] == 0
    rep = st["report"]
    why = {name: reason for name, reason in rep["reset"]}
    assert "the program changed" in why["r"]
    assert why["t"] == "its type changed from INT to DINT"
    assert why["new"] == "not in the retain file"
    assert rep["dropped"] == ["gone"]


def test_a_forced_value_is_never_persisted(tmp_path: Path) -> None:
    run(tmp_path, DECLS, writes={"r": 7})
    run(tmp_path, DECLS, force={"r": 99})
    seen, _ = run(tmp_path, DECLS)
    assert seen["r"] == 7


def test_a_damaged_newest_slot_falls_back_to_the_older_one_and_says_so(tmp_path: Path) -> None:
    run(tmp_path, DECLS, writes={"r": 1})
    run(tmp_path, DECLS, writes={"r": 2})
    st_before = run(tmp_path, DECLS)[1]
    newest = Path(st_before["files"][st_before["report"]["loaded_seq"] % 2])
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0x40
    newest.write_bytes(bytes(data))
    seen, st = run(tmp_path, DECLS)
    assert seen["r"] == 1
    assert any("checksum mismatch" in w for w in st["report"]["warnings"]), st
    assert any("other slot" in w for w in st["report"]["warnings"]), st


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_both_slots_damaged_start_clean_with_a_message(tmp_path: Path, damage: str) -> None:
    run(tmp_path, DECLS, writes={"r": 1})
    run(tmp_path, DECLS, writes={"r": 2})
    for f in tmp_path.glob("plc.retain.*"):
        b = f.read_bytes()
        f.write_bytes(
            {"truncate": b[: len(b) // 2], "garbage": os.urandom(64), "empty": b""}[damage]
        )
    seen, st = run(tmp_path, DECLS)
    assert seen == {"r": 0, "p": 0, "m": 0}
    assert len(st["report"]["warnings"]) == 2


def test_retain_is_refused_on_inputs_and_outputs() -> None:
    with pytest.raises(ConfigError, match="only Memory variables can be retain"):
        Input(INT, retain=True)
    e = Engine(clock="virtual")
    with pytest.raises(ConfigError, match="only memory variables can be persistent"):
        e.declare("x", "input", INT, retain="persistent")
    e.close()


def test_program_classes_declare_retain_and_persistent(tmp_path: Path) -> None:
    @program
    class Counter:
        total = Memory(DINT, retain=True)
        batches = Memory(DINT, persistent=True)

        def scan(self) -> None:
            self.total = self.total + 1

    for _ in range(2):
        with Engine(clock="virtual", cycle="10ms") as e:
            e.add_program(Counter())
            e.set_retain(tmp_path, name="counter")
            e.start()
            e.run_cycles(5)
    with Engine(clock="virtual", cycle="10ms") as e:
        e.add_program(Counter())
        e.set_retain(tmp_path, name="counter")
        e.start()
        assert e.read("counter.total") == 10
        assert {v["name"]: v["retain"] for v in e.variables} == {
            "counter.total": "retain",
            "counter.batches": "persistent",
        }


def test_softplc_run_keeps_retained_values_between_runs_and_reports(tmp_path: Path) -> None:
    prog = tmp_path / "count.py"
    prog.write_text(
        "from softplc import program, Memory, DINT\n\n"
        "@program\nclass Count:\n    n = Memory(DINT, retain=True)\n\n"
        "    def scan(self):\n        self.n = self.n + 1\n"
    )

    def softplc_run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "softplc.cli", "run", str(prog), "--virtual", "--cycles",
             "100", "--retain-dir", str(tmp_path / "state"), "--no-control", *extra],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    assert softplc_run().returncode == 0
    r = softplc_run()
    assert r.returncode == 0, r.stderr
    assert "1 values restored (warm start" in r.stderr
    assert (tmp_path / "state" / "count.retain.0").exists() or (
        tmp_path / "state" / "count.retain.1"
    ).exists()
    r = softplc_run("--cold")
    assert "count.n starts from its initial value: cold restart" in r.stderr


@pytest.mark.slow
def test_a_thousand_random_kills_always_load_one_whole_recent_snapshot() -> None:
    cargo = shutil.which("cargo")
    assert cargo is not None
    r = subprocess.run(
        [cargo, "test", "-p", "softplc-core", "--test", "retain_kill", "--", "--nocapture"],
        cwd=ROOT, env={**os.environ, "SOFTPLC_KILLS": "1000"}, capture_output=True,
        text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1000 kills" in r.stdout

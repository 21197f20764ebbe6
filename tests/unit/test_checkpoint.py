"""Checkpoints of virtual-time engines: a restored engine continues bit for bit like
the original, one checkpoint forks several futures, and a checkpoint of another engine
is refused (issue: test benches, item 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import softplc.trace as st
from softplc import ConfigError, StateError
from softplc.loader import load_program_file

ROOT = Path(__file__).resolve().parents[2]
TANK = ROOT / "programs" / "tank.py"


def engine(mode: str):  # type: ignore[no-untyped-def]
    e = load_program_file(TANK).build_engine(clock="virtual", cycle="10ms", mode=mode)
    e.start()
    return e


def traced(e, path: Path, cycles: int) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    e.start_trace(path)
    e.run_cycles(cycles)
    e.stop_trace()
    tr = st.load(path)
    return {n: np.asarray(tr[n]) for n in tr.names if not n.startswith("task:")}


@pytest.mark.parametrize("mode", ["auto", "reference"])
def test_a_restored_engine_continues_bit_for_bit(tmp_path: Path, mode: str) -> None:
    a = engine(mode)
    b = engine(mode)
    try:
        a.run_cycles(700)  # the pump has cycled: timers, edges and the plant have state
        a.force("tank.high_limit", 55.0)
        cp = a.checkpoint()
        assert cp.cycle == 700
        future_a = traced(a, tmp_path / "a.trace", 900)
        b.restore(cp)
        future_b = traced(b, tmp_path / "b.trace", 900)
        assert future_a.keys() == future_b.keys()
        for name in future_a:
            assert future_a[name].tobytes() == future_b[name].tobytes(), name
        assert b.forced == {"tank.high_limit": 55.0}
        # The same checkpoint again: a second, identical future.
        a.restore(cp)
        again = traced(a, tmp_path / "c.trace", 900)
        for name in future_a:
            assert again[name].tobytes() == future_a[name].tobytes(), name
    finally:
        a.close()
        b.close()


def test_one_checkpoint_explores_several_futures(tmp_path: Path) -> None:
    e = engine("auto")
    try:
        e.run_cycles(300)
        cp = e.checkpoint()
        levels = []
        for limit in (30.0, 50.0, 70.0):
            e.restore(cp)
            e.write("tank.high_limit", limit)
            e.run_cycles(2000)
            levels.append(e.read("tank.level"))
        assert len(set(levels)) == 3, levels
    finally:
        e.close()


def test_a_checkpoint_of_another_engine_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.py"
    other.write_text(
        "from softplc import program, Memory, DINT\n\n@program\nclass P:\n"
        "    n = Memory(DINT)\n\n    def scan(self):\n        self.n = self.n + 1\n"
    )
    a = engine("auto")
    b = load_program_file(other).build_engine(clock="virtual", cycle="10ms")
    b.start()
    try:
        with pytest.raises((StateError, ConfigError), match=r"other Python programs or plant"):
            b.restore(a.checkpoint())
        with pytest.raises(ConfigError, match="not a softplc checkpoint"):
            b.restore("cp")  # type: ignore[arg-type]
    finally:
        a.close()
        b.close()


def test_real_time_engines_have_no_checkpoints() -> None:
    e = load_program_file(TANK).build_engine(clock="real", cycle="10ms")
    e.start()
    try:
        with pytest.raises(StateError, match="virtual-time"):
            e.checkpoint()
    finally:
        e.close()


def test_a_checkpoint_of_an_engine_with_other_variables_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    def make(extra: str):  # type: ignore[no-untyped-def]
        p = tmp_path / f"p{len(extra)}.py"
        p.write_text(
            "from softplc import program, Memory, DINT\n\n@program\nclass P:\n"
            f"    n = Memory(DINT)\n{extra}\n    def scan(self):\n        self.n = self.n + 1\n"
        )
        e = load_program_file(p).build_engine(clock="virtual", cycle="10ms")
        e.start()
        return e

    a, b = make(""), make("    m = Memory(DINT)\n")
    try:
        a.run_cycles(3)
        b.run_cycles(7)
        with pytest.raises(StateError, match="holds 1 variables, this engine 2"):
            b.restore(a.checkpoint())
        assert b.read("p.n") == 7
    finally:
        a.close()
        b.close()

"""A bounded fuzz of the trace reader: real traces recorded on the engine, then mutated
(bits flipped, bytes overwritten, cut, ranges duplicated or deleted, and records
changed with their checksums made right again), go through every ``softplc trace``
command and ``softplc.trace.load``. Each returns within a time and memory bound and
either succeeds or raises :class:`softplc.TraceError`: nothing else, no warning, no
"failed unexpectedly".

The default run takes a few seconds; ``pytest -m slow`` runs the long variant.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import softplc
import softplc.trace as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from softplc import BOOL, DINT, LREAL, REAL, TIME, Engine
from softplc.cli import build_parser

from tests.unit.trace.framing import MAGIC, build, end_frame, frame, frames_at

#: Bounds for one mutated file (about 10 kB) through every command: far above what
#: they take (milliseconds, a few megabytes), far below a hang or a runaway allocation.
SECONDS = 20.0
PEAK_BYTES = 64 << 20


def _plant(io: Any) -> None:
    io["x.count"] = io["x.count"] + 1
    io["x.level"] = (io["x.count"] % 17) * 0.25
    io["x.on"] = io["x.count"] % 9 == 0
    io["x.avg"] = io["x.level"] / 3.0
    io["x.delay"] = io["x.count"] * 1000


def _slow(io: Any) -> None:
    io["x.ticks"] = io["x.ticks"] + 1


def _engine() -> Engine:
    e = Engine(clock="virtual", cycle="1ms")
    for name, area, t in (
        ("x.count", "memory", DINT),
        ("x.level", "output", REAL),
        ("x.on", "output", BOOL),
        ("x.avg", "memory", LREAL),
        ("x.delay", "memory", TIME),
        ("x.ticks", "memory", DINT),
    ):
        e.declare(name, area, t)
    e.add_task("main", period="1ms")
    e.add_task("slow", period="5ms")
    e.add_program(_plant, task="main", name="plant")
    e.add_program(_slow, task="slow", name="slow")
    e.start()
    return e


def _record(path: Path, **options: Any) -> None:
    e = _engine()
    try:
        rec = st.start_trace(e, path, block_rows=8, **options)
        e.run_cycles(20)
        e.force("x.on", True)
        e.run_cycles(10)
        e.unforce("x.on")
        e.run_cycles(30)
        e.stop()
        e.run_cycles(2)
        rec.stop()
    finally:
        e.close()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Real traces: continuous (with events), triggered (trigger frames), and the
    continuous one with a block dropped for a gap frame, as a recorder writes it."""
    d = tmp_path_factory.mktemp("seeds")
    _record(d / "cont.trace")
    _record(d / "trig.trace", trigger="rising:x.on", pre=3, post=3, captures=2)
    records = [rec for _, rec in frames_at((d / "cont.trace").read_bytes())]
    summary = next(r for r in records if r["type"] == "index")["summary"]
    kept: list[dict[str, Any]] = []
    for rec in records:
        if rec["type"] == "block" and rec["seq"] == 2:
            kept.append(
                {
                    "type": "gap",
                    "before_seq": 3,
                    "blocks": 1,
                    "rows": rec["rows"],
                    "first_cycle": rec["first_cycle"],
                    "last_cycle": rec["last_cycle"],
                    "t_first_ns": rec["t_first_ns"],
                    "t_last_ns": rec["t_last_ns"],
                    "reason": "writer_behind",
                }
            )
        elif rec["type"] not in ("index", "end"):
            kept.append(rec)
    gap = build(kept, summary=summary)
    out = [(d / "cont.trace").read_bytes(), (d / "trig.trace").read_bytes(), gap]
    for data in out:
        st.load(_write(d / "check.trace", data))  # every seed reads cleanly
    return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- mutations -----------------------------------------------------------------------------

_VALUES = hs.recursive(
    hs.none()
    | hs.booleans()
    | hs.integers(-(2**63), 2**64 - 1)
    | hs.floats()
    | hs.text(max_size=8)
    | hs.binary(max_size=64),
    lambda inner: (
        hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


@hs.composite
def byte_mutations(draw: hs.DrawFn, data: bytes) -> bytes:
    """Flipped bits, overwritten bytes, a cut, a duplicated or deleted range."""
    buf = bytearray(data)
    # Positions are drawn as a frame and a place in it, so that every frame (not mostly
    # the magic and the header, which small numbers would favour) gets hit.
    starts = [0, *(off for off, _ in frames_at(data)), len(data)]
    for _ in range(draw(hs.integers(1, 3))):
        kind = draw(hs.sampled_from(["flip", "overwrite", "cut", "duplicate", "delete"]))
        if not buf:
            break
        k = draw(hs.integers(0, len(starts) - 2))
        at = min(starts[k] + draw(hs.integers(0, starts[k + 1] - starts[k])), len(buf) - 1)
        if kind == "flip":
            buf[at] ^= 1 << draw(hs.integers(0, 7))
        elif kind == "overwrite":
            new = draw(hs.binary(min_size=1, max_size=16))
            buf[at : at + len(new)] = new
        elif kind == "cut":
            del buf[at:]
        else:
            end = min(len(buf), at + draw(hs.integers(1, 4096)))
            if kind == "delete":
                del buf[at:end]
            else:
                to = draw(hs.integers(0, len(buf)))
                buf[to:to] = buf[at:end]
    return bytes(buf)


def _slots(node: Any, out: list[tuple[Any, Any]], depth: int = 0) -> None:
    """Every (container, key) in a decoded record, to pick one to change."""
    if depth > 4:
        return
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        out.append((node, key))
        if isinstance(value, (dict, list)):
            _slots(value, out, depth + 1)


def _replacement(old: Any) -> hs.SearchStrategy[Any]:
    """A new value for ``old``: mostly of the same type (an integer out of range, column
    bytes of the right length but any content: NaN, infinities, times that go back,
    BOOL bytes other than 0 and 1), sometimes anything."""
    if isinstance(old, bool):
        same: hs.SearchStrategy[Any] = hs.booleans()
    elif isinstance(old, int):
        edges = [0, 1, -1, old + 1, max(old - 1, -(2**63)), 2**63 - 1, 2**64 - 1, -(2**63)]
        same = hs.sampled_from(edges) | hs.integers(-(2**63), 2**64 - 1)
    elif isinstance(old, bytes):
        same = hs.binary(min_size=len(old), max_size=len(old)) | hs.binary(max_size=64)
    elif isinstance(old, str):
        same = hs.text(max_size=12)
    else:
        return _VALUES
    return same | _VALUES


@hs.composite
def record_mutations(draw: hs.DrawFn, data: bytes) -> bytes:
    """One record changed (a value replaced, removed or repeated), every frame framed
    again with a right checksum, and the index kept (now stale) or rebuilt."""
    frames = [rec for _, rec in frames_at(data)]
    body = [r for r in frames if r.get("type") not in ("end",)]
    rec = draw(hs.sampled_from(body))
    slots: list[tuple[Any, Any]] = []
    _slots(rec, slots)
    if slots:
        container, key = draw(hs.sampled_from(slots))
        how = draw(hs.sampled_from(["replace", "remove", "repeat"]))
        if how == "replace":
            container[key] = draw(_replacement(container[key]))
        elif how == "remove":
            del container[key]
        elif isinstance(container, list):
            container[key:key] = [container[key]] * draw(hs.integers(1, 2000))
        else:
            container[key] = [container[key]] * draw(hs.integers(1, 50))
    if draw(hs.integers(0, 3)) > 0:  # mostly a right index, sometimes the stale one
        summary = next((r.get("summary") for r in body if r.get("type") == "index"), {})
        return build([r for r in body if r.get("type") != "index"], summary=summary or {})
    out = bytearray(MAGIC)
    index_at = None
    for r in body:
        if r.get("type") == "index":
            index_at = len(out)
        out += frame(r)
    if index_at is not None:
        out += end_frame(index_at)
    return bytes(out)


# -- the commands ------------------------------------------------------------------------

_PARSER = build_parser()


def _commands(p: Path, seed: Path, out: Path) -> list[list[str]]:
    return [
        ["trace", "info", str(p), "--json"],
        ["trace", "info", str(p), "--no-verify"],
        ["trace", "show", str(p), "-s", "x.level,x.on", "--limit", "0"],
        ["trace", "show", str(p), "-s", "x.count", "--no-verify", "--changes-only"],
        ["trace", "stats", str(p)],
        ["trace", "stats", str(p), "--no-verify", "--json", "--from", "5ms"],
        ["trace", "events", str(p)],
        ["trace", "plot", str(p), "-s", "x.level,x.on", "--json", "--width", "40"],
        ["trace", "export", str(p), "-o", str(out / "o.csv")],
        ["trace", "export", str(p), "-o", str(out / "o.vcd"), "--no-verify"],
        ["trace", "export", str(p), "-o", str(out / "o.parquet")],
        ["trace", "diff", str(seed), str(p), "--tol", "0.5"],
    ]


def _run(argv: list[str]) -> None:
    """Runs one command as the CLI would, without the CLI's last-resort guard: anything
    but a TraceError escapes to fail the test."""
    args: argparse.Namespace = _PARSER.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func.__wrapped__
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            assert func(args) in (0, 1)
        except softplc.TraceError as e:
            text = str(e)
            assert "\n" not in text and "unexpectedly" not in text, text


def _every_command_is_bounded(data: bytes, seed: bytes, d: Path) -> None:
    p, s = _write(d / "m.trace", data), _write(d / "seed.trace", seed)
    for argv in _commands(p, s, d):
        tracemalloc.start()
        t0 = time.monotonic()
        try:
            _run(argv)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert time.monotonic() - t0 < SECONDS, argv
        assert peak < PEAK_BYTES, (argv, peak)
    for verify in (True, False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", st.TraceWarning)  # a cut file: expected
                tr = st.load(p, verify=verify)
        except softplc.TraceError:
            continue
        try:
            for name in tr.names:
                np.asarray(tr[name]).sum()
            tr.verify()
        except softplc.TraceError:
            pass
        finally:
            tr.close()


_BOUNDED = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@settings(_BOUNDED, max_examples=50)
@given(data=hs.data())
def test_mutated_bytes_never_hang_exhaust_or_escape_as_another_error(seeds, tmp_path_factory, data):
    seed = data.draw(hs.sampled_from(seeds))
    _every_command_is_bounded(data.draw(byte_mutations(seed)), seed, tmp_path_factory.mktemp("b"))


@settings(_BOUNDED, max_examples=50)
@given(data=hs.data())
def test_mutated_records_with_right_checksums_give_only_trace_errors(seeds, tmp_path_factory, data):
    seed = data.draw(hs.sampled_from(seeds))
    _every_command_is_bounded(data.draw(record_mutations(seed)), seed, tmp_path_factory.mktemp("r"))


@pytest.mark.slow
@settings(_BOUNDED, max_examples=1500)
@given(data=hs.data())
def test_many_mutated_files_never_hang_exhaust_or_escape_as_another_error(
    seeds, tmp_path_factory, data
):
    seed = data.draw(hs.sampled_from(seeds))
    mutation = data.draw(hs.sampled_from([byte_mutations, record_mutations]))
    _every_command_is_bounded(data.draw(mutation(seed)), seed, tmp_path_factory.mktemp("s"))

"""Plots of traces: in the terminal (plotext) and as pictures (matplotlib)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from softplc.trace._analysis import minmax_indices
from softplc.trace._errors import TraceError
from softplc.trace._reader import Signal, Trace

__all__ = ["PICTURE_SUFFIXES", "picture_plot", "series", "terminal_plot"]

PICTURE_SUFFIXES = (".png", ".svg", ".pdf")


def _steps(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x0,v0) (x1,v0) (x1,v1) (x2,v1) ...: lines between points go across, then up."""
    if len(x) < 2:
        return x, v
    return np.repeat(x, 2)[1:], np.repeat(v, 2)[:-1]


def series(tr: Trace, sig: Signal, sl: slice, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(t seconds, values as float) of a signal over a row window, downsampled to about
    ``2 * buckets`` points keeping each bucket's minimum and maximum. BOOL and integer
    signals come back as steps: every kept point is repeated just before the next one,
    so lines between points are horizontal then vertical. Where rows were lost (see
    :meth:`Trace.gap_before`) a NaN point breaks the line.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> p = os.path.join(tempfile.mkdtemp(), "s.trace")
        >>> _ = st.record_arrays(p, {"v": ("REAL", [1.0, 2.0, 3.0])})
        >>> tr = st.load(p)
        >>> series(tr, tr.signal("v"), slice(None), 16)[1].tolist()
        [1.0, 2.0, 3.0]
    """
    start, stop, _ = sl.indices(tr.rows)
    stop = max(start, stop)
    t = (tr.times_ns(slice(start, stop)) - np.uint64(tr.t0_ns)).astype(np.float64) / 1e9
    y = tr.read(sig, slice(start, stop))
    gaps = tr.gap_before(slice(start, stop))
    cuts = [0, *[int(g) for g in np.flatnonzero(gaps) if g > 0], len(y)]
    xs: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    for a, b in itertools.pairwise(cuts):
        if b <= a:
            continue
        # Each run of rows gets buckets in proportion to its length.
        k = max(1, round(buckets * (b - a) / max(len(y), 1)))
        idx = a + minmax_indices(y[a:b], k)
        x, v = t[idx], y[idx].astype(np.float64)
        if sig.is_time:
            v = v / 1e6
        if not sig.is_float:
            x, v = _steps(x, v)
        if xs:
            xs.append(np.array([np.nan]))
            vs.append(np.array([np.nan]))
        xs.append(x)
        vs.append(v)
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(vs)


def _segments(x: np.ndarray, y: np.ndarray) -> list[tuple[list[float], list[float]]]:
    """The runs of points between the NaN breaks of :func:`series`."""
    breaks = np.flatnonzero(np.isnan(x))
    cuts = [-1, *breaks.tolist(), len(x)]
    return [
        (x[a + 1 : b].tolist(), y[a + 1 : b].tolist())
        for a, b in itertools.pairwise(cuts)
        if b > a + 1
    ]


def _label(sig: Signal) -> str:
    unit = "ms" if sig.is_time else sig.unit
    return f"{sig.name} [{unit}]" if unit else sig.name


def terminal_plot(
    tr: Trace, signals: list[Signal], sl: slice, *, width: int, height: int, color: bool
) -> str:
    """The plot as text: one panel per signal, stacked, sharing the time axis."""
    import plotext  # type: ignore[import-untyped]

    fig = getattr(plotext, "figure", None)
    if fig is None or not hasattr(fig, "subplots"):
        raise TraceError("softplc trace plot needs plotext >= 6 (pip install -U plotext)")
    fig.clear()
    plotext.terminal.limit(False, False)
    fig.plot_size(width, height)
    fig.subplots(len(signals), 1)
    for i, sig in enumerate(signals, start=1):
        # plotext draws a 1 x 1 grid on the figure itself (it has no subplot (1, 1)).
        panel = fig if len(signals) == 1 else fig.subplot(i, 1)
        x, y = series(tr, sig, sl, max(16, width))
        segments = _segments(x, y)
        if segments:
            # Lost rows break the line: one signal whose runs are not joined.
            px = [v for xs, _ in segments for v in xs]
            py = [v for _, ys in segments for v in ys]
            line = panel.signal(px, py).lines()
            at = 0
            for xs, _ in segments[:-1]:
                at += len(xs)
                line.line(at, False)
            panel.draw(line)
        panel.title(_label(sig))
        if sig.is_bool:
            panel.ruler("y").lim(-0.1, 1.1)
        if i == len(signals):
            panel.label("t [s]", axis=0)
    if not color:
        fig.theme("clear")
    return str(fig.build().string(colorless=not color))


def picture_plot(
    tr: Trace, signals: list[Signal], sl: slice, out: str, *, title: str | None = None
) -> None:
    """Saves the plot as PNG, SVG or PDF (chosen by the suffix of ``out``)."""
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in PICTURE_SUFFIXES:
        raise TraceError(
            f"--out {out}: unknown picture type {suffix or '(none)'} "
            f"(use {', '.join(PICTURE_SUFFIXES)})"
        )
    try:
        import matplotlib
    except ImportError:
        raise TraceError("--out needs matplotlib (pip install matplotlib)") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(signals)
    fig: Any
    fig, axes = plt.subplots(n, 1, sharex=True, figsize=(10, 1.2 + 1.8 * n), squeeze=False)
    try:
        for ax, sig in zip(axes[:, 0], signals, strict=False):
            x, y = series(tr, sig, sl, 2000)
            ax.plot(x, y, linewidth=0.9)
            ax.set_ylabel(_label(sig), rotation=0, ha="right", va="center")
            ax.grid(True, alpha=0.3)
            if sig.is_bool:
                ax.set_yticks([0, 1], ["FALSE", "TRUE"])
                ax.set_ylim(-0.15, 1.15)
        axes[-1, 0].set_xlabel("t [s]")
        fig.suptitle(title or os.path.basename(tr.path))
        fig.tight_layout()
        try:
            fig.savefig(out)
        except OSError as e:
            raise TraceError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        plt.close(fig)

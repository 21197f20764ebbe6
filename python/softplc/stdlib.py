"""The IEC standard library: function blocks and functions, reference form.

Every name here exists twice: in this module, as plain Python that reference mode runs,
and in the compiled form (Rust, ``softplc-vm``). Both follow the same definitions
(``docs/programs.md``; timers, counters, edges and bistables exactly as
``shared/reference/iec-function-blocks.md``) and agree bit for bit, which the
differential tests check.

Function blocks are declared as program attributes and called with keyword inputs;
inputs keep their value between calls::

    @program
    class Door:
        button = Input(BOOL)
        lamp = Output(BOOL)
        hold = TON(PT=s(2))

        def scan(self):
            self.hold(IN=self.button)
            self.lamp = self.hold.Q

Example:
    >>> t = TON(PT=ms(100))
    >>> t.PT, t.Q
    (100000000, False)
    >>> LIMIT(0, 150, 100), MAX(1, 7, 3), SEL(True, 1.5, 2.5)
    (100, 7, 2.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

from softplc import _scanstate
from softplc._varref import resolve
from softplc.iectypes import (
    ANY_INT,
    ANY_REAL,
    FLOAT_TYPES,
    INT_BITS,
    INT_TYPES,
    Time,
    TypeRuleError,
    coerce,
    common,
    compare,
    convert,
    f32,
    float_to_int,
    make,
    type_of,
    wrap,
)

__all__ = [
    "ABS",
    "ACOS",
    "AGE",
    "ASIN",
    "ATAN",
    "BAD",
    "CONVERSIONS",
    "COS",
    "CTD",
    "CTU",
    "CTUD",
    "EXP",
    "FB_TYPES",
    "FUNCTIONS",
    "F_TRIG",
    "GET_BIT",
    "GOOD",
    "HYSTERESIS",
    "LIMIT",
    "LN",
    "LOG",
    "MAX",
    "MIN",
    "MUX",
    "PID",
    "QUALITY",
    "RAMP",
    "RS",
    "R_TRIG",
    "SEL",
    "SET_BIT",
    "SIN",
    "SQRT",
    "SR",
    "STALE",
    "TAN",
    "TIME_TO_MS",
    "TIME_TO_S",
    "TOF",
    "TON",
    "TP",
    "TRUNC",
    "FunctionBlock",
    "ms",
    "now",
    "s",
    "us",
]


def now() -> Time:
    """The current cycle's ``now`` as a TIME value (ns). Every program and block in a
    cycle sees the same value; in virtual time it is the scheduled start of the cycle.

    Raises :class:`softplc.StateError` outside a scan.
    """
    if not _scanstate.current_io:
        from softplc.errors import StateError

        raise StateError("now() is only available during a scan")
    return Time(_scanstate.current_io[-1].now_ns)


def _time_from(v: Any, scale: int, what: str) -> Time:
    t = type_of(v)
    if t in INT_TYPES or t == ANY_INT:
        return Time(wrap(int(v) * scale, "TIME"))
    if t in FLOAT_TYPES or t == ANY_REAL:
        return Time(float_to_int(float(v) * scale, "TIME"))
    raise TypeRuleError(f"{what}() needs a number, got {t}")


def ms(value: Any) -> Time:
    """Milliseconds as TIME. ``ms(500) == 500_000_000``; floats round to the nearest ns.

    Example:
        >>> ms(1.5)
        1500000
    """
    return _time_from(value, 1_000_000, "ms")


def s(value: Any) -> Time:
    """Seconds as TIME. ``s(5) == 5_000_000_000``.

    Example:
        >>> s(0.25)
        250000000
    """
    return _time_from(value, 1_000_000_000, "s")


def us(value: Any) -> Time:
    """Microseconds as TIME. ``us(5) == 5_000``."""
    return _time_from(value, 1_000, "us")


def TIME_TO_MS(t: Any) -> Any:
    """A TIME as whole milliseconds (LINT, truncated toward zero).

    Example:
        >>> TIME_TO_MS(ms(1500))
        1500
    """
    v = int(coerce(t, "TIME"))
    q = abs(v) // 1_000_000
    return make("LINT", q if v >= 0 else -q)


def TIME_TO_S(t: Any) -> Any:
    """A TIME in seconds (LREAL).

    Example:
        >>> TIME_TO_S(ms(1500))
        1.5
    """
    return make("LREAL", float(int(coerce(t, "TIME"))) / 1e9)


# ---------------------------------------------------------------------------------------
# Data quality and age of inputs

#: Quality codes returned by :func:`QUALITY` (USINT): fresh data from a working device
#: (or an input no driver supplies).
GOOD = make("USINT", 0)
#: The device failed; the value is the last one or a declared substitute.
BAD = make("USINT", 1)
#: No fresh data within the expected period (also before a device's first answer).
STALE = make("USINT", 2)

_QUALITY_CODES = {"good": GOOD, "bad": BAD, "stale": STALE}
_TIME_MAX = (1 << 63) - 1


def QUALITY(var: Any) -> Any:
    """The data quality of an input, as USINT: :data:`GOOD` (0), :data:`BAD` (1) or
    :data:`STALE` (2). Drivers set it (Modbus: bad after ``fail_after`` failed polls,
    stale when the newest data is older than ``stale_ms``); inputs written from Python
    or by a plant model are good.

    The argument names the variable itself, not a value: ``QUALITY(self.level)`` or
    ``QUALITY(self.levels[i])``, an input of the program, directly in the call.
    Anything else is an error (a compile error in compiled programs).

    Example (inside a program's ``scan``)::

        if QUALITY(self.level) != GOOD:
            self.pump = False
    """
    io, index = resolve("QUALITY")
    return _QUALITY_CODES[io.quality(index)]


def AGE(var: Any) -> Time:
    """The age of an input's data, as TIME: the cycle's ``now`` minus the time the data
    was acquired (a Modbus poll's start, the cycle an ``engine.write`` landed in, the
    plant model's step). Never negative.

    Takes the variable as :func:`QUALITY` does: ``AGE(self.level)``.

    Example (inside a program's ``scan``)::

        self.level_old = AGE(self.level) > s(2)
    """
    io, index = resolve("AGE")
    return Time(min(int(io.age_ns(index)), _TIME_MAX))


# ---------------------------------------------------------------------------------------
# Function blocks


class FunctionBlock:
    """Base of the standard function blocks (reference form).

    ``FIELDS`` lists ``(name, type, role, default)`` in the cell order of the compiled
    form; ``role`` is ``input``, ``output`` or ``internal``. Inputs are set by keyword
    (at declaration, in a call, or by assignment) and keep their value; outputs are
    read-only from outside.
    """

    FIELDS: ClassVar[tuple[tuple[str, str, str, Any], ...]] = ()
    _ROLES: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._ROLES = {n: (t, r) for n, t, r, _ in cls.FIELDS}

    def __init__(self, **params: Any) -> None:
        d = self.__dict__
        for name, ty, _, default in self.FIELDS:
            d[name] = make(ty, default)
        for k, v in params.items():
            self._set_input(k, v)

    def _set_input(self, name: str, value: Any) -> None:
        spec = self._ROLES.get(name)
        if spec is None or spec[1] != "input":
            inputs = ", ".join(n for n, _, r, _ in self.FIELDS if r == "input")
            if spec is None:
                raise TypeError(f"{type(self).__name__} has no input {name!r} (inputs: {inputs})")
            raise TypeError(f"{type(self).__name__}.{name} is an output, not an input")
        self.__dict__[name] = coerce(value, spec[0])

    def __setattr__(self, name: str, value: Any) -> None:
        self._set_input(name, value)

    def __call__(self, **inputs: Any) -> None:
        for k, v in inputs.items():
            self._set_input(k, v)
        self._exec(int(now()))

    def _exec(self, now_ns: int) -> None:  # pragma: no cover - every block overrides
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {n: self.__dict__[n] for n, _, r, _ in self.FIELDS if r == "input"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


_TIMER_FIELDS = (
    ("IN", "BOOL", "input", False),
    ("PT", "TIME", "input", 0),
    ("Q", "BOOL", "output", False),
    ("ET", "TIME", "output", 0),
    ("STATE", "USINT", "internal", 0),
    ("PREV_IN", "BOOL", "internal", False),
    ("START", "TIME", "internal", 0),
)


class TON(FunctionBlock):
    """On-delay timer: Q goes TRUE once IN has been TRUE for PT (timing starts at the
    rising edge of IN); ET is the elapsed time, at most PT.

    Inputs IN (BOOL), PT (TIME); outputs Q (BOOL), ET (TIME).
    """

    FIELDS = _TIMER_FIELDS

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        inp = d["IN"]
        if d["STATE"] == 0 and not d["PREV_IN"] and inp:
            d["STATE"] = 1
            d["Q"] = False
            d["START"] = Time(now_ns)
        elif not inp:
            d["ET"] = Time(0)
            d["Q"] = False
            d["STATE"] = 0
        elif d["STATE"] == 1:
            if int(d["START"]) + int(d["PT"]) <= now_ns:
                d["STATE"] = 2
                d["Q"] = True
                d["ET"] = d["PT"]
            else:
                d["ET"] = Time(wrap(now_ns - int(d["START"]), "TIME"))
        d["PREV_IN"] = inp


class TOF(FunctionBlock):
    """Off-delay timer: Q follows IN up and stays TRUE for PT after IN falls
    (retriggerable); after expiry ET holds PT while IN stays FALSE.

    Inputs IN (BOOL), PT (TIME); outputs Q (BOOL), ET (TIME).
    """

    FIELDS = _TIMER_FIELDS

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        inp = d["IN"]
        if d["STATE"] == 0 and d["PREV_IN"] and not inp:
            d["STATE"] = 1
            d["START"] = Time(now_ns)
        elif inp:
            d["ET"] = Time(0)
            d["STATE"] = 0
        elif d["STATE"] == 1:
            if int(d["START"]) + int(d["PT"]) <= now_ns:
                d["STATE"] = 2
                d["ET"] = d["PT"]
            else:
                d["ET"] = Time(wrap(now_ns - int(d["START"]), "TIME"))
        d["Q"] = bool(inp or d["STATE"] == 1)
        d["PREV_IN"] = inp


class TP(FunctionBlock):
    """Pulse timer: a rising edge of IN gives a pulse of length PT on Q; edges during
    the pulse are ignored.

    Inputs IN (BOOL), PT (TIME); outputs Q (BOOL), ET (TIME).
    """

    FIELDS = _TIMER_FIELDS

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        inp = d["IN"]
        if d["STATE"] == 0 and not d["PREV_IN"] and inp:
            d["STATE"] = 1
            d["Q"] = True
            d["START"] = Time(now_ns)
        elif d["STATE"] == 1:
            if int(d["START"]) + int(d["PT"]) <= now_ns:
                d["STATE"] = 2
                d["Q"] = False
                d["ET"] = d["PT"]
            else:
                d["ET"] = Time(wrap(now_ns - int(d["START"]), "TIME"))
        if d["STATE"] == 2 and not inp:
            d["ET"] = Time(0)
            d["STATE"] = 0
        d["PREV_IN"] = inp


class CTU(FunctionBlock):
    """Up counter: each rising edge of CU adds one to CV, up to PV; R resets CV to 0.
    Q is CV >= PV.

    Inputs CU, R (BOOL), PV (INT); outputs Q (BOOL), CV (INT).
    """

    FIELDS = (
        ("CU", "BOOL", "input", False),
        ("R", "BOOL", "input", False),
        ("PV", "INT", "input", 0),
        ("Q", "BOOL", "output", False),
        ("CV", "INT", "output", 0),
        ("CU_M", "BOOL", "internal", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        edge = d["CU"] and not d["CU_M"]
        d["CU_M"] = d["CU"]
        cv, pv = int(d["CV"]), int(d["PV"])
        if d["R"]:
            cv = 0
        elif edge and cv < pv:
            cv += 1
        d["CV"] = make("INT", cv)
        d["Q"] = cv >= pv


class CTD(FunctionBlock):
    """Down counter: each rising edge of CD subtracts one from CV, down to 0; LD loads
    PV. Q is CV <= 0.

    Inputs CD, LD (BOOL), PV (INT); outputs Q (BOOL), CV (INT).
    """

    FIELDS = (
        ("CD", "BOOL", "input", False),
        ("LD", "BOOL", "input", False),
        ("PV", "INT", "input", 0),
        ("Q", "BOOL", "output", False),
        ("CV", "INT", "output", 0),
        ("CD_M", "BOOL", "internal", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        edge = d["CD"] and not d["CD_M"]
        d["CD_M"] = d["CD"]
        cv, pv = int(d["CV"]), int(d["PV"])
        if d["LD"]:
            cv = pv
        elif edge and cv > 0:
            cv -= 1
        d["CV"] = make("INT", cv)
        d["Q"] = cv <= 0


class CTUD(FunctionBlock):
    """Up-down counter: R (priority) resets, LD loads PV, otherwise a CU edge counts up
    to PV and a CD edge down to 0 (simultaneous edges cancel). QU is CV >= PV, QD is
    CV <= 0.

    Inputs CU, CD, R, LD (BOOL), PV (INT); outputs QU, QD (BOOL), CV (INT).
    """

    FIELDS = (
        ("CU", "BOOL", "input", False),
        ("CD", "BOOL", "input", False),
        ("R", "BOOL", "input", False),
        ("LD", "BOOL", "input", False),
        ("PV", "INT", "input", 0),
        ("QU", "BOOL", "output", False),
        ("QD", "BOOL", "output", False),
        ("CV", "INT", "output", 0),
        ("CU_M", "BOOL", "internal", False),
        ("CD_M", "BOOL", "internal", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        down = d["CD"] and not d["CD_M"]
        d["CD_M"] = d["CD"]
        up = d["CU"] and not d["CU_M"]
        d["CU_M"] = d["CU"]
        cv, pv = int(d["CV"]), int(d["PV"])
        if d["R"]:
            cv = 0
        elif d["LD"]:
            cv = pv
        elif not (up and down):
            if up and cv < pv:
                cv += 1
            elif down and cv > 0:
                cv -= 1
        d["CV"] = make("INT", cv)
        d["QU"] = cv >= pv
        d["QD"] = cv <= 0


class R_TRIG(FunctionBlock):
    """Rising edge: Q is TRUE for one call when CLK goes from FALSE to TRUE (also on
    the first call if CLK starts TRUE).

    Input CLK (BOOL); output Q (BOOL).
    """

    FIELDS = (
        ("CLK", "BOOL", "input", False),
        ("Q", "BOOL", "output", False),
        ("M", "BOOL", "internal", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        clk = d["CLK"]
        d["Q"] = clk and not d["M"]
        d["M"] = clk


class F_TRIG(FunctionBlock):
    """Falling edge: Q is TRUE for one call when CLK goes from TRUE to FALSE. No pulse
    on the first call (the memory starts TRUE, as in OpenPLC, 4diac and RuSTy).

    Input CLK (BOOL); output Q (BOOL).
    """

    FIELDS = (
        ("CLK", "BOOL", "input", False),
        ("Q", "BOOL", "output", False),
        ("M", "BOOL", "internal", True),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        clk = d["CLK"]
        d["Q"] = not clk and not d["M"]
        d["M"] = not clk


class SR(FunctionBlock):
    """Set-dominant bistable: ``Q1 = S1 or (not R and Q1)``.

    Inputs S1, R (BOOL); output Q1 (BOOL).
    """

    FIELDS = (
        ("S1", "BOOL", "input", False),
        ("R", "BOOL", "input", False),
        ("Q1", "BOOL", "output", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        d["Q1"] = bool(d["S1"] or (not d["R"] and d["Q1"]))


class RS(FunctionBlock):
    """Reset-dominant bistable: ``Q1 = not R1 and (S or Q1)``.

    Inputs S, R1 (BOOL); output Q1 (BOOL).
    """

    FIELDS = (
        ("S", "BOOL", "input", False),
        ("R1", "BOOL", "input", False),
        ("Q1", "BOOL", "output", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        d["Q1"] = bool(not d["R1"] and (d["S"] or d["Q1"]))


class HYSTERESIS(FunctionBlock):
    """Two-point switch: Q becomes TRUE when XIN1 > XIN2 + EPS, FALSE when
    XIN1 < XIN2 - EPS, and holds in between (REAL arithmetic).

    Inputs XIN1, XIN2, EPS (REAL); output Q (BOOL).
    """

    FIELDS = (
        ("XIN1", "REAL", "input", 0.0),
        ("XIN2", "REAL", "input", 0.0),
        ("EPS", "REAL", "input", 0.0),
        ("Q", "BOOL", "output", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        x1, x2, eps = float(d["XIN1"]), float(d["XIN2"]), float(d["EPS"])
        if x1 > f32(x2 + eps):
            d["Q"] = True
        elif x1 < f32(x2 - eps):
            d["Q"] = False


class RAMP(FunctionBlock):
    """Linear ramp: while RUN, XOUT goes from X0 to X1 in TR (timed from the rising edge
    of RUN) and then holds X1; while not RUN, XOUT follows X0. BUSY is TRUE while
    ramping. TR <= 0 jumps to X1 at once. X0 and X1 are read at every call: hold them
    steady during a ramp.

    Inputs RUN (BOOL), X0, X1 (REAL), TR (TIME); outputs XOUT (REAL), BUSY (BOOL).
    """

    FIELDS = (
        ("RUN", "BOOL", "input", False),
        ("X0", "REAL", "input", 0.0),
        ("X1", "REAL", "input", 0.0),
        ("TR", "TIME", "input", 0),
        ("XOUT", "REAL", "output", 0.0),
        ("BUSY", "BOOL", "output", False),
        ("PREV_RUN", "BOOL", "internal", False),
        ("START", "TIME", "internal", 0),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        run = d["RUN"]
        if run and not d["PREV_RUN"]:
            d["START"] = Time(now_ns)
        x0, x1, tr = float(d["X0"]), float(d["X1"]), int(d["TR"])
        if not run:
            d["XOUT"] = make("REAL", x0)
            d["BUSY"] = False
        else:
            elapsed = wrap(now_ns - int(d["START"]), "TIME")
            if tr <= 0 or elapsed >= tr:
                d["XOUT"] = make("REAL", x1)
                d["BUSY"] = False
            else:
                frac = float(elapsed) / float(tr)
                d["XOUT"] = make("REAL", x0 + (x1 - x0) * frac)
                d["BUSY"] = True
        d["PREV_RUN"] = run


class PID(FunctionBlock):
    """PID controller (position form, computed in LREAL).

    ``XOUT = KP * (e + 1/TI * integral(e) + TD * de/dt)`` with ``e = SP - PV`` and the
    time step taken from ``now`` (the first call has dt = 0). Output limited to
    [OUT_MIN, OUT_MAX] with back-calculation anti-windup (the integral is corrected so
    the sum equals the limit). Manual mode (AUTO = FALSE): XOUT follows X0 (limited) and
    the integral tracks it, so switching to AUTO is bumpless. TI = 0 disables the
    integral, TD = 0 the derivative.

    Inputs AUTO (BOOL, default TRUE), PV, SP, X0, KP (REAL, KP default 1.0), TI, TD
    (TIME), OUT_MIN, OUT_MAX (REAL, default 0.0 and 100.0); output XOUT (REAL).
    """

    FIELDS = (
        ("AUTO", "BOOL", "input", True),
        ("PV", "REAL", "input", 0.0),
        ("SP", "REAL", "input", 0.0),
        ("X0", "REAL", "input", 0.0),
        ("KP", "REAL", "input", 1.0),
        ("TI", "TIME", "input", 0),
        ("TD", "TIME", "input", 0),
        ("OUT_MIN", "REAL", "input", 0.0),
        ("OUT_MAX", "REAL", "input", 100.0),
        ("XOUT", "REAL", "output", 0.0),
        ("ITERM", "LREAL", "internal", 0.0),
        ("E_PREV", "LREAL", "internal", 0.0),
        ("T_PREV", "TIME", "internal", 0),
        ("INIT", "BOOL", "internal", False),
    )

    def _exec(self, now_ns: int) -> None:
        d = self.__dict__
        e = float(d["SP"]) - float(d["PV"])
        lo, hi = float(d["OUT_MIN"]), float(d["OUT_MAX"])
        kp = float(d["KP"])
        ti, td = int(d["TI"]), int(d["TD"])
        dt = float(wrap(now_ns - int(d["T_PREV"]), "TIME")) * 1e-9 if d["INIT"] else 0.0
        i_term = float(d["ITERM"])
        if not d["AUTO"]:
            x = float(d["X0"])
            if x > hi:
                x = hi
            elif x < lo:
                x = lo
            out = x
            i_term = out - kp * e
        else:
            p = kp * e
            deriv = 0.0
            if td > 0 and dt > 0.0:
                deriv = kp * (float(td) * 1e-9) * (e - float(d["E_PREV"])) / dt
            if ti > 0 and dt > 0.0:
                i_term += kp * dt / (float(ti) * 1e-9) * e
            x = p + i_term + deriv
            if x > hi:
                i_term -= x - hi
                x = hi
            elif x < lo:
                i_term += lo - x
                x = lo
            out = x
        d["ITERM"] = make("LREAL", i_term)
        d["E_PREV"] = make("LREAL", e)
        d["T_PREV"] = Time(now_ns)
        d["INIT"] = True
        d["XOUT"] = make("REAL", out)


#: The standard function blocks by name.
FB_TYPES: dict[str, type[FunctionBlock]] = {
    c.__name__: c
    for c in (TON, TOF, TP, CTU, CTD, CTUD, R_TRIG, F_TRIG, SR, RS, HYSTERESIS, RAMP, PID)
}


# ---------------------------------------------------------------------------------------
# Functions


def ABS(x: Any) -> Any:
    """Absolute value, same type (integers wrap: ABS of INT -32768 is -32768)."""
    t = type_of(x)
    if t in ("BOOL", "TIME"):
        raise TypeRuleError(f"ABS needs a number, got {t}")
    return abs(x)


def _math(name: str, fn: Any, x: Any) -> Any:
    t = type_of(x)
    if t not in ("REAL", "LREAL", ANY_REAL, ANY_INT):
        raise TypeRuleError(f"{name} needs REAL or LREAL, got {t} (convert with TO_REAL)")
    try:
        r = fn(float(x))
    except (ValueError, OverflowError):
        raise ArithmeticError(
            f"math error in {name} (argument out of its domain or result overflows)"
        ) from None
    return make("REAL" if t == "REAL" else "LREAL", r)


def SQRT(x: Any) -> Any:
    """Square root (REAL or LREAL); a negative argument faults."""
    return _math("SQRT", math.sqrt, x)


def SIN(x: Any) -> Any:
    """Sine (radians)."""
    return _math("SIN", math.sin, x)


def COS(x: Any) -> Any:
    """Cosine (radians)."""
    return _math("COS", math.cos, x)


def TAN(x: Any) -> Any:
    """Tangent (radians)."""
    return _math("TAN", math.tan, x)


def ASIN(x: Any) -> Any:
    """Arc sine; an argument outside [-1, 1] faults."""
    return _math("ASIN", math.asin, x)


def ACOS(x: Any) -> Any:
    """Arc cosine; an argument outside [-1, 1] faults."""
    return _math("ACOS", math.acos, x)


def ATAN(x: Any) -> Any:
    """Arc tangent."""
    return _math("ATAN", math.atan, x)


def EXP(x: Any) -> Any:
    """e to the power x; overflow of LREAL faults (REAL rounds to infinity)."""
    return _math("EXP", math.exp, x)


def LN(x: Any) -> Any:
    """Natural logarithm; x <= 0 faults."""
    return _math("LN", math.log, x)


def LOG(x: Any) -> Any:
    """Base-10 logarithm; x <= 0 faults."""
    return _math("LOG", math.log10, x)


def _common_of(name: str, values: tuple[Any, ...]) -> str:
    t = type_of(values[0])
    for v in values[1:]:
        u = type_of(v)
        c = "TIME" if t == u == "TIME" else ("BOOL" if t == u == "BOOL" else common(t, u))
        if c is None:
            raise TypeRuleError(f"{name}: cannot mix {t} and {u}")
        t = c
    return t


def MIN(*values: Any) -> Any:
    """The smallest of two or more values (converted to their common type)."""
    if len(values) < 2:
        raise TypeError("MIN needs at least two values")
    t = _common_of("MIN", values)
    vals = [coerce(v, t) for v in values]
    best = vals[0]
    for v in vals[1:]:
        if compare("<", v, best):
            best = v
    return best


def MAX(*values: Any) -> Any:
    """The largest of two or more values (converted to their common type)."""
    if len(values) < 2:
        raise TypeError("MAX needs at least two values")
    t = _common_of("MAX", values)
    vals = [coerce(v, t) for v in values]
    best = vals[0]
    for v in vals[1:]:
        if compare(">", v, best):
            best = v
    return best


def LIMIT(MN: Any, IN: Any, MX: Any) -> Any:
    """``MIN(MAX(IN, MN), MX)``: IN clamped to [MN, MX]."""
    return MIN(MAX(IN, MN), MX)


def SEL(G: Any, IN0: Any, IN1: Any) -> Any:
    """IN1 if G else IN0 (both converted to their common type)."""
    if type_of(G) != "BOOL":
        raise TypeRuleError(f"SEL needs a BOOL selector, got {type_of(G)}")
    t = _common_of("SEL", (IN0, IN1))
    return coerce(IN1 if G else IN0, t)


def MUX(K: Any, *inputs: Any) -> Any:
    """Input number K (0-based) of two or more; K out of range faults."""
    kt = type_of(K)
    if kt not in INT_TYPES and kt != ANY_INT:
        raise TypeRuleError(f"MUX needs an integer selector, got {kt}")
    if len(inputs) < 2:
        raise TypeError("MUX needs at least two inputs")
    t = _common_of("MUX", inputs)
    k = int(K)
    if not 0 <= k < len(inputs):
        raise IndexError(f"MUX selector {k} out of range 0..{len(inputs) - 1}")
    return coerce(inputs[k], t)


def _bit_args(name: str, x: Any, n: Any) -> tuple[str, int, int]:
    t = type_of(x)
    if t not in INT_TYPES:
        raise TypeRuleError(f"{name} needs a typed integer, got {t}")
    nt = type_of(n)
    if nt not in INT_TYPES and nt != ANY_INT:
        raise TypeRuleError(f"{name} needs an integer bit number, got {nt}")
    bits = INT_BITS[t][0]
    k = int(n)
    if not 0 <= k < bits:
        raise IndexError(f"bit number {k} out of range 0..{bits - 1}")
    return t, int(x), k


def GET_BIT(x: Any, n: Any) -> bool:
    """Bit n (0 = least significant) of an integer, as BOOL.

    Example:
        >>> from softplc.iectypes import make
        >>> GET_BIT(make("UINT", 0b100), 2)
        True
    """
    _, v, k = _bit_args("GET_BIT", x, n)
    return bool((v >> k) & 1)


def SET_BIT(x: Any, n: Any, value: Any) -> Any:
    """x with bit n set to ``value`` (BOOL), same type.

    Example:
        >>> from softplc.iectypes import make
        >>> SET_BIT(make("USINT", 0), 7, True)
        128
    """
    t, v, k = _bit_args("SET_BIT", x, n)
    if type_of(value) != "BOOL":
        raise TypeRuleError(f"SET_BIT needs a BOOL value, got {type_of(value)}")
    v = v | (1 << k) if value else v & ~(1 << k)
    return make(t, v)


def TRUNC(x: Any) -> Any:
    """A REAL/LREAL truncated toward zero, as LINT (saturating; NaN gives 0)."""
    t = type_of(x)
    if t not in FLOAT_TYPES and t != ANY_REAL:
        raise TypeRuleError(f"TRUNC needs REAL or LREAL, got {t}")
    f = float(x)
    if not math.isfinite(f):
        return make("LINT", float_to_int(f, "LINT"))
    return make("LINT", max(-(1 << 63), min((1 << 63) - 1, math.trunc(f))))


def _conversion(t: str) -> Callable[[Any], Any]:
    def conv(x: Any) -> Any:
        return convert(x, t)

    conv.__name__ = f"TO_{t}"
    conv.__qualname__ = conv.__name__
    conv.__doc__ = (
        f"Explicit conversion to {t}: integers wrap, floats round half to even and "
        f"saturate (NaN gives 0)."
    )
    return conv


# Explicit conversions, one module-level name each (so type checkers and readers see them).
TO_BOOL = _conversion("BOOL")
TO_SINT = _conversion("SINT")
TO_INT = _conversion("INT")
TO_DINT = _conversion("DINT")
TO_LINT = _conversion("LINT")
TO_USINT = _conversion("USINT")
TO_UINT = _conversion("UINT")
TO_UDINT = _conversion("UDINT")
TO_ULINT = _conversion("ULINT")
TO_REAL = _conversion("REAL")
TO_LREAL = _conversion("LREAL")

#: Explicit conversions TO_BOOL, TO_SINT, ..., TO_LREAL.
CONVERSIONS: dict[str, Any] = {
    "TO_BOOL": TO_BOOL,
    "TO_SINT": TO_SINT,
    "TO_INT": TO_INT,
    "TO_DINT": TO_DINT,
    "TO_LINT": TO_LINT,
    "TO_USINT": TO_USINT,
    "TO_UINT": TO_UINT,
    "TO_UDINT": TO_UDINT,
    "TO_ULINT": TO_ULINT,
    "TO_REAL": TO_REAL,
    "TO_LREAL": TO_LREAL,
}
__all__ += list(CONVERSIONS)

#: The standard functions by name (what compiled programs may call).
FUNCTIONS: dict[str, Any] = {
    "ABS": ABS,
    "SQRT": SQRT,
    "SIN": SIN,
    "COS": COS,
    "TAN": TAN,
    "ASIN": ASIN,
    "ACOS": ACOS,
    "ATAN": ATAN,
    "EXP": EXP,
    "LN": LN,
    "LOG": LOG,
    "MIN": MIN,
    "MAX": MAX,
    "LIMIT": LIMIT,
    "SEL": SEL,
    "MUX": MUX,
    "GET_BIT": GET_BIT,
    "SET_BIT": SET_BIT,
    "TRUNC": TRUNC,
    "TIME_TO_MS": TIME_TO_MS,
    "TIME_TO_S": TIME_TO_S,
    "ms": ms,
    "s": s,
    "us": us,
    "now": now,
    "QUALITY": QUALITY,
    "AGE": AGE,
    **CONVERSIONS,
}

"""The standard function blocks, reference form: timers (TON, TOF, TP), counters (CTU,
CTD, CTUD), edges (R_TRIG, F_TRIG), bistables (SR, RS), and the process blocks
HYSTERESIS, RAMP and PID.

Timers, counters, edges and bistables follow ``docs/iec-function-blocks.md`` case for
case; the compiled form (``rust/softplc-vm/src/fb.rs``) follows the same page, and the
tests in ``tests/unit/stdlib/`` run every case in both forms.

Example:
    >>> from softplc.stdlib.time import ms
    >>> t = TON(PT=ms(100))
    >>> t.PT, t.Q
    (100000000, False)
"""

from __future__ import annotations

from typing import Any, ClassVar

from softplc.iectypes import (
    Time,
    coerce,
    f32,
    make,
    wrap,
)
from softplc.stdlib.time import now

__all__ = [
    "CTD",
    "CTU",
    "CTUD",
    "FB_TYPES",
    "F_TRIG",
    "HYSTERESIS",
    "PID",
    "RAMP",
    "RS",
    "R_TRIG",
    "SR",
    "TOF",
    "TON",
    "TP",
    "FunctionBlock",
]


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

"""Every case of docs/iec-function-blocks.md, checked in both forms.

Each program runs compiled and in reference mode (``run_both`` fails on the first
cycle where they differ); the assertions then pin the expected values. The cycle is
10 ms of virtual time, so ``ms(30)`` is three cycles.
"""

import pytest
from softplc import BOOL, INT, REAL, TIME, Engine, Input, Output, program
from softplc.differential import run_both
from softplc.stdlib import CTD, CTU, CTUD, F_TRIG, PID, R_TRIG, RS, SR, TOF, TON, TP, ms


@program
class TonBench:
    inp = Input(BOOL)
    pt = Input(TIME)
    q = Output(BOOL)
    et = Output(TIME)
    t = TON()

    def scan(self):
        self.t(IN=self.inp, PT=self.pt)
        self.q = self.t.Q
        self.et = self.t.ET


@program
class TofBench:
    inp = Input(BOOL)
    pt = Input(TIME)
    q = Output(BOOL)
    et = Output(TIME)
    t = TOF()

    def scan(self):
        self.t(IN=self.inp, PT=self.pt)
        self.q = self.t.Q
        self.et = self.t.ET


@program
class TpBench:
    inp = Input(BOOL)
    pt = Input(TIME)
    q = Output(BOOL)
    et = Output(TIME)
    t = TP()

    def scan(self):
        self.t(IN=self.inp, PT=self.pt)
        self.q = self.t.Q
        self.et = self.t.ET


def timer(cls, prefix, seq):
    """seq: (IN, PT in ms) per cycle -> list of (Q, ET in ms)."""
    steps = [{f"{prefix}.inp": i, f"{prefix}.pt": ms(p)} for i, p in seq]
    rows = run_both(cls, steps)
    return [(r[f"{prefix}.q"], r[f"{prefix}.et"] // 1_000_000) for r in rows]


def ton(seq):
    return timer(TonBench, "ton_bench", seq)


def tof(seq):
    return timer(TofBench, "tof_bench", seq)


def tp(seq):
    return timer(TpBench, "tp_bench", seq)


# -- TON --------------------------------------------------------------------------------


def test_ton_starts_when_in_is_true_on_the_first_call():
    out = ton([(True, 30)] * 5)
    assert out == [(False, 0), (False, 10), (False, 20), (True, 30), (True, 30)]


def test_ton_with_pt_zero_expires_on_the_cycle_after_the_start_cycle():
    assert ton([(True, 0)] * 3) == [(False, 0), (True, 0), (True, 0)]


def test_ton_resets_et_when_in_drops_before_pt():
    out = ton([(True, 50), (True, 50), (False, 50), (True, 50), (True, 50)])
    assert out == [(False, 0), (False, 10), (False, 0), (False, 0), (False, 10)]


def test_ton_et_never_exceeds_pt_and_equals_pt_at_expiry():
    out = ton([(True, 25)] * 6)
    assert [et for _, et in out] == [0, 10, 20, 25, 25, 25]
    assert [q for q, _ in out] == [False, False, False, True, True, True]


def test_ton_lowering_pt_below_elapsed_expires_at_once_with_the_new_pt():
    out = ton([(True, 100)] * 4 + [(True, 20), (True, 20)])
    assert out[3] == (False, 30)
    assert out[4] == (True, 20)


def test_ton_raising_pt_while_timing_applies_at_the_next_evaluation():
    out = ton([(True, 20), (True, 20), (True, 50), (True, 50), (True, 50), (True, 50)])
    assert out[:3] == [(False, 0), (False, 10), (False, 20)]
    assert out[5] == (True, 50)


def test_ton_pt_change_after_expiry_has_no_effect_until_in_drops():
    out = ton([(True, 10), (True, 10), (True, 100), (True, 100), (False, 100), (True, 100)])
    assert out[1] == (True, 10)
    assert out[2] == (True, 10)
    assert out[3] == (True, 10)
    assert out[4] == (False, 0)


# -- TOF --------------------------------------------------------------------------------


def test_tof_q_follows_a_rising_in_in_the_same_cycle():
    assert tof([(False, 30), (True, 30)]) == [(False, 0), (True, 0)]


def test_tof_in_false_from_the_first_call_gives_q_false():
    assert tof([(False, 30)] * 3) == [(False, 0)] * 3


def test_tof_rising_in_during_the_delay_retriggers():
    out = tof([(True, 30), (False, 30), (False, 30), (True, 30), (False, 30)])
    assert out[1] == (True, 0)
    assert out[2] == (True, 10)
    assert out[3] == (True, 0)
    assert out[4] == (True, 0)


def test_tof_et_holds_pt_after_expiry_while_in_stays_false():
    out = tof([(True, 20)] + [(False, 20)] * 5)
    assert out[1:] == [(True, 0), (True, 10), (False, 20), (False, 20), (False, 20)]


def test_tof_with_pt_zero_is_true_on_the_falling_edge_cycle_and_false_next():
    assert tof([(True, 0), (False, 0), (False, 0)]) == [(True, 0), (True, 0), (False, 0)]


# -- TP ---------------------------------------------------------------------------------


def test_tp_is_not_retriggerable_and_edges_during_the_pulse_are_consumed():
    seq = [(True, 30), (False, 30), (True, 30), (True, 30), (True, 30), (False, 30), (True, 30)]
    out = tp(seq)
    assert [q for q, _ in out] == [True, True, True, False, False, False, True]
    assert out[3] == (False, 30)  # IN still TRUE at expiry: ET holds PT
    assert out[5] == (False, 0)


def test_tp_et_goes_from_pt_to_zero_in_the_same_call_when_in_is_false_at_expiry():
    out = tp([(True, 20), (False, 20), (False, 20), (False, 20)])
    assert out == [(True, 0), (True, 10), (False, 0), (False, 0)]


def test_tp_with_pt_zero_gives_a_one_cycle_pulse():
    assert [q for q, _ in tp([(True, 0)] * 3)] == [True, False, False]


# -- counters ---------------------------------------------------------------------------


@program
class CtuBench:
    cu = Input(BOOL)
    r = Input(BOOL)
    pv = Input(INT)
    q = Output(BOOL)
    cv = Output(INT)
    c = CTU()

    def scan(self):
        self.c(CU=self.cu, R=self.r, PV=self.pv)
        self.q = self.c.Q
        self.cv = self.c.CV


@program
class CtdBench:
    cd = Input(BOOL)
    ld = Input(BOOL)
    pv = Input(INT)
    q = Output(BOOL)
    cv = Output(INT)
    c = CTD()

    def scan(self):
        self.c(CD=self.cd, LD=self.ld, PV=self.pv)
        self.q = self.c.Q
        self.cv = self.c.CV


@program
class CtudBench:
    cu = Input(BOOL)
    cd = Input(BOOL)
    r = Input(BOOL)
    ld = Input(BOOL)
    pv = Input(INT)
    qu = Output(BOOL)
    qd = Output(BOOL)
    cv = Output(INT)
    c = CTUD()

    def scan(self):
        self.c(CU=self.cu, CD=self.cd, R=self.r, LD=self.ld, PV=self.pv)
        self.qu = self.c.QU
        self.qd = self.c.QD
        self.cv = self.c.CV


def pulses(n):
    return [k % 2 == 0 for k in range(2 * n)]


def test_ctu_counts_rising_edges_and_stops_at_pv():
    steps = [{"ctu_bench.cu": c, "ctu_bench.pv": 3} for c in pulses(5)]
    rows = run_both(CtuBench, steps)
    assert [r["ctu_bench.cv"] for r in rows][::2] == [1, 2, 3, 3, 3]
    assert rows[4]["ctu_bench.q"] and not rows[3]["ctu_bench.q"]


def test_ctu_with_pv_not_positive_is_q_at_once():
    rows = run_both(CtuBench, [{"ctu_bench.pv": 0}, {}])
    assert rows[0]["ctu_bench.q"] is True
    rows = run_both(CtuBench, [{"ctu_bench.pv": -5}])
    assert rows[0]["ctu_bench.q"] is True


def test_ctu_reset_has_priority_and_consumes_an_edge():
    steps = [
        {"ctu_bench.cu": True, "ctu_bench.pv": 10},
        {"ctu_bench.cu": False},
        {"ctu_bench.cu": True, "ctu_bench.r": True},  # edge during R: consumed
        {"ctu_bench.r": False},  # CU still TRUE: no new edge
        {"ctu_bench.cu": False},
        {"ctu_bench.cu": True},
    ]
    rows = run_both(CtuBench, steps)
    assert [r["ctu_bench.cv"] for r in rows] == [1, 1, 0, 0, 0, 1]


def test_ctd_counts_down_to_zero_and_ld_loads_pv():
    steps = [{"ctd_bench.ld": True, "ctd_bench.pv": 2}, {"ctd_bench.ld": False}]
    steps += [{"ctd_bench.cd": c} for c in pulses(3)]
    rows = run_both(CtdBench, steps)
    assert [r["ctd_bench.cv"] for r in rows] == [2, 2, 1, 1, 0, 0, 0, 0]
    assert rows[4]["ctd_bench.q"] and not rows[2]["ctd_bench.q"]


def test_ctd_edge_during_load_is_consumed():
    steps = [
        {"ctd_bench.pv": 5, "ctd_bench.ld": True, "ctd_bench.cd": True},
        {"ctd_bench.ld": False},
    ]
    rows = run_both(CtdBench, steps)
    assert [r["ctd_bench.cv"] for r in rows] == [5, 5]


def test_ctud_priority_is_reset_then_load_then_counting():
    steps = [
        {"ctud_bench.pv": 4, "ctud_bench.ld": True, "ctud_bench.r": True},
        {"ctud_bench.r": False},
        {"ctud_bench.ld": False, "ctud_bench.cd": True},
        {"ctud_bench.cd": False, "ctud_bench.cu": True},
    ]
    rows = run_both(CtudBench, steps)
    assert [r["ctud_bench.cv"] for r in rows] == [0, 4, 3, 4]
    assert rows[3]["ctud_bench.qu"] and not rows[2]["ctud_bench.qu"]
    assert rows[0]["ctud_bench.qd"]


def test_ctud_simultaneous_edges_cancel_and_limits_hold():
    steps = [
        {"ctud_bench.pv": 2, "ctud_bench.cu": True, "ctud_bench.cd": True},
        {"ctud_bench.cu": False, "ctud_bench.cd": False},
        {"ctud_bench.cd": True},
        {"ctud_bench.cd": False},
    ] + [{"ctud_bench.cu": c} for c in pulses(4)]
    rows = run_both(CtudBench, steps)
    cvs = [r["ctud_bench.cv"] for r in rows]
    assert cvs[:4] == [0, 0, 0, 0]  # cancel; down stops at 0
    assert cvs[-1] == 2  # up stops at PV


def test_ctud_edges_arriving_while_r_or_ld_is_true_are_consumed():
    p = "ctud_bench."
    steps = [
        {p + "pv": 5, p + "r": True, p + "cu": True},  # CU edge during R
        {p + "r": False},  # CU still TRUE: the edge was used up, no count
        {p + "cu": False},
        {p + "cu": True},  # a fresh edge counts
        {p + "cu": False, p + "ld": True, p + "cd": True},  # CD edge during LD
        {p + "ld": False},  # CD still TRUE: no count down
        {p + "cd": False, p + "ld": True, p + "cu": True},  # CU edge during LD
        {p + "ld": False},  # CU still TRUE: no count up
        {p + "cd": True},  # a fresh CD edge counts
    ]
    rows = run_both(CtudBench, steps)
    assert [r[p + "cv"] for r in rows] == [0, 0, 0, 1, 5, 5, 5, 5, 4]


# -- edges and bistables ----------------------------------------------------------------


@program
class EdgeBench:
    clk = Input(BOOL)
    s = Input(BOOL)
    r = Input(BOOL)
    rise = Output(BOOL)
    fall = Output(BOOL)
    set_dom = Output(BOOL)
    reset_dom = Output(BOOL)
    rt = R_TRIG()
    ft = F_TRIG()
    sr = SR()
    rs = RS()

    def scan(self):
        self.rt(CLK=self.clk)
        self.ft(CLK=self.clk)
        self.sr(S1=self.s, R=self.r)
        self.rs(S=self.s, R1=self.r)
        self.rise = self.rt.Q
        self.fall = self.ft.Q
        self.set_dom = self.sr.Q1
        self.reset_dom = self.rs.Q1


def test_r_trig_pulses_on_the_first_call_when_clk_starts_true():
    rows = run_both(
        EdgeBench,
        [{"edge_bench.clk": True}, {}, {"edge_bench.clk": False}, {"edge_bench.clk": True}],
    )
    assert [r["edge_bench.rise"] for r in rows] == [True, False, False, True]


def test_f_trig_gives_no_pulse_on_the_first_call():
    rows = run_both(EdgeBench, [{}, {"edge_bench.clk": True}, {"edge_bench.clk": False}, {}])
    assert [r["edge_bench.fall"] for r in rows] == [False, False, True, False]


def test_sr_is_set_dominant_and_rs_reset_dominant():
    seq = [(True, False), (False, False), (True, True), (False, True), (True, False)]
    rows = run_both(EdgeBench, [{"edge_bench.s": s, "edge_bench.r": r} for s, r in seq])
    assert [r["edge_bench.set_dom"] for r in rows] == [True, True, True, False, True]
    assert [r["edge_bench.reset_dom"] for r in rows] == [True, True, False, False, True]


# -- PID ----------------------------------------------------------------------------------


@program
class PidBench:
    auto = Input(BOOL, initial=True)
    pv = Input(REAL)
    sp = Input(REAL)
    x0 = Input(REAL)
    out = Output(REAL)
    pid = PID(KP=2.0, TI=ms(1000), TD=0, OUT_MIN=0.0, OUT_MAX=100.0)

    def scan(self):
        self.pid(AUTO=self.auto, PV=self.pv, SP=self.sp, X0=self.x0)
        self.out = self.pid.XOUT


def pid_run(mode, steps):
    """Drives PidBench through the Python API (10 ms cycles); XOUT after each cycle."""
    out = []
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(PidBench(), mode=mode)
        plc.start()
        for st in steps:
            for k, v in st.items():
                plc.write("pid_bench." + k, v)
            plc.run_cycles(1)
            out.append(plc.read("pid_bench.out"))
    return out


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_pid_anti_windup_leaves_the_limit_as_soon_as_the_error_turns(mode):
    # 20 s saturated at OUT_MAX with e = 100: without anti-windup the integral would
    # reach 2 * 100 * 20 s / 1 s = 4000 and hold the output at the limit for as long
    # again after the error turns. With back-calculation it is clamped every cycle so
    # that P + I equals the limit.
    steps = [{"sp": 150.0, "pv": 50.0}] + [{}] * 1999 + [{"pv": 155.0}, {}]
    out = pid_run(mode, steps)
    assert out[1999] == 100.0
    # First cycle after the turn (e = -5): from P + I = 100 at e = 100, the output is
    # 100 + KP * (-5 - 100) + KP * dt / TI * (-5) = 100 - 210 - 0.1 < 0, so OUT_MIN.
    assert out[2000] == 0.0
    # And from the other side: saturate low, then a small positive error.
    steps = [{"sp": 0.0, "pv": 50.0}] + [{}] * 1999 + [{"pv": -1.0}, {}]
    out = pid_run(mode, steps)
    assert out[1999] == 0.0
    # P + I was 0 at e = -50; at e = 1: 0 + 2 * (1 + 50) + 2 * 0.01 / 1 * 1 = 102.02,
    # limited to 100. A wound-up integral (about -2000) would keep it at 0.
    assert out[2000] == 100.0
    # Inside the range: e from -50 to -49 gives 0 + 2 * 1 + 2 * 0.01 / 1 * (-49) = 1.02.
    steps = [{"sp": 0.0, "pv": 50.0}] + [{}] * 1999 + [{"pv": 49.0}, {}]
    out = pid_run(mode, steps)
    assert out[2000] == pytest.approx(2 * 1.0 + 2 * 0.01 * -49.0, abs=1e-5)


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_pid_switch_from_manual_to_auto_continues_from_the_manual_output(mode):
    # Bumpless transfer: in manual the integral tracks X0 - KP * e, so the first
    # automatic output is the manual output plus only what one automatic cycle
    # changes: KP * (e_now - e_before) + KP * dt / TI * e_now (TD = 0). With e
    # unchanged at 10 that is 2 * 0.01 / 1 * 10 = 0.2, not the jump to KP * e = 20.
    steps = [{"auto": False, "x0": 42.0, "sp": 60.0, "pv": 50.0}] + [{}] * 9
    steps += [{"auto": True}, {}]
    out = pid_run(mode, steps)
    assert out[:10] == [42.0] * 10
    assert out[10] == pytest.approx(42.0 + 0.2, abs=1e-5)
    assert out[11] == pytest.approx(42.0 + 0.4, abs=1e-5)
    # A setpoint change in the switching cycle adds only its proportional step.
    steps = [{"auto": False, "x0": 42.0, "sp": 60.0, "pv": 50.0}] + [{}] * 9
    steps += [{"auto": True, "sp": 61.0}]
    out = pid_run(mode, steps)
    assert out[10] == pytest.approx(42.0 + 2 * 1.0 + 2 * 0.01 * 11.0, abs=1e-5)


def test_pid_runs_the_same_in_both_modes_through_limits_and_mode_switches():
    steps = [{"sp": 80.0, "pv": 20.0}] + [{}] * 200 + [{"auto": False, "x0": 130.0}]
    steps += [{}] * 20 + [{"x0": -5.0}, {}, {"auto": True, "pv": 85.0}] + [{}] * 100
    assert pid_run("compiled", steps) == pid_run("reference", steps)

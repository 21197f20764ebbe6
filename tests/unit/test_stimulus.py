"""CSV stimulus files, dense and timed: values drive inputs and setpoints, only changes
are written; errors name file, row and column."""

import subprocess
import sys

import pytest
import softplc.trace as st
from softplc import BOOL, INT, REAL, TIME, Engine, Input, Memory, Output, program
from softplc.errors import ConfigError
from softplc.stimulus import load_stimulus, parse_value
from softplc.testing import Bench

from tests.conftest import PROGRAMS


@program
class Echo:
    flag = Input(BOOL)
    n = Input(INT)
    x = Input(REAL)
    t = Input(TIME)
    out = Output(INT)

    def scan(self):
        self.out = self.n


def engine():
    plc = Engine(clock="virtual", cycle="10ms")
    plc.add_program(Echo())
    plc.start()
    return plc


def write(tmp_path, text):
    p = tmp_path / "in.csv"
    p.write_text(text)
    return p


def test_rows_set_inputs_per_cycle_and_the_last_row_holds(tmp_path):
    p = write(tmp_path, "# comment\necho.flag,n,x,t\n1,5,2.5,T#1s500ms\nfalse,,1e-3,250\n")
    s = load_stimulus(p)
    with engine() as plc:
        s.bind(plc)
        seen = []
        for k in range(4):
            s.apply(plc, k)
            plc.run_cycles(1)
            seen.append((plc.read("echo.flag"), plc.read("echo.out"), plc.read("echo.t")))
    assert seen[0] == (True, 5, 1_500_000_000)
    assert seen[1] == (False, 5, 250_000_000)  # empty cell keeps 5
    assert seen[3] == seen[1]
    assert abs(plc.read("echo.x") - 1e-3) < 1e-9


@pytest.mark.parametrize(
    "text, where",
    [
        ("echo.flag,nope\n1,2\n", "row 1, column 2 ('nope'): no such variable"),
        ("echo.flag,n\n1,2\nyes,3\n", "row 3, column 1 ('echo.flag', BOOL)"),
        ("n\n70000\n", "row 2, column 1 ('n', INT): 70000 is out of range"),
        ("t\n1.5s\n", "row 2, column 1 ('t', TIME)"),
        ("echo.out\n1\n", "is an output variable"),
        ("n,t\n1,99999999999999999\n", "row 2, column 2 ('t', TIME): 99999999999999999 is out"),
        ("t\n0\nT#300000d\n", "row 3, column 1 ('t', TIME): T#300000d is out of range"),
        ("n,x\n1,2\n1,1e39\n", "row 3, column 2 ('x', REAL): 1e39 is out of range for REAL"),
        ("x,n\n1_0,1\n", "row 2, column 1 ('x', REAL): '1_0' is not a decimal number"),
        ("x,n\n1,1_0\n", "row 2, column 2 ('n', INT): '1_0' is not a decimal integer"),
        ("t\n1_500\n", "row 2, column 1 ('t', TIME): '1_500' is not a TIME"),
        ("x\ninf\n", "row 2, column 1 ('x', REAL): 'inf' is not a decimal number"),
        ("n\n0x10\n", "row 2, column 1 ('n', INT): '0x10' is not a decimal integer"),
    ],
)
def test_bad_names_and_values_name_file_row_and_column(tmp_path, text, where):
    p = write(tmp_path, text)
    with engine() as plc, pytest.raises(ConfigError) as ei:
        load_stimulus(p).bind(plc)
    assert str(p) in str(ei.value) and where in str(ei.value), str(ei.value)


def test_malformed_files_are_rejected_when_loaded(tmp_path):
    with pytest.raises(ConfigError, match="row 3: 1 cells, expected 2"):
        load_stimulus(write(tmp_path, "a,b\n1,2\n3\n"))
    with pytest.raises(ConfigError, match="duplicate column"):
        load_stimulus(write(tmp_path, "a,a\n1,2\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_stimulus(tmp_path / "missing.csv")


def test_parse_value_accepts_the_documented_forms():
    assert parse_value("TRUE", "BOOL") is True
    assert parse_value("-12", "DINT") == -12
    assert parse_value("1500", "TIME") == 1_500_000_000
    assert parse_value("T#2s", "TIME") == 2_000_000_000
    with pytest.raises(ValueError):
        parse_value("-1", "UINT")


def test_parse_value_takes_plain_decimals_within_the_type():
    assert parse_value("3.4028235e38", "REAL") == 3.4028235e38
    assert parse_value("1e39", "LREAL") == 1e39
    assert parse_value(".5", "REAL") == 0.5
    assert parse_value("-250", "TIME") == -250_000_000
    assert parse_value("9223372036854", "TIME") == 9_223_372_036_854_000_000
    assert parse_value("T#1_000ms", "TIME") == 1_000_000_000  # IEC literals allow _
    for text, t in [
        ("3.5e38", "REAL"),
        ("9223372036855", "TIME"),
        ("1_000", "DINT"),
        ("1_000.5", "LREAL"),
        ("nan", "LREAL"),
        ("+inf", "REAL"),
        ("١٢", "INT"),  # non-ASCII digits, which int() would accept
    ]:
        with pytest.raises(ValueError):
            parse_value(text, t)


# -- the timed form, memory variables, and changes only ------------------------------------


@program
class Tuned:
    start = Input(BOOL)
    level = Input(REAL)
    setpoint = Memory(REAL, 40.0)
    pump = Output(BOOL)

    def scan(self):
        self.pump = self.start and self.level < self.setpoint


def tuned():
    plc = Engine(clock="virtual", cycle="10ms")
    plc.add_program(Tuned())
    plc.start()
    return plc


def writes(plc):
    return [e["text"] for e in plc.events()[0] if e["kind"] == "write"]


def test_a_timed_stimulus_holds_values_until_a_row_changes_them(tmp_path):
    p = write(
        tmp_path,
        "# a hand-written test plan\n"
        "time,start,level,setpoint\n"
        "0ms,1,20.0,\n"
        "1.5s,,50.0,\n"
        "T#2s,0,,60\n"
        "2.2s,1,,\n"
        "3s,,,\n",
    )
    s = load_stimulus(p)
    assert s.timed and s.columns == ["start", "level", "setpoint"]
    assert s.times_ns == [0, 1_500_000_000, 2_000_000_000, 2_200_000_000, 3_000_000_000]
    with tuned() as plc:
        player = s.player(plc)
        seen = {}
        for t_ms in (0, 1490, 1500, 2000, 2200):
            player.advance(t_ms * 1_000_000 - player.elapsed_ns + 10_000_000)
            seen[t_ms] = plc.snapshot().values()
        assert player.play() and player.done and player.elapsed_ns == 3_010_000_000
    assert seen[0]["tuned.pump"] is True and seen[1490]["tuned.level"] == 20.0
    assert seen[1500]["tuned.level"] == 50.0 and seen[1500]["tuned.pump"] is False
    assert seen[2000]["tuned.setpoint"] == 60.0 and seen[2000]["tuned.start"] is False
    assert seen[2200]["tuned.pump"] is True  # 50 < 60


def test_a_value_lands_at_the_first_cycle_starting_at_or_after_its_time(tmp_path):
    p = write(tmp_path, "time,start\n0,0\n15ms,1\n")
    with tuned() as plc:
        player = load_stimulus(p).player(plc)
        player.advance(20_000_000)  # cycles at 0 and 10 ms: before 15 ms
        assert plc.read("tuned.start") is False
        player.advance(10_000_000)  # the cycle at 20 ms
        assert plc.read("tuned.start") is True


def test_only_changes_are_written(tmp_path):
    rows = ["start,level,setpoint"] + ["1,10.5,40"] * 50 + ["0,10.5,40.0"] * 50 + ["0,11,40"]
    p = write(tmp_path, "\n".join(rows) + "\n")
    with tuned() as plc:
        player = load_stimulus(p).player(plc)
        player.play()
        assert player.writes == 5
        assert writes(plc) == [
            "tuned.start=TRUE",
            "tuned.level=10.5",
            "tuned.setpoint=40",
            "tuned.start=FALSE",
            "tuned.level=11",
        ]


def test_apply_row_by_row_also_writes_only_changes(tmp_path):
    p = write(tmp_path, "start,level\n1,2\n1,2\n0,2\n")
    with tuned() as plc:
        s = load_stimulus(p)
        for k in range(4):
            s.apply(plc, k)
            plc.run_cycles(1)
        assert len(writes(plc)) == 3
        assert s.row(1) == {"tuned.start": True, "tuned.level": 2.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "time,start\n1s,1\n1s,0\n",
            "row 3, column 1 ('time'): 1s is not after the previous row's time (1s)",
        ),
        ("time,start\n-1s,1\n", "row 2, column 1 ('time'): negative time '-1s'"),
        ("time,start\nsoon,1\n", "row 2, column 1 ('time'): cannot read 'soon' as a time"),
        ("time,start\n,1\n", "empty time"),
        ("start,time\n1,0ms\n", "the time column must be the first one"),
        ("time\n0ms\n", "a time column but no variable columns"),
        (
            "time,strat\n0ms,1\n",
            "row 1, column 2 ('strat'): no such variable (did you mean tuned.start?)",
        ),
        (
            "time,pump\n0ms,1\n",
            "tuned.pump is an output variable; a stimulus drives inputs and memory",
        ),
        ("time,start,tuned.start\n0ms,1,1\n", "tuned.start has a column already (column 2)"),
        (
            "time,level\n0ms,1\n1s,high\n",
            "row 3, column 2 ('level', REAL): 'high' is not a decimal number",
        ),
    ],
)
def test_bad_timed_files_name_file_row_and_column(tmp_path, text, message):
    p = write(tmp_path, text)
    with tuned() as plc, pytest.raises(ConfigError) as ei:
        load_stimulus(p).bind(plc)
    assert str(p) in str(ei.value) and message in str(ei.value), str(ei.value)


def test_a_long_cli_run_logs_every_change_and_loses_no_event(tmp_path):
    # 60,000 cycles driving an input and a setpoint: before only changes were written,
    # every cell of every row was, and the event queue overflowed.
    rows = ["tank.enable,tank.low_limit"]
    for k in range(60_000):
        rows.append(f"{(k // 1000) % 2},{35 + (k // 7500)}")
    stim = write(tmp_path, "\n".join(rows) + "\n")
    trace = tmp_path / "run.trace"
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "run", str(PROGRAMS / "tank.py"), "--virtual",
         "--cycles", "60000", "--stimulus", str(stim), "--trace", str(trace), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    tr = st.load(trace)
    logged = [e for e in tr.events if e["kind"] == "write"]
    assert len(logged) == 60 + 8 and tr.events_lost == 0
    enable = tr["tank.enable"]
    assert not enable[:1000].any() and enable[1000:2000].all() and tr.rows == 60_000
    assert tr["tank.low_limit"][7499] == 35.0 and tr["tank.low_limit"][7500] == 36.0


def test_the_cli_and_a_bench_play_a_stimulus_the_same_way(tmp_path):
    stim = write(tmp_path, "time,enable,low_limit\n0ms,1,45\n2s,0,\n3.5s,1,30\n6s,,\n")
    trace = tmp_path / "cli.trace"
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "run", str(PROGRAMS / "tank.py"), "--virtual",
         "--cycles", "601", "--stimulus", str(stim), "--trace", str(trace), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    cli = st.load(trace)
    with Bench.from_file(PROGRAMS / "tank.py") as b:
        b.play(stim)
        bench = b.recorded()
        assert bench.rows == 601
        for name in ("tank.enable", "tank.low_limit", "tank.pump", "tank.level"):
            assert bench[name].tolist() == cli[name].tolist(), name

"""CSV stimulus: rows drive inputs cycle by cycle; errors name file, row and column."""

import pytest
from softplc import BOOL, INT, REAL, TIME, Engine, Input, Output, program
from softplc.errors import ConfigError
from softplc.stimulus import load_stimulus, parse_value


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

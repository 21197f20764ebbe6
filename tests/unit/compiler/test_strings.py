"""STRING(n): fixed capacity, truncation on every write, the string functions and the
conversions, alike in both modes; the image, the API and traces read strings as text;
misuse is a compile error naming the culprit and the conversion to write."""

from pathlib import Path

import pytest
from softplc import (
    ARRAY,
    BOOL,
    BYTE,
    DINT,
    INT,
    REAL,
    STRING,
    TIME,
    TON,
    Engine,
    Field,
    Input,
    InvalidValue,
    Memory,
    Output,
    function_block,
    program,
    struct,
)
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.iectypes import IecString
from softplc.stdlib import (
    CONCAT,
    FIND,
    LEFT,
    LEN,
    MID,
    RIGHT,
    TO_BYTE,
    TO_DINT,
    TO_INT,
    TO_LREAL,
    TO_REAL,
    TO_STRING,
)

SOURCE = Path(__file__).read_text().splitlines()


def where(marker, token):
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


@struct
class Slot:
    code = Field(STRING(6))
    count = Field(INT)


@function_block
class Tagger:
    prefix = Input(STRING(4))
    n = Input(INT)
    tag = Output(STRING(10))
    last = Output(STRING(10), initial="none")

    def scan(self):
        self.tag = self.prefix + "-" + TO_STRING(self.n)
        if self.tag != self.last:
            self.last = self.tag


def describe(code, n):
    """A helper taking and returning strings (by value)."""
    if n < 0:
        return "neg " + code
    return code + "#" + TO_STRING(n)


@program
class Texts:
    n = Input(INT)
    x = Input(REAL)
    label = Output(STRING(12), initial="start")
    parts = Output(STRING(40))
    length = Output(INT)
    where_at = Output(INT)
    back = Output(DINT)
    real_back = Output(REAL)
    less = Output(BOOL)
    names = Memory(ARRAY(STRING(5), 3))
    slots = Memory(ARRAY(Slot, 4))
    pick = Output(STRING(6))
    tagger = Tagger(prefix="AB")
    tag = Output(STRING(10))
    flags = Output(BYTE)

    def scan(self):
        word = "conveyor"  # a STRING(80)
        self.label = word + " " + TO_STRING(self.n)  # truncated to 12 characters
        self.length = LEN(self.label)
        self.where_at = FIND(self.label, "or")
        digits: STRING(6) = RIGHT(TO_STRING(self.n * 7), 3)
        self.back = TO_DINT(digits) + 1
        self.real_back = TO_REAL(TO_STRING(self.x)) * 2.0
        self.parts = CONCAT(LEFT(word, 3), MID(word, 2, 4), RIGHT(word, (self.n % 5 + 5) % 5))
        self.parts = self.parts + "|" + TO_STRING(self.x) + "|" + TO_STRING(TO_LREAL(self.x))
        self.parts = self.parts + TO_STRING(self.n > 3) + TO_STRING(TO_BYTE(self.n))
        self.less = self.label < "conveyor 5"
        i = (self.n % 3 + 3) % 3
        self.names[i] = describe(TO_STRING(self.n), self.n - 5)  # runtime index, truncated
        k = (self.n % 4 + 4) % 4
        self.slots[k].code = self.names[i] if self.n > 2 else "empty"
        self.slots[k].count = self.slots[k].count + 1
        self.pick = self.slots[(k + 1) % 4].code
        self.tagger(n=self.n)
        self.tag = self.tagger.tag
        if self.tagger.last == "AB-3":
            self.flags = 0x33


def test_strings_agree_in_both_modes_and_truncate_to_the_capacity():
    p = "texts."
    steps = [
        {p + "n": 1234, p + "x": 0.1},
        {p + "n": 3, p + "x": -2.5},
        {p + "n": -40, p + "x": 1e20},
        {p + "n": 7, p + "x": float("inf")},
        {p + "n": 0},
    ]
    rows = run_both(Texts, steps)
    assert rows[0][p + "label"] == "conveyor 123"  # "conveyor 1234" cut at 12
    assert rows[0][p + "length"] == 12
    assert rows[0][p + "where_at"] == 7
    assert rows[0][p + "back"] == 638 + 1  # RIGHT("8638", 3)
    assert rows[0][p + "real_back"] == pytest.approx(0.2)
    assert rows[0][p + "parts"] == "conveeyor|0.1|0.10000000149011612TRUE210"
    assert rows[1][p + "tag"] == "AB-3" and rows[1][p + "flags"] == 0x33
    assert rows[2][p + "label"] == "conveyor -40"
    assert rows[3][p + "parts"].count("INF") == 2


def test_string_values_in_reference_mode_follow_iec():
    s = IecString("abcdef", 4)
    assert s == "abcd" and s.cap == 4 and s.iec == "STRING(4)"
    assert (s + "xy").cap == 6 and s + "xy" == "abcdxy"
    assert LEN("conveyor") == 8 and FIND("conveyor", "") == 0
    assert LEFT("abc", -1) == "" and RIGHT("abc", 99) == "abc" and MID("abc", 2, 0) == ""
    assert TO_STRING(TO_REAL(0.1)) == "0.1" and TO_STRING(-0.0) == "-0"
    assert TO_INT(" 42 ") == 42 and TO_INT("4x2") == 0 and TO_INT("70000") == 4464
    assert TO_LREAL("-2.5E-3") == -0.0025 and TO_REAL("1e") == 0.0
    with pytest.raises(TypeError, match="not indexed"):
        s[0]
    with pytest.raises(TypeError, match="cannot compare"):
        s == 3  # noqa: B015


def test_the_image_the_api_and_traces_read_strings_as_text(tmp_path):
    import softplc.trace as st

    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(Texts())
        plc.start()
        assert plc.read("texts.label") == "start"
        info = {v["name"]: v for v in plc.variables}
        assert info["texts.label"]["type"] == "STRING(12)"
        assert info["texts.label"]["address"].startswith("%QB")
        assert info["texts.slots[2].code"]["type"] == "STRING(6)"
        path = tmp_path / "s.trace"
        st.start_trace(plc, path, signals=["texts.label", "texts.n"])
        plc.write("texts.n", 42)
        plc.run_cycles(2)
        st.stop_trace(plc)
        assert plc.read("texts.label") == "conveyor 42"
        assert plc.snapshot().value("texts.label") == "conveyor 42"
        with pytest.raises(InvalidValue, match=r"texts.label \(STRING\(12\)\): a STRING is"):
            plc.write("texts.label", "x")
    tr = st.load(path)
    assert tr.signal("texts.label").dtype == "|V13"
    assert tr["texts.label"].tolist()[-1] == "conveyor 42"


@program
class Misuse:
    n = Input(INT)
    t = Input(TIME)
    m = Output(INT)
    label = Output(STRING(8))

    def scan(self):
        self.label = self.n + "x"  # E:plus
        if self.label == 3:  # E:cmp
            pass
        self.m = self.label  # E:assign
        self.label = TO_STRING(self.t)  # E:time
        self.label = LEFT(self.label, 1.5)  # E:count
        self.label = "Ωmega"  # E:latin
        s: STRING(300) = ""  # noqa: F841  # E:cap
        self.label = self.label * 2  # E:times


def test_each_misuse_of_a_string_is_an_error_at_its_place():
    with pytest.raises(CompileError) as ei:
        compile_instance(Misuse())
    errs = {(e.line, e.column): str(e) for e in ei.value.errors}
    cases = [
        ("plus", "self.n", "cannot apply + to INT and STRING(1)", "TO_STRING(x)"),
        ("cmp", "self.label", "cannot compare STRING(8) and ANY_INT", "TO_STRING(x)"),
        ("assign", "self.m", "STRING(8) does not convert to INT implicitly", "TO_INT(s)"),
        ("time", "TO_STRING", "no conversion from TIME to STRING", "TIME_TO_MS"),
        ("count", "LEFT", "takes an integer count or position, got ANY_REAL", ""),
        ("latin", '"', "'Ω' is not a single-byte (Latin-1) character", ""),
        ("cap", "STRING(300)", "capacity is a number from 1 to 254", ""),
        ("times", "self.label *", "cannot apply * to STRING(8) and ANY_INT", ""),
    ]
    for marker, token, text, hint in cases:
        line, col = where(marker, token)
        msg = errs.get((line, col))
        assert msg is not None, (marker, line, col, errs)
        assert text in msg and hint in msg, (marker, msg)


@program
class OutOfRange:
    n = Input(INT)
    names = Memory(ARRAY(STRING(5), 3))
    out = Output(STRING(5))

    def scan(self):
        self.out = self.names[self.n]


def test_an_index_out_of_range_into_strings_faults_naming_the_array():
    rows = run_both(OutOfRange, [{"out_of_range.n": 2}, {"out_of_range.n": 3}])
    assert rows[1]["@state"] == "FAULT"
    assert "index 3 of out_of_range.names is out of range 0..2" in rows[1]["@fault"]


@program
class DurationText:
    go = Input(BOOL)
    done = Output(BOOL)
    t = TON()

    def scan(self):
        self.t(IN=self.go, PT="T#30ms")  # a literal that spells a duration is a TIME
        self.done = self.t.Q


def test_a_duration_literal_is_a_time_not_a_string():
    rows = run_both(DurationText, [{"duration_text.go": True}] + [{}] * 4)
    assert [r["duration_text.done"] for r in rows] == [False, False, False, True, True]

"""BYTE, WORD, DWORD and LWORD: bit operations, shifts, rotations and conversions,
alike in both modes; arithmetic on them is a compile error naming the conversion."""

from pathlib import Path

import pytest
from softplc import (
    BYTE,
    DWORD,
    INT,
    LWORD,
    UINT,
    WORD,
    Engine,
    Input,
    Memory,
    Output,
    program,
)
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.stdlib import GET_BIT, ROL, ROR, SET_BIT, SHL, SHR, TO_BYTE, TO_UINT, TO_USINT, TO_WORD

SOURCE = Path(__file__).read_text().splitlines()


def where(marker, token):
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


@program
class Bits:
    b = Input(BYTE, "%IB0")
    w = Input(WORD, "%IW1")
    n = Input(INT, "%IW2")
    mask = Memory(WORD, 0x0FF0, address="%MW0")
    o_w = Output(WORD, "%QW0")
    o_d = Output(DWORD)
    o_l = Output(LWORD)
    o_u = Output(UINT)
    flags = Output(BYTE)

    def scan(self):
        self.o_w = (self.w & self.mask) | self.b  # BYTE widens to WORD
        self.o_w = self.o_w ^ 0xFFFF
        self.o_d = ROL(TO_WORD(self.n), 4) << 8
        self.o_l = ~SHL(self.o_d, TO_USINT(self.b) % 40)
        self.o_u = TO_UINT(ROR(self.w, 3)) + 1
        self.flags = SET_BIT(TO_BYTE(self.n), 7, GET_BIT(self.w, 15))
        if SHR(self.w, 12) == 0xF and self.b > 0x7F:
            self.flags = 0xAA


def test_bit_strings_agree_in_both_modes():
    p = "bits."
    steps = [
        {p + "b": 0x81, p + "w": 0xF00F, p + "n": -2},
        {p + "w": 0x1234, p + "n": 300},
        {p + "b": 0, p + "w": 0xFFFF},
    ]
    rows = run_both(Bits, steps)
    assert rows[0][p + "o_w"] == ((0xF00F & 0x0FF0) | 0x81) ^ 0xFFFF
    assert rows[1][p + "o_u"] == ((0x1234 >> 3) | (0x1234 << 13)) % 65536 + 1
    assert rows[0][p + "flags"] == 0xAA


def test_bit_strings_live_at_byte_and_word_addresses_and_read_as_integers():
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(Bits())
        plc.start()
        plc.write("bits.w", 0xBEEF)
        plc.run_cycles(1)
        addrs = {v["name"]: v["address"] for v in plc.variables}
        assert addrs["bits.b"] == "%IB0" and addrs["bits.mask"] == "%MW0"
        assert plc.read("%IW1") == 0xBEEF
        assert plc.snapshot().value("bits.o_w") == plc.read("bits.o_w")


@program
class WordArithmetic:
    w = Input(WORD)
    y = Output(WORD)

    def scan(self):
        self.y = self.w + 1  # E:word-add


@program
class WordMixesInt:
    w = Input(WORD)
    n = Input(INT)
    y = Output(WORD)

    def scan(self):
        self.y = self.w & self.n  # E:word-int


@pytest.mark.parametrize(
    ("cls", "marker", "token", "words"),
    [
        (WordArithmetic, "word-add", "self.w + 1", ("bit string", "TO_UINT(x)")),
        (WordMixesInt, "word-int", "self.w & self.n", ("cannot mix WORD and INT", "TO_WORD")),
    ],
)
def test_arithmetic_or_mixing_on_a_bit_string_is_an_error_naming_the_conversion(
    cls, marker, token, words
):
    with pytest.raises(CompileError) as ei:
        compile_instance(cls())
    e = ei.value
    assert (e.line, e.column) == where(marker, token), str(e)
    assert all(w in e.detail for w in words), str(e)


def test_the_reference_values_refuse_arithmetic_too():
    from softplc.iectypes import TypeRuleError, make

    with pytest.raises(TypeRuleError, match="bit string"):
        make("WORD", 1) + 1
    with pytest.raises(TypeRuleError):
        -make("BYTE", 1)
    assert make("DWORD", 0xFF) | make("BYTE", 0x100 - 1) == 0xFF

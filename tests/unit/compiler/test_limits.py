"""Program files cannot exhaust the compiler or the image: each limit of
``softplc.limits`` stops a pathological program early, with an error naming the
construct and where it is, and the compiler's time and memory follow the source, not
the numbers written in it.

The programs a hostile test campaign used run through ``softplc check`` in a child
process with a time-out and a cap on its address space, so that a regression fails
the test instead of hanging or swapping the machine."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import pytest
from softplc import limits
from softplc.compiler import CompileError, compile_instance
from softplc.loader import load_program_file

ROOT = Path(__file__).resolve().parents[3]

# A checked program file gets this much address space and time. A normal check needs
# about 400 MB of address space (Python, NumPy, the native library) and well under a
# second; the campaign's files took 7.6 GB, or ran for minutes.
ADDRESS_SPACE = 1 << 30
TIMEOUT_S = 60


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def check(tmp_path: Path, source: str, name: str = "prog.py") -> subprocess.CompletedProcess[str]:
    """Runs ``softplc check`` on ``source`` (written to ``tmp_path/name``) in a child
    process with capped memory and time."""
    (tmp_path / name).write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "softplc", "check", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=_cap_address_space,
        check=False,
    )


def line_of(source: str, marker: str, token: str) -> tuple[int, int]:
    """(line, column) of ``token`` on the line of ``source`` marked ``# E:marker``."""
    for i, line in enumerate(textwrap.dedent(source).splitlines(), start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


def compile_file(tmp_path: Path, source: str, name: str = "prog.py") -> bytes:
    """Loads ``source`` as a program file and compiles its first program."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    pf = load_program_file(path)
    return compile_instance(pf.programs[0]())


# -- the campaign's programs, through softplc check -------------------------------------


def test_an_array_of_ten_million_ints_is_refused_where_it_is_declared(tmp_path):
    src = """\
        from softplc import ARRAY, INT, Memory, Output, program


        @program
        class Big:
            values = Memory(ARRAY(INT, 10_000_000))  # E:array
            y = Output(INT)

            def scan(self):
                self.y = self.values[0]
        """
    r = check(tmp_path, src)
    line, _ = line_of(src, "array", "values")
    assert r.returncode == 2, r
    assert f"prog.py:{line}: ConfigError: ARRAY(INT, 10000000): an array holds at most " in (
        r.stderr
    ), r.stderr
    assert "hint:" in r.stderr and "Traceback" not in r.stderr


def test_an_array_of_a_billion_lreals_in_a_block_is_refused_where_it_is_declared(tmp_path):
    src = """\
        from softplc import ARRAY, LREAL, Memory, Output, function_block, program


        @function_block
        class Store:
            data = Memory(ARRAY(LREAL, 10**9))  # E:array
            out = Output(LREAL)

            def scan(self):
                self.out = self.data[0]


        @program
        class User:
            store = Store()

            def scan(self):
                self.store()
        """
    r = check(tmp_path, src)
    line, _ = line_of(src, "array", "data")
    assert r.returncode == 2, r
    assert f"prog.py:{line}: ConfigError: ARRAY(LREAL, 1000000000): " in r.stderr, r.stderr
    assert "MemoryError" not in r.stderr


def doubling_helpers(levels: int) -> str:
    """Helpers f1..f<levels>, each calling the one below twice: 2**levels calls."""
    out = ["from softplc import INT, Output, TO_INT, program", "", ""]
    out += ["def f0(x):", "    return x + TO_INT(1)", "", ""]
    for k in range(1, levels + 1):
        out += [f"def f{k}(x):", f"    return f{k - 1}(x) + f{k - 1}(x)", "", ""]
    out += [
        "@program",
        "class Doubling:",
        "    y = Output(INT)",
        "",
        "    def scan(self):",
        f"        self.y = f{levels}(self.y)  # E:call",
    ]
    return "\n".join(out) + "\n"


def test_helpers_that_call_each_other_twice_26_deep_stop_at_the_inlining_limit(tmp_path):
    src = doubling_helpers(26)
    r = check(tmp_path, src)
    line, col = line_of(src, "call", "self.y")
    assert r.returncode == 1, r
    assert f"prog.py:{line}:{col}: error: inlining: " in r.stdout, r.stdout
    assert f"past {limits.MAX_INLINED_NODES} syntax-tree nodes" in r.stdout
    # The chain of inlined calls shows where the growth comes from.
    assert "inlined calls: f26 (prog.py:" in r.stdout and "f25 (prog.py:" in r.stdout


def test_a_loop_of_a_billion_turns_is_refused_without_walking_it(tmp_path):
    src = """\
        from softplc import INT, Output, program

        N = 10**9


        @program
        class Long:
            y = Output(INT)

            def scan(self):
                for i in range(N):  # E:range
                    self.y = 1
        """
    r = check(tmp_path, src)
    line, col = line_of(src, "range", "range")
    assert r.returncode == 1, r
    assert f"prog.py:{line}:{col}: error: range: 1000000000 turns; a loop may turn at most " in (
        r.stdout
    ), r.stdout
    assert "hint:" in r.stdout


@pytest.mark.parametrize(
    ("statement", "shown"),
    [
        ("sys.exit(3)", "exit code 3"),
        ("raise SystemExit('bye')", "exit code 'bye'"),
        ("sys.exit()", "exit code None"),
    ],
)
def test_a_file_that_exits_while_loading_is_an_error_naming_file_and_line(
    tmp_path, statement, shown
):
    src = f"""\
        import sys

        from softplc import BOOL, Output, program

        {statement}  # E:exit
        """
    r = check(tmp_path, src)
    line, _ = line_of(src, "exit", statement)
    assert r.returncode == 2, r  # a configuration error, not the file's own exit code
    assert f"prog.py:{line}: SystemExit: the file exits while loading ({shown})" in r.stderr, (
        r.stderr
    )


def test_a_base_exception_raised_while_loading_is_an_error_naming_it(tmp_path):
    src = """\
        class Stop(BaseException):
            pass


        raise Stop("not a program")  # E:raise
        """
    r = check(tmp_path, src)
    line, _ = line_of(src, "raise", "raise")
    assert r.returncode == 2, r
    assert f"prog.py:{line}: Stop: not a program" in r.stderr, r.stderr


def test_a_constant_squared_at_each_nested_call_stops_at_the_constant_limit(tmp_path):
    # g30(N) squares N at each of 30 nested calls: 62 * 2**30 bits if folded through.
    lines = ["from softplc import LINT, Output, TO_LINT, program", "", "N = 2**62", "", ""]
    lines += ["def g0(x):", "    return x % 7", "", ""]
    for k in range(1, 31):
        lines += [f"def g{k}(x):", f"    return g{k - 1}(x * x)  # E:g{k}", "", ""]
    lines += ["@program", "class Squares:", "    y = Output(LINT)", ""]
    lines += ["    def scan(self):", "        self.y = TO_LINT(g30(N))"]
    src = "\n".join(lines) + "\n"
    r = check(tmp_path, src)
    assert r.returncode == 1, r
    # 62 bits doubled four times is 992; the fifth product (in g26) would pass 1024.
    line, col = line_of(src, "g26", "x * x")
    assert f"prog.py:{line}:{col}: error: integer constant: " in r.stdout, r.stdout
    assert f"at most {limits.MAX_CONSTANT_BITS} bits" in r.stdout


def test_a_program_past_the_instruction_limit_names_the_statement_that_crosses_it(tmp_path):
    # A helper of about 1,200 instructions (a MUX of 600 values), called 250 times:
    # 300,000 instructions from 150,000 syntax-tree nodes.
    values = ", ".join(str(k) for k in range(600))
    calls = "\n".join(f"        self.y = pick(self.k)  # E:call{n}" for n in range(250))
    src = f"""\
from softplc import INT, Input, MUX, Output, program


def pick(k):
    return MUX(k, {values})


@program
class Wide:
    k = Input(INT)
    y = Output(INT)

    def scan(self):
{calls}
"""
    r = check(tmp_path, src)
    assert r.returncode == 1, r
    m = re.search(r"prog\.py:(\d+):9: error: program size: ", r.stdout)
    assert m, r.stdout
    assert f"past {limits.MAX_INSTRUCTIONS} instructions" in r.stdout
    first, _ = line_of(src, "call0", "self")
    assert first + 100 < int(m.group(1)) < first + 250  # one of the calls, not the first


# -- the other limits, in process -------------------------------------------------------


def test_a_loop_compiles_to_a_loop_whatever_its_length(tmp_path):
    src = f"""\
        from softplc import DINT, Memory, TO_DINT, program


        @program
        class Count:
            n = Memory(DINT)

            def scan(self):
                for i in range({limits.MAX_LOOP_TURNS}):
                    self.n = self.n + TO_DINT(1)
        """
    doc = msgpack.unpackb(compile_file(tmp_path, src))
    ops = [op for op, _ in doc["code"]]
    assert len(ops) < 20 and ops.count("loop") == 1, ops


def test_helpers_calling_each_other_in_a_circle_are_a_recursive_call_error(tmp_path):
    src = """\
        from softplc import INT, Output, TO_INT, program


        def ping(x):
            if x > TO_INT(0):
                return pong(x - TO_INT(1))  # E:call
            return x


        def pong(x):
            return ping(x)


        @program
        class Circle:
            y = Output(INT)

            def scan(self):
                self.y = ping(self.y)
        """
    with pytest.raises(CompileError) as ei:
        compile_file(tmp_path, src)
    e = ei.value
    assert e.construct == "recursive call", str(e)
    assert "ping calls itself through pong (ping > pong > ping)" in e.detail, str(e)
    # Reported at the call that closes the circle: pong's call of ping.
    assert e.line == line_of(src, "call", "pong")[0] + 5, str(e)


def test_helpers_nested_past_the_depth_limit_name_the_call(tmp_path):
    depth = limits.MAX_INLINE_DEPTH + 5
    lines = ["from softplc import INT, Output, TO_INT, program", "", ""]
    lines += ["def g0(x):", "    return x", "", ""]
    for k in range(1, depth + 1):
        lines += [f"def g{k}(x):", f"    return g{k - 1}(x) + TO_INT(1)", "", ""]
    lines += ["@program", "class Deep:", "    y = Output(INT)", ""]
    lines += ["    def scan(self):", f"        self.y = g{depth}(self.y)"]
    src = "\n".join(lines) + "\n"
    with pytest.raises(CompileError) as ei:
        compile_file(tmp_path, src)
    e = ei.value
    assert e.construct.startswith("call of g"), str(e)
    assert f"nest more than {limits.MAX_INLINE_DEPTH} deep" in e.detail, str(e)


def test_a_loop_over_thousands_of_user_blocks_compiles_to_one_loop(tmp_path):
    # Each element of an array of user blocks has the same layout, so one copy of the
    # block's code serves every index: the program does not grow with the array.
    src = """\
        from softplc import BOOL, Input, Output, function_block, program


        @function_block
        class Inv:
            a = Input(BOOL)
            b = Output(BOOL)

            def scan(self):
                self.b = not self.a


        @program
        class Many:
            x = Input(BOOL)
            y = Output(BOOL)
            invs = [Inv() for _ in range(5000)]

            def scan(self):
                for i in range(5000):
                    self.invs[i](a=self.x)
                self.y = self.invs[4999].b
        """
    doc = msgpack.unpackb(compile_file(tmp_path, src))
    assert len(doc["code"]) < 40, len(doc["code"])
    assert len(doc["symbols"]) == 2 * 5000


def test_block_instances_past_the_cell_limit_are_refused_at_their_declaration(tmp_path):
    n = limits.MAX_CELLS // 7 + 1  # a TON has 7 cells
    src = f"""\
        from softplc import BOOL, TON, Input, program


        @program
        class Timers:
            x = Input(BOOL)
            timers = [TON() for _ in range({n})]  # E:decl

            def scan(self):
                self.timers[0](IN=self.x)
        """
    with pytest.raises(CompileError) as ei:
        compile_file(tmp_path, src)
    e = ei.value
    assert (e.line, e.column) == line_of(src, "decl", "timers"), str(e)
    assert e.construct == "declaration of timers", str(e)
    assert f"more than {limits.MAX_CELLS} cells" in e.detail, str(e)


def test_a_program_declaring_more_variables_than_an_image_holds_is_refused(tmp_path):
    half = limits.MAX_VARIABLES // 2 + 1
    src = f"""\
        from softplc import ARRAY, BOOL, Memory, program


        @program  # E:class
        class Wide:
            a = Memory(ARRAY(BOOL, {half}))
            b = Memory(ARRAY(BOOL, {half}))

            def scan(self):
                pass
        """
    r = check(tmp_path, src)
    assert r.returncode == 2, r
    assert f"program class Wide declares {2 * half} process-image variables" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("bounds", "detail"),
    [
        ("BIG", "does not fit in 64 bits"),
        ("0, 10, 0", "step must not be zero"),
        ("TOP - 10, TOP - 1, 4", "loop counter would pass the 64-bit limit"),
    ],
)
def test_loop_bounds_the_counter_cannot_hold_are_refused(tmp_path, bounds, detail):
    src = f"""\
        from softplc import INT, Output, program

        BIG = 2**64
        TOP = 2**63

        @program
        class Edge:
            y = Output(INT)

            def scan(self):
                for i in range({bounds}):
                    self.y = 1
        """
    with pytest.raises(CompileError) as ei:
        compile_file(tmp_path, src)
    assert detail in ei.value.detail, str(ei.value)


# -- one number per limit on both sides --------------------------------------------------


def rust_const(path: str, name: str) -> int:
    """The value of ``pub const NAME: type = <int expression>;`` in a Rust file
    (integer literals, ``<<``, ``*`` and references to constants of the same file)."""
    text = (ROOT / path).read_text()
    m = re.search(rf"pub const {name}: \w+ = ([^;]+);", text)
    assert m, f"{name} not found in {path}"
    expr = re.sub(r"softplc_core::image::(\w+)", lambda g: str(rust_const(IMAGE_RS, g[1])), m[1])
    expr = re.sub(r"\bas \w+", "", expr).replace("_", "")
    assert re.fullmatch(r"[0-9 <*()+]+", expr), f"{name} = {m.group(1)}: not a plain number"
    return int(eval(expr))


IMAGE_RS = "rust/softplc-core/src/image.rs"
VERIFY_RS = "rust/softplc-vm/src/verify.rs"


def test_the_python_and_rust_limits_agree():
    assert limits.MAX_VARIABLES == rust_const(IMAGE_RS, "MAX_VARIABLES")
    assert limits.MAX_VARIABLES == rust_const(VERIFY_RS, "MAX_VARIABLES")
    assert limits.MAX_INSTRUCTIONS == rust_const(VERIFY_RS, "MAX_INSTRUCTIONS")
    assert limits.MAX_CELLS == rust_const(VERIFY_RS, "MAX_CELLS")
    assert limits.MAX_LOOP_TURNS == rust_const("rust/softplc-vm/src/interp.rs", "LOOP_BUDGET")


def test_every_limit_is_documented_with_its_value():
    doc = (ROOT / "docs" / "programs.md").read_text()
    section = doc[doc.index("## Limits") :]
    for name in limits.__all__:
        value = getattr(limits, name)
        assert f"`{name}`" in section, name
        assert f"{value:,}" in section, (name, value)

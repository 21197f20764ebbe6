"""Each unsupported construct is a CompileError at the right line and column, naming
the construct and giving a hint; nothing falls back to Python silently."""

import re
from pathlib import Path

import bad_programs as bp
import pytest
from softplc.compiler import CompileError, compile_instance

SOURCE = (Path(__file__).parent / "bad_programs.py").read_text().splitlines()

# class name -> (token the error points at, words expected in the construct/message)
CASES = {
    "WhileLoop": ("while", "while loop"),
    "LiteralLocalMeetsInt": ("self.x", "implicit conversion"),
    "AnnotationNotAType": ("abs", "annotation"),
    "ReannotatedLocal": ("REAL", "local variable type"),
    "BranchesOfNoCommonType": ("self.a if", "conditional expression"),
    "LiteralBranchTooBig": ("300", "conversion"),
    "IntTrueDivision": ("self.a / 2", "operator /"),
    "NarrowingStore": ("self.x", "implicit conversion"),
    "WriteInput": ("self.a", "assignment to an input"),
    "NonBoolCondition": ("self.n", "if condition"),
    "DynamicRange": ("self.n", "range bound"),
    "ListLiteral": ("[1, 2, 3]", "list"),
    "BuiltinMin": ("min(", "builtin min"),
    "FbCallAsValue": ("self.t(", "function block call"),
    "UnknownFbInput": ("3)", "TON input"),
    "TimeFromInt": ("500", "TIME value"),
    "MaybeUnassigned": ("v  #", "local variable"),
    "TryStatement": ("try", "try statement"),
    "LambdaUse": ("lambda", "lambda"),
    "PowerOperator": ("self.r **", "operator Pow"),
    "MixedLocalType": ("v = self.r", "local variable type"),
    "ConstIndexOutOfRange": ("3]", "array index"),
    "StringValue": ("self.y", "implicit conversion"),
    "WriteFbOutput": ("self.t.Q", "assignment to a block output"),
    "IsComparison": ("self.a is", "comparison Is"),
    "Recursion": ("recurse(x)", "recursive call"),
    "UndefinedAttribute": ("self.nope", "attribute"),
    "BoolArithmetic": ("self.a + 1", "operator +"),
    "QualityOfExpression": ("self.level + 1.0", "QUALITY()"),
    "AgeOfOutput": ("self.a)", "AGE()"),
    "AgeOfLocal": ("x)", "AGE()"),
    "QualityOfBlockOutput": ("self.t.Q", "QUALITY()"),
}


def where(name, token):
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{name}") or f"# E:{name} " in line:
            col = line.index(token) + 1
            return i, col
    raise AssertionError(f"no marker for {name}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_unsupported_construct_is_reported_at_its_line_and_column(name):
    token, construct = CASES[name]
    with pytest.raises(CompileError) as ei:
        compile_instance(getattr(bp, name)())
    e = ei.value
    line, col = where(name, token)
    assert (Path(e.file).name, e.line, e.column) == ("bad_programs.py", line, col), str(e)
    assert construct in e.construct, str(e)
    assert re.match(r"^.*bad_programs\.py:\d+:\d+: error: ", str(e)), str(e)


def test_every_error_carries_a_hint_or_a_detail():
    for name in CASES:
        with pytest.raises(CompileError) as ei:
            compile_instance(getattr(bp, name)())
        assert ei.value.detail
    hinted = 0
    for name in CASES:
        try:
            compile_instance(getattr(bp, name)())
        except CompileError as e:
            hinted += bool(e.hint)
    assert hinted >= len(CASES) * 2 // 3


def test_missing_return_names_the_helper():
    with pytest.raises(CompileError) as ei:
        compile_instance(bp.MissingReturn())
    assert "no_return_on_some_path" in str(ei.value)
    assert "return" in ei.value.hint

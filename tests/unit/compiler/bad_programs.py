"""Programs that use constructs outside the compiled subset, one each. A line marked
``# E:<Name>`` is where the compiler must report the error of class <Name>."""

# Columns are part of the expectations: keep the formatter away.
# fmt: off
# ruff: noqa: F841, I001
from softplc import BOOL, INT, REAL, Input, Memory, Output, program
from softplc import AGE, QUALITY, SINT, TIME, USINT
from softplc.authoring import ARRAY
from softplc.stdlib import TON, ms


@program
class WhileLoop:
    x = Memory(INT)

    def scan(self):
        while self.x < 3:  # E:WhileLoop
            self.x += 1


@program
class LiteralLocalMeetsInt:
    x = Output(INT)

    def scan(self):
        n = 0
        self.x = n  # E:LiteralLocalMeetsInt


@program
class AnnotationNotAType:
    x = Output(INT)

    def scan(self):
        n: abs = 0  # E:AnnotationNotAType
        self.x = n


@program
class ReannotatedLocal:
    x = Output(INT)

    def scan(self):
        n: INT = 0
        n: REAL = 1.0  # E:ReannotatedLocal
        self.x = n


@program
class BranchesOfNoCommonType:
    a = Input(BOOL)
    r = Input(REAL)
    y = Output(REAL)

    def scan(self):
        self.y = self.a if self.a else self.r  # E:BranchesOfNoCommonType


@program
class LiteralBranchTooBig:
    a = Input(BOOL)
    s = Input(SINT)
    y = Output(INT)

    def scan(self):
        self.y = self.s if self.a else 300  # E:LiteralBranchTooBig


@program
class IntTrueDivision:
    a = Input(INT)
    r = Output(REAL)

    def scan(self):
        self.r = self.a / 2  # E:IntTrueDivision


@program
class NarrowingStore:
    r = Input(REAL)
    x = Output(INT)

    def scan(self):
        self.x = self.r  # E:NarrowingStore


@program
class WriteInput:
    a = Input(BOOL)

    def scan(self):
        self.a = True  # E:WriteInput


@program
class NonBoolCondition:
    n = Input(INT)
    y = Output(BOOL)

    def scan(self):
        if self.n:  # E:NonBoolCondition
            self.y = True


@program
class DynamicRange:
    n = Input(INT)
    y = Output(INT)

    def scan(self):
        for i in range(self.n):  # E:DynamicRange
            self.y = self.y + 1


@program
class ListLiteral:
    y = Output(INT)

    def scan(self):
        vals = [1, 2, 3]  # E:ListLiteral
        self.y = vals[0]


@program
class BuiltinMin:
    a = Input(INT)
    y = Output(INT)

    def scan(self):
        self.y = min(self.a, 3)  # E:BuiltinMin


@program
class FbCallAsValue:
    a = Input(BOOL)
    y = Output(BOOL)
    t = TON(PT=ms(10))

    def scan(self):
        self.y = self.t(IN=self.a)  # E:FbCallAsValue


@program
class UnknownFbInput:
    a = Input(BOOL)
    t = TON(PT=ms(10))

    def scan(self):
        self.t(IN=self.a, PV=3)  # E:UnknownFbInput


@program
class TimeFromInt:
    a = Input(BOOL)
    t = TON()

    def scan(self):
        self.t(IN=self.a, PT=500)  # E:TimeFromInt


@program
class MaybeUnassigned:
    a = Input(BOOL)
    y = Output(INT)

    def scan(self):
        if self.a:
            v = self.y + 1
        self.y = v  # E:MaybeUnassigned


@program
class TryStatement:
    y = Output(INT)

    def scan(self):
        try:  # E:TryStatement
            self.y = 1
        except Exception:  # noqa: BLE001, S110
            pass


@program
class LambdaUse:
    y = Output(INT)

    def scan(self):
        f = lambda: 1  # E:LambdaUse
        self.y = f()


@program
class PowerOperator:
    r = Input(REAL)
    y = Output(REAL)

    def scan(self):
        self.y = self.r ** 2  # E:PowerOperator


@program
class MixedLocalType:
    a = Input(INT)
    r = Input(REAL)

    def scan(self):
        v = self.a
        v = self.r  # E:MixedLocalType


@program
class ConstIndexOutOfRange:
    arr = Memory(ARRAY(INT, 3))

    def scan(self):
        self.arr[3] = 1  # E:ConstIndexOutOfRange


@program
class StringValue:
    y = Output(INT)

    def scan(self):
        self.y = "abc"  # E:StringValue


@program
class WriteFbOutput:
    t = TON()

    def scan(self):
        self.t.Q = True  # E:WriteFbOutput


@program
class IsComparison:
    a = Input(BOOL)
    y = Output(BOOL)

    def scan(self):
        self.y = self.a is True  # E:IsComparison


def no_return_on_some_path(x):
    if x > 0:
        return x


@program
class MissingReturn:
    a = Input(INT)
    y = Output(INT)

    def scan(self):
        self.y = no_return_on_some_path(self.a)


def recurse(x):
    return recurse(x)  # E:Recursion


@program
class Recursion:
    a = Input(INT)
    y = Output(INT)

    def scan(self):
        self.y = recurse(self.a)


@program
class UndefinedAttribute:
    y = Output(INT)

    def scan(self):
        self.y = self.nope  # E:UndefinedAttribute


@program
class BoolArithmetic:
    a = Input(BOOL)
    y = Output(INT)

    def scan(self):
        self.y = self.a + 1  # E:BoolArithmetic


@program
class QualityOfExpression:
    level = Input(REAL)
    q = Output(USINT)

    def scan(self):
        self.q = QUALITY(self.level + 1.0)  # E:QualityOfExpression


@program
class AgeOfOutput:
    level = Input(REAL)
    a = Output(TIME)

    def scan(self):
        self.a = AGE(self.a)  # E:AgeOfOutput


@program
class AgeOfLocal:
    level = Input(REAL)
    a = Output(TIME)

    def scan(self):
        x = self.level
        self.a = AGE(x)  # E:AgeOfLocal


@program
class QualityOfBlockOutput:
    t = TON(PT=ms(5))
    q = Output(USINT)

    def scan(self):
        self.q = QUALITY(self.t.Q)  # E:QualityOfBlockOutput

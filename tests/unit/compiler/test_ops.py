"""The operation vocabulary of the intermediate form is one table, held together across
the compiler (Python) and the VM's verifier (Rust), as the block layouts are."""

import pytest
from softplc import _native
from softplc.compiler.irbuilder import IrBuilder
from softplc.compiler.ops import OPERAND_KINDS, OPS


def test_the_compiler_and_the_vm_have_the_same_operations_with_the_same_operands():
    native = {name: tuple(kinds) for name, kinds in _native.vm_operations()}
    assert native == OPS


def test_every_operand_kind_is_one_of_the_documented_kinds():
    assert {k for kinds in OPS.values() for k in kinds} <= set(OPERAND_KINDS)


def test_the_builder_refuses_an_operation_the_vm_does_not_know():
    b = IrBuilder("p", "p.py")
    with pytest.raises(AssertionError, match=r"compiler bug: fb\.NOPE"):
        b.emit("fb.NOPE", 0)
    with pytest.raises(AssertionError, match="compiler bug: mov with 3 operands"):
        b.emit("mov", 0, 1, 2)

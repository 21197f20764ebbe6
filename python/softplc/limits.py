"""The limits a program file must stay inside, in one table for the Python side.

Each limit is checked before anything proportional to the checked value is built, and
a program past one gets an error naming the construct (``file:line:col`` and a hint),
so that a mistaken or hostile file costs the compiler time and memory in proportion to
its text, never to the numbers written in it. ``docs/programs.md`` ("Limits") lists
them with their reasons.

Where the Rust side enforces the same limit on what it is handed (the process image in
``softplc-core``, the verifier in ``softplc-vm``), the numbers must be equal;
``tests/unit/compiler/test_limits.py`` holds them together. This module imports
nothing, so the authoring module and the compiler can both read it.

Example:
    >>> from softplc import limits
    >>> limits.MAX_ARRAY_LENGTH
    65536
"""

from __future__ import annotations

__all__ = [
    "MAX_ARRAY_LENGTH",
    "MAX_CELLS",
    "MAX_CONSTANT_BITS",
    "MAX_INLINED_NODES",
    "MAX_INLINE_DEPTH",
    "MAX_INSTRUCTIONS",
    "MAX_LOOP_TURNS",
    "MAX_UNROLLED_TURNS",
    "MAX_VARIABLES",
]

#: Elements of one ``ARRAY(type, n)`` declaration (checked where the type is written).
MAX_ARRAY_LENGTH = 65_536

#: Process-image variables one program declares, array elements counted one each
#: (checked by ``@program``). Equal to ``softplc_core::image::MAX_VARIABLES``, the most
#: one process image holds, so a program that passes ``softplc check`` fits an image.
MAX_VARIABLES = 65_536

#: Instructions of one compiled program. Equal to ``softplc_vm::verify::MAX_INSTRUCTIONS``.
MAX_INSTRUCTIONS = 1 << 18

#: Cells (locals, temporaries, constants, function-block state) of one compiled
#: program. Equal to ``softplc_vm::verify::MAX_CELLS``.
MAX_CELLS = 1 << 18

#: Nesting of inlined calls: helper functions, methods and function-block scans that
#: call one another, counted from ``scan``. Deeper nesting is almost always a mistake,
#: and the compiler recurses once per level.
MAX_INLINE_DEPTH = 32

#: Size of the program after inlining, in Python syntax-tree nodes: every inlined call
#: counts its function's body again, every unrolled loop turn its loop's body. The
#: compiler's time is proportional to this, and helpers that call each other twice at
#: each of 26 levels would otherwise expand 67 million times.
MAX_INLINED_NODES = 500_000

#: Turns of one ``for i in range(...)`` loop. A scan may take at most this many
#: backward jumps (``softplc_vm::interp::LOOP_BUDGET``), so a longer loop would fault
#: on every scan that reaches it.
MAX_LOOP_TURNS = 100_000_000

#: Turns of a loop the compiler unrolls: a loop that indexes an array of user function
#: blocks is compiled once per turn when it has at most this many turns, so each turn
#: addresses its blocks directly (faster); a longer one stays a loop that indexes them
#: at run time.
MAX_UNROLLED_TURNS = 4_096

#: Bits of an integer constant the compiler computes while folding constant
#: expressions (values of 64 bits and less are the only ones a program can use).
MAX_CONSTANT_BITS = 1_024

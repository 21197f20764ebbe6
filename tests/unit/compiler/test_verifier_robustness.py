"""The native verifier answers crafted and mutated intermediate forms with an error,
never a crash: operands replaced by extreme values (which overflow naive range
arithmetic), random byte changes and truncations of a real compiled program."""

import random

import msgpack
from softplc import SoftPlcError, _native
from softplc.compiler import compile_instance

from programs.conveyor_sorter import ConveyorSorter

EXTREMES = [-(2**63), -(2**63) + 1, -1, 0, 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63 // 2 + 1]


def verify(blob: bytes) -> bool:
    """True when the blob verifies; a SoftPlcError is the only other acceptable answer
    (a Rust panic would surface as PanicException, which is not one)."""
    try:
        _native.vm_verify(blob)
    except SoftPlcError:
        return False
    return True


def test_mutated_operands_and_bytes_give_errors_not_crashes():
    ir = compile_instance(ConveyorSorter())
    assert verify(ir)
    doc = msgpack.unpackb(ir)
    rng = random.Random(20240611)
    # Every indexed access and block call first: they compute ranges from operands.
    ranged = [k for k, (op, _) in enumerate(doc["code"]) if op in ("ldc", "stc") or "." in op]
    rejected = 0
    for trial in range(300):
        d = msgpack.unpackb(ir)
        for _ in range(rng.randint(1, 3)):
            pc = rng.choice(ranged) if ranged and trial % 2 else rng.randrange(len(d["code"]))
            args = d["code"][pc][1]
            if args:
                args[rng.randrange(len(args))] = rng.choice(EXTREMES)
        rejected += not verify(msgpack.packb(d, use_bin_type=True))
        blob = bytearray(ir)
        if trial % 3 == 0:
            del blob[rng.randrange(len(blob)) :]
        else:
            for _ in range(rng.randint(1, 4)):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
        verify(bytes(blob))
    assert rejected > 100  # the mutations do reach the checks

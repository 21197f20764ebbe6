"""The IEC type table of ``softplc.types``, held together with the Rust side."""

from __future__ import annotations

import numpy as np
from softplc import _native
from softplc.types import ALL_TYPES, NUMPY_DTYPES


def test_the_python_dtype_table_equals_the_one_the_trace_writer_uses():
    assert dict(_native.trace_dtypes()) == NUMPY_DTYPES


def test_every_type_has_a_dtype_of_its_size():
    assert set(NUMPY_DTYPES) == {t.name for t in ALL_TYPES}
    for t in ALL_TYPES:
        assert np.dtype(t.dtype).itemsize == max(t.size, 1), t
        assert np.dtype(t.dtype).kind == (
            "b" if t.name == "BOOL" else "f" if t.is_float else "i" if t.signed else "u"
        ), t

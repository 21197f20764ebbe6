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


def test_a_string_column_is_its_records_alike_in_python_and_the_trace_writer():
    from softplc.trace._schema import expected_dtype
    from softplc.types import STRING, type_from_name

    written = dict(_native.trace_dtypes(["STRING(12)", "STRING"]))
    assert written["STRING(12)"] == STRING(12).dtype == expected_dtype("STRING(12)") == "|V13"
    assert written["STRING(80)"] == STRING.dtype == "|V81"
    assert type_from_name("string(12)") == STRING(12) and STRING(12).size == 13
    assert expected_dtype("STRING(255)") is None

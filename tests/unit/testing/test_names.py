"""Name lookup with suggestions (softplc._names), shared by stimulus files, benches,
strategies and temporal assertions."""

import pytest
from softplc._names import NameIndex, NameLookupError

NAMES = ["tank.level", "tank.pump", "mixer.level", "mixer.step_timer.ET", "line.pending[0]"]


def test_full_names_and_unique_last_parts_resolve():
    idx = NameIndex(NAMES)
    assert idx.resolve("tank.pump") == "tank.pump"
    assert idx.resolve("pump") == "tank.pump"
    assert idx.resolve("step_timer.ET") == "mixer.step_timer.ET"
    assert idx.resolve("ET") == "mixer.step_timer.ET"
    assert idx.resolve("pending[0]") == "line.pending[0]"


def test_an_ambiguous_last_part_lists_the_candidates():
    with pytest.raises(NameLookupError, match=r"'level' is ambiguous: tank.level, mixer.level"):
        NameIndex(NAMES).resolve("level")


def test_an_unknown_name_suggests_the_closest_or_lists_the_known():
    idx = NameIndex(NAMES)
    assert str(_error(idx, "tank.pmp")) == "no variable 'tank.pmp' (did you mean tank.pump?)"
    assert "did you mean line.pending[0]" in str(_error(idx, "pendng[0]"))
    many = NameIndex([f"p.v{k}" for k in range(20)], what="signal")
    assert str(_error(many, "zzz")) == (
        "no signal 'zzz' (known: p.v0, p.v1, p.v2, p.v3, p.v4, p.v5, p.v6, p.v7, ... (20 in all))"
    )
    assert "there are no variables" in str(_error(NameIndex([]), "x"))


def _error(idx, name):
    with pytest.raises(NameLookupError) as ei:
        idx.resolve(name)
    return ei.value

"""The tank follows an operator's plan (stimulus.csv): the band moves down at 20 s, the
pump is disabled from 40 s to 50 s. Checked with temporal assertions on the recorded
run; a golden trace joins them with part B of the testing toolkit."""

from pathlib import Path

import pytest
from softplc.testing import always, never, responds

PLAN = Path(__file__).parent / "stimulus.csv"


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_the_tank_follows_the_operators_plan(plc, mode):
    bench = plc("programs/tank.py", mode=mode)
    bench.play(PLAN)
    assert bench.time_ns == 70_010_000_000
    always(bench, "39 < level < 61", after="5s", before="20s")
    always(bench, "29 < level < 46", after="32s", before="40s")
    never(bench, "pump", after="40s", before="49.99s")
    responds(bench, "level < low_limit and enable", "pump", within="10ms")
    never(bench, "alarm", before="40s")

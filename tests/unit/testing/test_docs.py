"""Every ``python`` block of docs/testing.md is a test module: they all run, with pytest
and the softplc plugin, from the project root, and pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOC = ROOT / "docs" / "testing.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line, code) of each python block."""
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        out.append((text[: m.start()].count("\n") + 2, m.group(1)))
    return out


def test_the_tutorial_has_python_blocks_and_they_all_pass(tmp_path: Path):
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    for k, (line, code) in enumerate(blocks):
        (tmp_path / f"test_doc_block_{k}_line_{line}.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
    # Every test the blocks define ran: test functions and state machine test cases.
    expected = sum(len(re.findall(r"^(?:def test_|Test\w+ = )", code, re.M)) for _, code in blocks)
    assert f"{expected} passed" in r.stdout, r.stdout[-2000:]

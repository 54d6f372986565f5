"""The demo runs end to end (quick mode) and learns something."""

import pytest

from kerasdl.demo import format_table
from kerasdl.demo import run_demo

# Command-line and whole-pipeline tests: their parts are tested on every
# backend elsewhere (tests/conftest.py, ONE_BACKEND).
pytestmark = pytest.mark.one_backend


def test_quick_demo_rows_and_table():
    rows = run_demo(quick=True)
    models = [r["model"] for r in rows]
    assert models[:2] == ["linear_bn", "conv_bn"]
    baseline = {r["model"]: r for r in rows if r["step"] == "baselines"}
    # 10 balanced classes: chance is 0.10.
    assert baseline["linear_bn"]["value"] > 0.5
    assert baseline["linear_bn"]["params"] == 28 * 28 * 10 + 10 + 4
    table = format_table(rows)
    assert "linear_bn" in table and "val_accuracy" in table

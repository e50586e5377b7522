"""Test modules are imported by basename (the tiers are not packages), so two tiers may not
hold files of the same name: pytest refuses to collect the second one, and the whole run
stops before any test (as a merge once did to `make test`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_tiers_hold_a_test_module_of_the_same_name() -> None:
    names = Counter(p.name for p in TESTS.glob("*/test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []

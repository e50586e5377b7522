"""The soak's short mode (``make soak`` for a few minutes, bench/soak): two stacks cycling on
one pool of a private libvirtd, the operator loop and every kind of fault. It must exit 0:
nothing lost, nothing left behind. (Real failures are in its table, printed here on failure;
``SOAK_STRICT=1`` makes them fail it too.)"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import REPO_ROOT

pytestmark = pytest.mark.e2e
MINUTES = float(os.environ.get("SOAK_TEST_MINUTES") or 2.5)


def test_a_short_soak_loses_nothing_and_leaves_nothing(tmp_path: Path) -> None:
    figures = tmp_path / "soak.json"
    seed = int(os.environ.get("SOAK_SEED") or secrets.randbelow(10**6))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", str(MINUTES), "--seed", str(seed),
         "--host", os.environ.get("SOAK_HOST") or "debian", "--json", str(figures)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=MINUTES * 60 + 900, check=False,
    )
    said = f"seed {seed}, exit {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert figures.exists(), said
    result = json.loads(figures.read_text())
    assert result["lost"] == 0, said
    assert result["left"] == [], said
    assert sum(result["faults"].values()) >= 3, said  # the faults did strike
    assert sum(result["cycles"].values()) >= 1, said  # the stacks did cycle
    assert proc.returncode == 0, said

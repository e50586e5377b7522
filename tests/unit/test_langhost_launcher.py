"""The language-host launcher's own Go tests (Pulumi.yaml lookup and its virtualenv option, the
RunPlugin command line); its end-to-end proofs are tests/e2e/test_own_project.py and
tests/e2e/test_policy.py (a policy pack started through RunPlugin)."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.stack import REPO_ROOT


def test_launcher_go_tests_pass() -> None:
    go = shutil.which("go") or "/usr/local/go/bin/go"  # where scripts/install-pulumi.sh looks
    assert os.access(go, os.X_OK), "go not found (scripts/install-pulumi.sh needs it as well)"
    proc = subprocess.run(
        [go, "test", "./..."], cwd=REPO_ROOT / "scripts" / "langhost-launcher",
        env={**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"},
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

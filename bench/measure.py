"""MRTD of a 4 MiB TDVF: read, parse and replay (what TrustDomain.check adds to a preview).

Uses Debian sid's OVMF.inteltdx.ms.fd when $PULUMI_TDX_UPSTREAM_ROOT names a root holding it,
else a synthetic 4 MiB TDVF of the same shape (tests/support/tdvf.py)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tdx_provider.host import measure
from tests.support.tdvf import four_mib_tdvf

TARGET_S = 0.2
DEBIAN_TDVF = "usr/share/ovmf/OVMF.inteltdx.ms.fd"


def _firmware(workroot: Path) -> tuple[Path, str]:
    root = os.environ.get("PULUMI_TDX_UPSTREAM_ROOT")
    if root and (Path(root) / DEBIAN_TDVF).is_file():
        return Path(root) / DEBIAN_TDVF, "Debian sid OVMF.inteltdx.ms.fd"
    path = workroot / "tdvf-4m.fd"
    path.write_bytes(four_mib_tdvf().build())
    return path, "synthetic 4 MiB TDVF (edk2 layout)"


def run_measure(runs: int, workroot: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=workroot) as scratch:
        path, label = _firmware(Path(scratch))
        seconds: dict[str, list[float]] = {}
        for order in measure.PageOrder:
            seconds[order.value] = []
            for _ in range(max(runs, 1)):
                started = time.perf_counter()
                measure.mrtd_of_file(str(path), order)
                seconds[order.value].append(time.perf_counter() - started)
        size = path.stat().st_size
    return {
        "firmware": label, "bytes": size, "runs": max(runs, 1),
        "median_s": {k: round(statistics.median(v), 4) for k, v in seconds.items()},
        "max_s": {k: round(max(v), 4) for k, v in seconds.items()},
        "target_s": TARGET_S,
    }


if __name__ == "__main__":
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(json.dumps(run_measure(5), indent=1))

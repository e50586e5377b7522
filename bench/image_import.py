"""Image import: BaseImage of a qcow2 full of random data versus ``cp`` and ``sha256sum``.

Every measurement starts from the same state: the source file read once (warm page cache) and
``sync`` run (no dirty pages from the previous step being written back under it). The order of
the methods is reversed on every other run. Neither
``cp`` nor libvirt's upload syncs the destination, so both are measured to the page cache.

- ``cp`` and ``sha256sum``: coreutils, one after the other (the target's baseline is the sum).
- floor upload: plain libvirt-python upload stream into a pool volume, no hashing.
- BaseImage (provider): ``BaseImageProvider.check`` + ``create`` in this process: the libvirt
  upload stream with the SHA-256 computed while streaming, plus our ledger.
- BaseImage with ``sha256`` pinned: the same, and check (preview) verifies the source first.
- BaseImage (pulumi up): ``pulumi up`` of a stack holding a Pool and the BaseImage.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import libvirt

from tdx_provider.dynamic.base_image import BaseImageProvider
from tdx_provider.storage import pool as pools

from .common import BENCH_ROOT, URI, clear_libvirt, median
from .floor import CHUNK, _volume_xml, upload_file
from .layout import Layout, qcow2_virtual_size
from .pulumi_cli import PulumiProject


def make_image(size_mib: int) -> Path:
    """A qcow2 whose ``size_mib`` MiB of guest data are random (so nothing compresses or is
    sparse), cached between runs in the bench directory."""
    path = BENCH_ROOT / f"random-{size_mib}m.qcow2"
    done = path.with_suffix(".done")
    if path.exists() and done.exists():
        return path
    BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    raw = BENCH_ROOT / f"random-{size_mib}m.raw"
    subprocess.run(["dd", "if=/dev/urandom", f"of={raw}", "bs=1M", f"count={size_mib}",
                    "status=none"], check=True)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
                   check=True)
    raw.unlink()
    done.write_text("ok\n")
    return path


def remove_image(size_mib: int) -> None:
    path = BENCH_ROOT / f"random-{size_mib}m.qcow2"
    path.unlink(missing_ok=True)
    path.with_suffix(".done").unlink(missing_ok=True)


def _settle(source: Path) -> None:
    """Warm the source in the page cache and flush dirty pages left by the previous step."""
    with source.open("rb") as handle:
        while handle.read(CHUNK):
            pass
    subprocess.run(["sync"], check=True)


def _timed_command(*argv: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.monotonic() - start, proc.stdout


def _floor_upload(conn: libvirt.virConnect, pool_name: str, name: str, source: Path) -> float:
    pool = conn.storagePoolLookupByName(pool_name)
    start = time.monotonic()
    vol = pool.createXML(_volume_xml(name, qcow2_virtual_size(source), "qcow2", "0644"), 0)
    upload_file(conn, vol, source)
    seconds = time.monotonic() - start
    vol.delete(0)
    return seconds


def _provider_import(pool_name: str, name: str, source: Path,
                     sha256: str | None = None) -> tuple[float, str]:
    provider = BaseImageProvider()
    props = {"pool": pool_name, "source": str(source), "name": name, "sha256": sha256,
             "format": None, "uri": URI, "path": None, "key": None, "capacity": None,
             "allocation": None,
             "owner": {"project": "ptdx-bench", "stack": "import", "resource": "base"}}
    start = time.monotonic()
    checked = provider.check({}, props)
    if checked.failures:
        raise RuntimeError(f"check failed: {[(f.property, f.reason) for f in checked.failures]}")
    result = provider.create(checked.inputs)
    seconds = time.monotonic() - start
    provider.delete(result.id, result.outs)
    return seconds, result.outs["sha256"]


def _stack_program(layout: Layout, source: Path) -> str:
    return textwrap.dedent(f'''\
        from pulumi_tdx import BaseImage, Pool

        pool = Pool("pool", name={layout.pool!r}, path={layout.pool_path!r}, autostart=False)
        BaseImage("base", pool=pool, source={str(source)!r}, name={layout.base!r})
        ''')


def run_import(size_mib: int, runs: int, workroot: Path) -> dict[str, Any]:
    source = make_image(size_mib)
    file_mib = source.stat().st_size / 1024 / 1024
    direct = Layout("import", 0)
    stack = Layout("importstack", 0)
    copy_target = BENCH_ROOT / "copy-target.qcow2"
    samples: dict[str, list[float]] = {"cp": [], "sha256sum": [], "floor_upload": [],
                                       "provider": [], "provider_pinned": [], "pulumi_up": []}
    digests: set[str] = set()
    conn = libvirt.open(URI)
    project = PulumiProject(workroot / "import", "ptdx-bench-import",
                            _stack_program(stack, source))
    try:
        pools.ensure(conn, direct.pool, direct.pool_path, autostart=False)
        def cp() -> float:
            seconds, _ = _timed_command("cp", str(source), str(copy_target))
            copy_target.unlink()
            return seconds

        def sha256sum() -> float:
            seconds, out = _timed_command("sha256sum", str(source))
            digests.add(out.split()[0])
            return seconds

        def floor_upload() -> float:
            return _floor_upload(conn, direct.pool, direct.base, source)

        def provider(pinned: bool = False) -> float:
            seconds, digest = _provider_import(direct.pool, direct.base, source,
                                               sha256=next(iter(digests)) if pinned else None)
            digests.add(digest)
            return seconds

        def pulumi_up() -> float:
            seconds = project.up().seconds
            project.destroy()
            return seconds

        steps = {"cp": cp, "sha256sum": sha256sum, "floor_upload": floor_upload,
                 "provider": provider, "provider_pinned": lambda: provider(pinned=True),
                 "pulumi_up": pulumi_up}
        order = list(steps)
        for run in range(runs):
            # Alternate the order of the methods between runs: what runs right after what
            # measurably changes a 1 GiB write (page cache, writeback, libvirtd's helper).
            for key in order if run % 2 == 0 else order[::-1]:
                _settle(source)
                samples[key].append(steps[key]())
    finally:
        copy_target.unlink(missing_ok=True)
        project.remove()
        conn.close()
        clear_libvirt(direct.prefix)
        clear_libvirt(stack.prefix)
    seconds = {k: median(v) for k, v in samples.items()}
    baseline = (seconds["cp"] or 0) + (seconds["sha256sum"] or 0)

    def rate(s: float | None) -> float | None:
        return round(file_mib / s, 1) if s else None

    return {
        "image_mib": round(file_mib, 1),
        "virtual_mib": size_mib,
        "runs": runs,
        "samples": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "seconds": {k: round(v, 3) if v is not None else None for k, v in seconds.items()},
        "mib_per_s": {**{k: rate(v) for k, v in seconds.items()},
                      "cp_then_sha256sum": rate(baseline)},
        "cp_then_sha256sum_seconds": round(baseline, 3),
        "ratio_provider_vs_baseline": round(baseline / seconds["provider"], 3)
        if seconds["provider"] else None,
        "ratio_provider_pinned_vs_baseline": round(baseline / seconds["provider_pinned"], 3)
        if seconds["provider_pinned"] else None,
        "ratio_pulumi_up_vs_baseline": round(baseline / seconds["pulumi_up"], 3)
        if seconds["pulumi_up"] else None,
        "ratio_floor_upload_vs_baseline": round(baseline / seconds["floor_upload"], 3)
        if seconds["floor_upload"] else None,
        "digests_agree": len(digests) == 1,
    }

"""Create-before-delete replacement of an auto-named resource gets a fresh name (on each libvirt
host of the matrix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.guest import TestGuest
from tests.support.hosts import LibvirtHost
from tests.support.stack import Stack, steps

pytestmark = pytest.mark.e2e

PROGRAM = """
import pulumi
from pulumi_tdx import BaseImage, Overlay, Pool

cfg = pulumi.Config()
prefix = cfg.require("prefix")
uri = cfg.require("uri")
pool = Pool("pool", name=prefix, path=cfg.require("path"), autostart=False, uri=uri)
bases = {
    key: BaseImage(f"base-{key}", pool=pool, name=f"{prefix}-{key}", source=cfg.require(key),
                   uri=uri)
    for key in ("one", "two")
}
disk = Overlay("disk", pool=pool, base_image=bases[cfg.require("use")], uri=uri)
pulumi.export("disk_name", disk.name)
pulumi.export("backing", disk.backing_path)
"""


def test_auto_named_overlay_is_replaced_create_first_under_a_new_name(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    second = work_dir / "second.raw"
    second.write_bytes(b"\0" * (1 << 20))
    stack = make_stack(PROGRAM)
    stack.config({"prefix": e2e_id, "path": str(work_dir / "pool"), "uri": libvirt_host.uri,
                  "one": str(guest.base_image), "two": str(second), "use": "one"})
    stack.up()
    first = stack.outputs()
    assert first["disk_name"].startswith("disk-")

    stack.config({"use": "two"})
    assert steps(stack.preview_json())["disk"] == "replace"
    result = stack.up()
    after = stack.outputs()
    assert after["disk_name"] != first["disk_name"]
    assert after["backing"].endswith(f"{e2e_id}-two")
    assert "replaced" in result.output

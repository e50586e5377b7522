"""Create-before-delete replacement of an auto-named resource gets a fresh name (on each libvirt
host of the matrix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.guest import TestGuest
from tests.support.hosts import LibvirtHost
from tests.support.programs import program
from tests.support.stack import Stack, steps

pytestmark = pytest.mark.e2e


def test_auto_named_overlay_is_replaced_create_first_under_a_new_name(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    second = work_dir / "second.raw"
    second.write_bytes(b"\0" * (1 << 20))
    stack = make_stack(program("overlay_on_one_of_two_bases"))
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

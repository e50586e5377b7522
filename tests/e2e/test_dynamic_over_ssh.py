"""The dynamic providers over a real remote transport: every resource through
``qemu+ssh://`` to this machine (our own sshd, scripts/setup-sshd.sh). libvirt forks an ``ssh``
child per connection from the provider's threads while grpc runs in the same process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import guest as tg
from tests.support.programs import program
from tests.support.stack import Stack, steps

pytestmark = pytest.mark.e2e
PROGRAM = program("every_resource")  # tests/fixtures/programs/every_resource


def test_every_resource_goes_up_previews_no_change_and_goes_down_over_ssh(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
) -> None:
    uri = os.environ["PULUMI_TDX_SSH_URI"]  # scripts/env.sh
    stack = make_stack(PROGRAM)
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": uri,
                  "image": str(guest.base_image), "kernel": str(guest.kernel),
                  "initrd": str(guest.initrd), "cmdline": tg.CMDLINE})
    stack.up()
    assert stack.outputs()["state"] == "running"
    assert set(steps(stack.preview_json()).values()) == {"same"}
    stack.destroy()
    assert stack.resources() == []

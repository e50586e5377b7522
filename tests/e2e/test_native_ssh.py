"""A real remote transport through the native provider: the provider's ``tdx:uri`` is
``qemu+ssh://`` to this machine (our own sshd and key, from ``make setup``), and the native_vm
stack goes up, previews no change and goes down, repeatedly (libvirt starts an ``ssh`` child per
connection from the plugin's threads: the plugin keeps grpc's fork handlers out of them)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import libvirt_names
from tests.support import guest as tg
from tests.support.programs import program
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
SSH_DIR = Path(os.environ.get("PULUMI_TDX_CACHE") or Path.home() / ".cache" / "pulumi-tdx") / "ssh"
SSH_URI = os.environ.get("PULUMI_TDX_SSH_URI") or (
    f"qemu+ssh://root@127.0.0.1:2222/system?keyfile={SSH_DIR}/id_ed25519")


def test_native_stack_over_qemu_ssh(make_stack: Callable[..., Stack], e2e_id: str,
                                    work_dir: Path, guest: tg.TestGuest) -> None:
    stack = make_stack(program("native_vm"), project="ptdx-e2e-native")
    stack.config({
        "tdx:uri": SSH_URI, "prefix": e2e_id, "work": str(work_dir),
        "kernel": str(guest.kernel), "initrd": str(guest.initrd),
        "image": str(guest.base_image), "cmdline": tg.CMDLINE,
        "sha256": hashlib.sha256(guest.base_image.read_bytes()).hexdigest(),
    })
    for _ in range(2):
        stack.up()
        assert stack.outputs()["state"] == "running"
        assert libvirt_names("qemu:///system", e2e_id)["domains"] == [f"{e2e_id}-td"]
        stack.preview("--expect-no-changes")
        tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, 90)
        stack.destroy()
        assert libvirt_names("qemu:///system", e2e_id) == {"domains": [], "pools": [],
                                                           "volumes": []}
        (work_dir / "td.log").unlink()

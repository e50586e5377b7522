"""One stack on two libvirt hosts through explicit ``tdx`` provider instances (the native
plugin): examples/two-hosts puts a guest on the system libvirtd and one on the upstream host,
each provider's resources on its own host, and destroys both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import libvirt_names
from tests.support import guest as tg
from tests.support.hosts import hosts
from tests.support.stack import REPO_ROOT, Stack

pytestmark = pytest.mark.e2e
BOOT_TIMEOUT = 90.0


def test_two_hosts_example_puts_one_guest_on_each_host(
        make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
        guest: tg.TestGuest) -> None:
    uris = [host.uri for host in hosts()]
    assert len(uris) == 2
    stack = make_stack((REPO_ROOT / "examples" / "two-hosts" / "__main__.py").read_text(),
                       project="ptdx-e2e-two-hosts")
    stack.config({"hosts": ",".join(uris), "prefix": e2e_id,
                  "poolPath": str(work_dir / "pools"), "baseImage": str(guest.base_image),
                  "tdx": "false", "domainType": "qemu", "vsock": "false", "network": "none",
                  "kernel": str(guest.kernel), "initrd": str(guest.initrd),
                  "cmdline": tg.CMDLINE, "memoryMib": 256, "vcpus": 1,
                  "consoleLog": str(work_dir)})
    stack.up()
    outputs = stack.outputs()
    assert outputs["hosts"] == {"0": uris[0], "1": uris[1]}
    assert outputs["states"] == {"0": "running", "1": "running"}
    for index, uri in enumerate(uris):
        name = f"{e2e_id}-{index}"
        assert libvirt_names(uri, name) == {"domains": [f"{name}-td"], "pools": [name],
                                            "volumes": sorted([f"{name}-base",
                                                               f"{name}-disk"])}
        other = libvirt_names(uris[1 - index], name)
        assert other == {"domains": [], "pools": [], "volumes": []}  # each on its own host
        tg.wait_for_text(work_dir / f"{name}-td.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
        assert tg.read_banner(outputs["ssh_ports"][str(index)], 30) == tg.SSH_BANNER
    stack.preview("--expect-no-changes")
    stack.destroy()
    for uri in uris:
        assert libvirt_names(uri, e2e_id) == {"domains": [], "pools": [], "volumes": []}

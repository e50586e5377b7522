"""The examples stay true to the code: their programs preview cleanly through the real CLI,
and the GPU example validates BDFs against a fixture host's node devices."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.guest import (
    CMDLINE,
    HOSTNAME_MARKER,
    SSH_BANNER,
    SSH_KEY_MARKER,
    TestGuest,
    read_banner,
    wait_for_text,
)
from tests.support.stack import REPO_ROOT, Stack, steps
from tests.support.tdvf import Layout

pytestmark = pytest.mark.e2e
FIXTURE_HOST = REPO_ROOT / "tests" / "fixtures" / "testhost.xml"


def example(name: str) -> str:
    return (REPO_ROOT / "examples" / name / "__main__.py").read_text()


def public_key(directory: Path) -> str:
    path = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "example@test", "-f",
                    str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def test_fleet_example_previews_one_domain_per_count(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = make_stack(example("fleet"))
    stack.config({"count": 3, "baseImage": str(guest.base_image), "tdx": "false",
                  "domainType": "qemu", "kernel": str(guest.kernel), "initrd": str(guest.initrd),
                  "network": "none", "vsock": "false", "memoryMib": 256, "vcpus": 1,
                  "poolName": e2e_id, "poolPath": str(work_dir / "pool"),
                  "sshPublicKey": public_key(work_dir)})
    plan = steps(stack.preview_json())
    assert sorted(n for n in plan if n.startswith("td-")) == ["td-0", "td-1", "td-2"]
    assert sorted(n for n in plan if n.startswith("seed-")) == ["seed-0", "seed-1", "seed-2"]
    assert all(op == "create" for n, op in plan.items() if n != stack.name)


def gpu_stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
              guest: TestGuest, gpus: str, tdx: bool, tdvf: bool = True) -> Stack:
    firmware = work_dir / "OVMF.fd"
    if tdvf:  # a TD's preview measures its firmware (MRTD): a TDVF laid out by the test
        firmware.write_bytes(Layout().build())
    else:
        shutil.copy(guest.kernel, firmware)
    stack = make_stack(example("gpu"))
    stack.config({"uri": f"test://{FIXTURE_HOST}", "gpus": gpus, "tdx": str(tdx).lower(),
                  "baseImage": str(guest.base_image), "firmware": str(firmware),
                  "network": "none", "memoryMib": 4096, "vcpus": 4,
                  "poolName": e2e_id, "poolPath": str(work_dir / "pool")})
    return stack


def test_gpu_example_previews_against_a_fixture_host_with_h100s(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = gpu_stack(make_stack, e2e_id, work_dir, guest, "3b:00.0,0000:86:00.0", tdx=False)
    plan = steps(stack.preview_json())
    assert plan["gpu-td"] == "create"


def test_gpu_example_names_an_absent_gpu_at_preview(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = gpu_stack(make_stack, e2e_id, work_dir, guest, "0000:3b:00.0,0000:99:00.0", tdx=False)
    result = stack.preview(check=False)
    assert result.returncode != 0
    assert "gpus[1]" in result.output and "0000:99:00.0" in result.output
    # the engine shows the list it found the bad item in, not `property gpus[1] value {<nil>}`
    assert "property gpus value {[{0000:3b:00.0} {0000:99:00.0}]} has a problem: gpus[1]: " \
        in result.output, result.output


def test_trust_domain_on_a_host_without_tdx_fails_at_preview_with_the_reasons(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = gpu_stack(make_stack, e2e_id, work_dir, guest, "0000:3b:00.0", tdx=True)
    result = stack.preview(check=False)
    assert result.returncode != 0
    assert "tdx: this host cannot run TDX trust domains" in result.output
    assert "tdx=False" in result.output
    assert "firmware:" not in result.output  # its MRTD was computed


def test_a_trust_domain_whose_firmware_is_not_a_tdvf_fails_at_preview_naming_it(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = gpu_stack(make_stack, e2e_id, work_dir, guest, "0000:3b:00.0", tdx=True,
                      tdvf=False)
    result = stack.preview(check=False)
    assert result.returncode != 0
    assert "firmware: no trust domain can be measured from it" in result.output
    assert "no OVMF GUIDed table" in result.output


SSH_COMMAND = re.compile(r"ssh -p (\d+) root@127\.0\.0\.1")


def tiny_guest_config(guest: TestGuest, e2e_id: str, work_dir: Path) -> dict[str, object]:
    """What `make demo` sets: a regular VM under TCG with the test guest (this host has no TDX)."""
    return {"baseImage": str(guest.base_image), "tdx": "false", "domainType": "qemu",
            "kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": CMDLINE,
            "network": "none", "vsock": "false", "memoryMib": 256, "vcpus": 1,
            "poolName": e2e_id, "poolPath": str(work_dir / "pool")}


def assert_ssh_works(command: str) -> None:
    match = SSH_COMMAND.fullmatch(command)
    assert match, command
    assert read_banner(int(match.group(1)), 60) == SSH_BANNER


def test_quickstart_exports_a_working_ssh_command_and_the_cid(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = make_stack(example("quickstart"))
    key = public_key(work_dir)
    console = work_dir / "console.log"
    stack.config({**tiny_guest_config(guest, e2e_id, work_dir), "sshPublicKey": key,
                  "consoleLog": str(console)})
    assert_declares_ssh_and_cid(stack)
    stack.up()
    outputs = stack.outputs()
    assert outputs["ssh"] == f"ssh -p {outputs['ssh_port']} root@127.0.0.1"
    assert_ssh_works(outputs["ssh"])
    # the key from config reached the guest through the seed (the test guest prints it)
    kind, blob, _comment = key.split()
    wait_for_text(console, f"{HOSTNAME_MARKER} td-quickstart", 60)
    wait_for_text(console, f"{SSH_KEY_MARKER} {kind} {blob}", 60)
    # vsock=false here (no /dev/vhost-vsock): the CID is null, which `stack output` leaves out
    assert "cid" not in outputs


def test_fleet_exports_a_working_ssh_command_and_the_cid_per_domain(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = make_stack(example("fleet"))
    stack.config({**tiny_guest_config(guest, e2e_id, work_dir), "count": 2})
    stack.up()
    outputs = stack.outputs()
    assert sorted(outputs["ssh"]) == sorted(outputs["cid"]) == ["td-0", "td-1"]
    for command in outputs["ssh"].values():
        assert_ssh_works(command)


def test_gpu_example_declares_ssh_and_cid_outputs(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    assert_declares_ssh_and_cid(gpu_stack(make_stack, e2e_id, work_dir, guest, "3b:00.0",
                                          tdx=False))


def assert_declares_ssh_and_cid(stack: Stack) -> None:
    text = stack.preview().stdout
    outputs = text[text.index("--outputs:--"):]
    assert re.search(r"^\s+ssh\s*:", outputs, re.MULTILINE), outputs
    assert re.search(r"^\s+cid\s*:", outputs, re.MULTILINE), outputs

"""The examples stay true to the code: their programs preview cleanly through the real CLI,
and the GPU example validates BDFs against a fixture host's node devices."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.guest import TestGuest
from tests.support.stack import REPO_ROOT, Stack, steps
from tests.support.tdvf import Layout

pytestmark = pytest.mark.e2e
FIXTURE_HOST = REPO_ROOT / "tests" / "fixtures" / "testhost.xml"


def example(name: str) -> str:
    return (REPO_ROOT / "examples" / name / "__main__.py").read_text()


def test_fleet_example_previews_one_domain_per_count(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: TestGuest
) -> None:
    stack = make_stack(example("fleet"))
    stack.config({"count": 3, "baseImage": str(guest.base_image), "tdx": "false",
                  "domainType": "qemu", "kernel": str(guest.kernel), "initrd": str(guest.initrd),
                  "network": "none", "vsock": "false", "memoryMib": 256, "vcpus": 1,
                  "poolName": e2e_id, "poolPath": str(work_dir / "pool")})
    plan = steps(stack.preview_json())
    assert sorted(n for n in plan if n.startswith("td-")) == ["td-0", "td-1", "td-2"]
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

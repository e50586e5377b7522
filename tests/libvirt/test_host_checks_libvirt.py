"""Host readiness against real libvirt: the test:/// fixture host and this machine's libvirtd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.connection import connect
from tdx_provider.errors import HostNotReadyError
from tdx_provider.host.checks import REMOTE_REASON, check_host, require_tdx

pytestmark = pytest.mark.libvirt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TEST_HOST_URI = "test://" + str(FIXTURES / "testhost.xml")
READY = FIXTURES / "sysfs-tdx-ready"
NO_TDX = FIXTURES / "sysfs-no-tdx"
SYSTEM_URI = "qemu:///system"
FILE_CHECKS = ["kvm_tdx", "cpu_tdx_flag", "tdx_firmware", "vhost_vsock", "iommu_vfio"]


@pytest.fixture
def fixture_host() -> Iterator[libvirt.virConnect]:
    with connect(TEST_HOST_URI) as connection:
        yield connection


@pytest.fixture
def system() -> Iterator[libvirt.virConnect]:
    with connect(SYSTEM_URI) as connection:  # no libvirtd is a failure, not a skip
        yield connection


# --- the test:/// fixture host ---------------------------------------------------------------


def test_ready_tree_passes_every_file_check(fixture_host: libvirt.virConnect) -> None:
    report = check_host(fixture_host, READY)
    assert {name: report.get(name).status for name in FILE_CHECKS} == dict.fromkeys(
        FILE_CHECKS, "pass"
    )


def test_ready_tree_on_the_test_driver_is_blocked_only_by_libvirt(
    fixture_host: libvirt.virConnect,
) -> None:
    # The test driver has no domain capabilities, so libvirt's own TDX answer is missing.
    report = check_host(fixture_host, READY)
    assert not report.tdx_ready
    assert [check.name for check in report.failures()] == ["libvirt_tdx"]
    assert "virConnectGetDomainCapabilities" in report.get("libvirt_tdx").reason


def test_gpus_are_listed_with_bdf_and_iommu_group(fixture_host: libvirt.virConnect) -> None:
    check = check_host(fixture_host, READY).get("gpus")
    assert check.status == "pass"
    assert "0000:3b:00.0 GH100 [H100 PCIe] (IOMMU group 41)" in check.reason
    assert "0000:86:00.0 GH100 [H100 PCIe] (IOMMU group 95)" in check.reason
    assert "0000:17:00.0" not in check.reason


def test_no_tdx_tree_fails_with_concrete_reasons(fixture_host: libvirt.virConnect) -> None:
    report = check_host(fixture_host, NO_TDX)
    failed = {check.name: check.reason for check in report.failures()}
    assert set(failed) == {"kvm_tdx", "cpu_tdx_flag", "tdx_firmware", "libvirt_tdx"}
    assert "tdx=1" in failed["kvm_tdx"]
    assert "tdx_host_platform" in failed["cpu_tdx_flag"]
    assert "no TDX firmware" in failed["tdx_firmware"]
    assert report.get("vhost_vsock").status == "fail"  # reported, but not a blocker
    assert report.get("iommu_vfio").status == "fail"


def test_require_tdx_lists_every_blocking_reason(fixture_host: libvirt.virConnect) -> None:
    with pytest.raises(HostNotReadyError) as caught:
        require_tdx(fixture_host, NO_TDX)
    error = caught.value
    assert str(error).startswith("this host cannot run TDX trust domains: ")
    assert len(error.reasons) == 4
    assert any("tdx=1" in reason for reason in error.reasons)
    assert not any("vhost-vsock" in reason for reason in error.reasons)


def test_remote_host_files_are_not_inspected(fixture_host: libvirt.virConnect) -> None:
    # Even with the no-TDX tree as root, a remote report never reads files.
    report = check_host(fixture_host, NO_TDX, local=False)
    for name in FILE_CHECKS:
        check = report.get(name)
        assert (check.status, check.reason, check.required) == ("unknown", REMOTE_REASON, False)
    assert [check.name for check in report.failures()] == ["libvirt_tdx"]


def test_test_driver_is_not_qemu(fixture_host: libvirt.virConnect) -> None:
    check = check_host(fixture_host, READY).get("qemu_version")
    assert (check.status, check.required) == ("fail", False)
    assert "TEST" in check.reason


# --- this machine (Debian libvirt 9.0, QEMU 7.2, no TDX) -------------------------------------


def test_this_machine_is_not_tdx_ready(system: libvirt.virConnect) -> None:
    report = check_host(system)
    assert not report.tdx_ready
    assert report.get("libvirt_tdx").status == "fail"


def test_this_machine_reports_the_missing_kvm_tdx_parameter(system: libvirt.virConnect) -> None:
    if Path("/sys/module/kvm_intel/parameters/tdx").exists():
        pytest.skip("kvm_intel has a tdx parameter on this host")
    check = check_host(system).get("kvm_tdx")
    assert check.status == "fail"
    assert "kvm_intel not loaded or built without TDX" in check.reason


def test_this_machine_libvirt_9_does_not_know_tdx(system: libvirt.virConnect) -> None:
    if system.getLibVersion() >= 10_000_000:
        pytest.skip("libvirt >= 10 here")
    reason = check_host(system).get("libvirt_tdx").reason
    major_minor = f"{system.getLibVersion() // 1_000_000}.{system.getLibVersion() // 1000 % 1000}"
    assert reason.startswith(f"libvirt {major_minor}.")
    assert "does not know <launchSecurity type='tdx'>" in reason


def test_this_machine_require_tdx_raises(system: libvirt.virConnect) -> None:
    with pytest.raises(HostNotReadyError) as caught:
        require_tdx(system)
    assert any("launchSecurity" in reason or "TDX" in reason for reason in caught.value.reasons)

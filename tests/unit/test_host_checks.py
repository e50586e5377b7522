"""Host readiness: the file-based checks against fixture trees, the report, and URI locality."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tdx_provider.host.domcaps import domcaps_tdx_support
from tdx_provider.host.file_checks import (
    KVM_TDX_PARAM,
    check_cpu_flag,
    check_iommu_vfio,
    check_kvm_tdx,
    check_tdx_firmware,
    check_vhost_vsock,
)
from tdx_provider.host.readiness import Check, HostReport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
READY = FIXTURES / "sysfs-tdx-ready"
NO_TDX = FIXTURES / "sysfs-no-tdx"


@pytest.fixture
def ready_copy(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(READY, root)
    return root


# --- kvm_intel tdx parameter -----------------------------------------------------------------


def test_kvm_tdx_passes_on_y() -> None:
    check = check_kvm_tdx(READY)
    assert (check.name, check.status, check.required) == ("kvm_tdx", "pass", True)


def test_kvm_tdx_accepts_1(ready_copy: Path) -> None:
    (ready_copy / KVM_TDX_PARAM).write_text("1\n")
    assert check_kvm_tdx(ready_copy).status == "pass"


def test_kvm_tdx_fails_on_n_and_says_how_to_enable() -> None:
    check = check_kvm_tdx(NO_TDX)
    assert check.status == "fail"
    assert "'N'" in check.reason
    assert "tdx=1" in check.reason


def test_kvm_tdx_missing_parameter_means_module_missing_or_without_tdx(tmp_path: Path) -> None:
    check = check_kvm_tdx(tmp_path)
    assert check.status == "fail"
    assert check.reason.startswith("kvm_intel not loaded or built without TDX")
    assert "/sys/module/kvm_intel/parameters/tdx" in check.reason
    assert str(tmp_path) not in check.reason  # messages show host paths, not the test root


# --- CPU flag --------------------------------------------------------------------------------


def test_cpu_flag_passes_with_tdx_host_platform() -> None:
    assert check_cpu_flag(READY).status == "pass"


def test_cpu_flag_fails_without_tdx_host_platform() -> None:
    check = check_cpu_flag(NO_TDX)
    assert check.status == "fail"
    assert "tdx_host_platform" in check.reason


def test_cpu_flag_in_a_tdx_guest_is_not_a_host(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vme tdx_guest\n")
    check = check_cpu_flag(tmp_path)
    assert check.status == "fail"
    assert "TDX guest" in check.reason


def test_cpu_flag_needs_the_whole_word(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("flags\t: fpu tdx_host_platformish\n")
    assert check_cpu_flag(tmp_path).status == "fail"


def test_cpu_flag_without_cpuinfo_is_unknown(tmp_path: Path) -> None:
    assert check_cpu_flag(tmp_path).status == "unknown"


# --- firmware --------------------------------------------------------------------------------


def test_generic_ovmf_passes_but_says_it_proves_nothing() -> None:
    check = check_tdx_firmware(READY)
    assert check.status == "pass"
    assert "/usr/share/ovmf/OVMF.fd" in check.reason
    assert "does not prove TDX support" in check.reason


def test_tdx_named_firmware_is_preferred(ready_copy: Path) -> None:
    tdvf = ready_copy / "usr/share/qemu/OVMF.inteltdx.fd"
    tdvf.parent.mkdir(parents=True)
    tdvf.write_bytes(b"")
    check = check_tdx_firmware(ready_copy)
    assert check.status == "pass"
    assert check.reason == "found /usr/share/qemu/OVMF.inteltdx.fd"


def test_no_firmware_fails_listing_where_it_looked() -> None:
    check = check_tdx_firmware(NO_TDX)
    assert check.status == "fail"
    assert "/usr/share/ovmf/OVMF.fd" in check.reason
    assert "/usr/share/edk2/ovmf/OVMF.inteltdx.fd" in check.reason


# --- vsock and IOMMU (informational) ---------------------------------------------------------


def test_vhost_vsock_present() -> None:
    check = check_vhost_vsock(READY)
    assert (check.status, check.required) == ("pass", False)


def test_vhost_vsock_missing_is_reported_but_not_required() -> None:
    check = check_vhost_vsock(NO_TDX)
    assert (check.status, check.required) == ("fail", False)
    assert "/dev/vhost-vsock" in check.reason


def test_iommu_and_vfio_ready() -> None:
    check = check_iommu_vfio(READY)
    assert (check.status, check.required) == ("pass", False)


def test_iommu_missing_groups_and_vfio_named(tmp_path: Path) -> None:
    check = check_iommu_vfio(tmp_path)
    assert (check.status, check.required) == ("fail", False)
    assert "intel_iommu=on" in check.reason
    assert "vfio" in check.reason


def test_iommu_groups_without_vfio(ready_copy: Path) -> None:
    shutil.rmtree(ready_copy / "sys/module/vfio_pci")
    shutil.rmtree(ready_copy / "sys/module/vfio_iommu_type1")
    check = check_iommu_vfio(ready_copy)
    assert check.status == "fail"
    assert "IOMMU groups" not in check.reason
    assert "modprobe vfio_pci" in check.reason


# --- the report ------------------------------------------------------------------------------


def test_report_is_ready_only_when_every_required_check_passes() -> None:
    report = HostReport(
        [
            Check("a", "pass", "ok"),
            Check("vsock", "fail", "missing", required=False),
        ]
    )
    assert report.tdx_ready
    assert report.failures() == []


def test_unknown_required_check_blocks_readiness() -> None:
    unknown = Check("b", "unknown", "cannot read")
    report = HostReport([Check("a", "pass", "ok"), unknown])
    assert not report.tdx_ready
    assert report.failures() == [unknown]


def test_report_lookup_by_name() -> None:
    report = HostReport([Check("a", "pass", "ok")])
    assert report.get("a").reason == "ok"
    with pytest.raises(KeyError):
        report.get("z")


# --- URI locality ----------------------------------------------------------------------------


# --- libvirt domain capabilities -------------------------------------------------------------

# The <features> of Debian's libvirt 9.0 domcapabilities (kvm, x86_64), as measured here.
DOMCAPS_LIBVIRT_9 = """
<domainCapabilities>
  <domain>kvm</domain>
  <features>
    <gic supported='no'/>
    <vmcoreinfo supported='yes'/>
    <sev supported='no'/>
    <sgx supported='no'/>
  </features>
</domainCapabilities>
"""


def _domcaps(features: str) -> str:
    return f"<domainCapabilities><features>{features}</features></domainCapabilities>"


def test_libvirt_9_does_not_know_tdx() -> None:
    assert domcaps_tdx_support(DOMCAPS_LIBVIRT_9) == (False, False)


def test_tdx_feature_supported() -> None:
    assert domcaps_tdx_support(_domcaps("<tdx supported='yes'/>")) == (True, True)


def test_tdx_feature_known_but_unsupported() -> None:
    assert domcaps_tdx_support(_domcaps("<tdx supported='no'/>")) == (True, False)


def test_launch_security_sectype_tdx_supported() -> None:
    features = (
        "<launchSecurity supported='yes'><enum name='sectype'>"
        "<value>sev</value><value>tdx</value></enum></launchSecurity>"
    )
    assert domcaps_tdx_support(_domcaps(features)) == (True, True)


def test_launch_security_without_tdx_sectype() -> None:
    features = (
        "<launchSecurity supported='yes'><enum name='sectype'>"
        "<value>sev</value></enum></launchSecurity>"
    )
    assert domcaps_tdx_support(_domcaps(features)) == (False, False)

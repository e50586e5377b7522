"""The expected MRTD as `pulumi preview` computes it: TrustDomain.check against real libvirt
(the test:/// fixture host and this machine's libvirtd), with a TDVF the test lays out.

Neither host can run TDX, so check also fails the ``tdx`` property; the measurement is computed
all the same, which is what a reviewer of a TD change needs to see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tdx_provider.checking import UNKNOWN as ENGINE_UNKNOWN
from tdx_provider.checking import Checker
from tdx_provider.connection import connect
from tdx_provider.dynamic.trust_domain import TrustDomainProvider
from tdx_provider.resources.trust_domain_checks import expected_mrtd
from tests.support.tdvf import Layout, expected

pytestmark = pytest.mark.libvirt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TEST_HOST_URI = "test://" + str(FIXTURES / "testhost.xml")  # getVersion() 2: single-pass
OWNER = {"project": "p", "stack": "s", "resource": "td"}


def news(firmware: Path | str, **overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "uri": TEST_HOST_URI, "overlay": "/var/lib/pool/disk.qcow2", "memory_mib": 1024,
        "vcpus": 1, "tdx": True, "firmware": str(firmware), "network": None, "vsock": False,
        "owner": OWNER, "mrtd": None,
    }
    props.update(overrides)
    return props


def check(props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    result = TrustDomainProvider().check({}, props)
    return result.inputs, {f.property: f.reason for f in result.failures or []}


def test_check_computes_mrtd_from_the_local_firmware(firmware: tuple[Path, Layout]) -> None:
    path, layout = firmware
    inputs, failures = check(news(path))
    assert inputs["mrtd"] == expected(path.read_bytes(), layout.sections, two_pass=False)
    assert "firmware" not in failures
    assert "tdx" in failures  # the fixture host cannot run TDX; the measurement still shows


def test_page_add_order_overrides_the_hosts_qemu(firmware: tuple[Path, Layout]) -> None:
    path, layout = firmware
    inputs, failures = check(news(path, page_add_order="two-pass"))
    assert inputs["mrtd"] == expected(path.read_bytes(), layout.sections, two_pass=True)
    _, failures = check(news(path, page_add_order="sideways"))
    assert "single-pass, two-pass" in failures["page_add_order"]


def test_on_this_hosts_libvirtd_the_order_follows_its_qemu(
        firmware: tuple[Path, Layout]) -> None:
    path, layout = firmware
    with connect("qemu:///system") as conn:  # no libvirtd is a failure, not a skip
        version = conn.getVersion()
    two_pass = 8_002_000 <= version < 9_000_000
    inputs, _ = check(news(path, uri="qemu:///system"))
    assert inputs["mrtd"] == expected(path.read_bytes(), layout.sections, two_pass=two_pass)


def test_a_firmware_change_shows_as_an_mrtd_change(
        firmware: tuple[Path, Layout], tmp_path: Path) -> None:
    path, _ = firmware
    old, _ = check(news(path))
    changed = bytearray(path.read_bytes())
    changed[0x3000] ^= 0xFF  # a byte of measured code
    other = tmp_path / "TDVF-new.fd"
    other.write_bytes(bytes(changed))
    new, _ = check(news(other))
    assert new["mrtd"] != old["mrtd"]
    diff = TrustDomainProvider().diff("id", {**old, "state": "running"}, new)
    assert diff.changes is True
    assert "firmware" in (diff.replaces or [])


def test_an_mrtd_change_alone_updates_in_place(firmware: tuple[Path, Layout]) -> None:
    path, _ = firmware
    new, _ = check(news(path))
    olds = {**new, "state": "running", "mrtd": "00" * 48}
    diff = TrustDomainProvider().diff("id", olds, new)
    assert (diff.changes, diff.replaces) == (True, [])


def test_regular_vms_have_no_mrtd(firmware: tuple[Path, Layout]) -> None:
    path, _ = firmware
    inputs, _ = check(news(path, tdx=False, domain_type="qemu"))
    assert inputs["mrtd"] is None


def test_a_firmware_that_is_not_a_tdvf_fails_the_firmware_property(tmp_path: Path) -> None:
    path = tmp_path / "plain.fd"
    path.write_bytes(bytes(64 * 1024))
    inputs, failures = check(news(path))
    assert inputs["mrtd"] is None
    assert "no OVMF GUIDed table" in failures["firmware"]
    assert str(path) in failures["firmware"]


def test_remote_hosts_get_no_mrtd_and_no_local_file_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "only-on-the-remote-host.fd"
    checker = Checker(news(missing, uri="qemu+ssh://tdx-host.example/system"))
    with connect(TEST_HOST_URI) as conn:
        expected_mrtd(checker, conn)
    assert checker.inputs["mrtd"] is None
    assert checker.failures == []


def test_an_unknown_firmware_gives_an_unknown_mrtd() -> None:
    checker = Checker({**news("/unused"), "firmware": ENGINE_UNKNOWN})
    with connect(TEST_HOST_URI) as conn:
        expected_mrtd(checker, conn)
    assert checker.inputs["mrtd"] is ENGINE_UNKNOWN


"""Domain capabilities of a modern libvirt (TDX support, loaders) and the QGS dialect rule.

The fixture is real output captured from the upstream sid host (libvirt 12.8.0, QEMU 11.1.3;
see its header comment). A TDX-capable variant is made from it in ``tdx_capable_caps`` by
flipping the two ``supported`` attributes and adding the sectype list, as libvirt prints them
on a TDX host; that variant is synthetic, and says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tdx_provider.errors import InputError
from tdx_provider.host import domcaps

FIXTURE = Path(__file__).parents[1] / "fixtures/domcaps/sid-libvirt-12.8-kvm-q35.xml"
TDX_LOADER = "/usr/share/ovmf/OVMF.inteltdx.ms.fd"
V9_0, V10_0, V11_5, V11_6, V12_8 = 9_000_000, 10_000_000, 11_005_000, 11_006_000, 12_008_000


@pytest.fixture
def sid_caps() -> str:
    return FIXTURE.read_text()


@pytest.fixture
def tdx_capable_caps(sid_caps: str) -> str:
    return sid_caps.replace('<tdx supported="no"/>', '<tdx supported="yes"/>').replace(
        '<launchSecurity supported="no"/>',
        '<launchSecurity supported="yes"><enum name="sectype"><value>tdx</value></enum>'
        "</launchSecurity>")


def test_sid_host_knows_tdx_but_does_not_support_it(sid_caps: str) -> None:
    caps = domcaps.parse_domain_capabilities(sid_caps)
    assert (caps.tdx_known, caps.tdx_supported) == (True, False)
    assert caps.evidence == "<tdx supported='no'/> <launchSecurity supported='no'/>"


def test_tdx_capable_host_is_supported(tdx_capable_caps: str) -> None:
    caps = domcaps.parse_domain_capabilities(tdx_capable_caps)
    assert (caps.tdx_known, caps.tdx_supported) == (True, True)


def test_loaders_are_read_in_libvirt_order_and_the_inteltdx_image_is_picked(sid_caps: str
                                                                          ) -> None:
    caps = domcaps.parse_domain_capabilities(sid_caps)
    assert caps.loaders[0] == "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
    assert TDX_LOADER in caps.loaders
    assert caps.tdx_firmware() == TDX_LOADER


def test_no_tdx_firmware_among_generic_loaders(sid_caps: str) -> None:
    caps = domcaps.parse_domain_capabilities(sid_caps.replace("OVMF.inteltdx.ms.fd", "OVMF.x.fd"))
    assert caps.tdx_firmware() is None


def test_inteltdx_is_preferred_over_another_tdx_name() -> None:
    caps = domcaps.DomainCapabilities(True, True, ("/fw/tdx-other.fd", "/fw/OVMF.inteltdx.fd"), "")
    assert caps.tdx_firmware() == "/fw/OVMF.inteltdx.fd"


# --- QGS dialect -----------------------------------------------------------------------------

VSOCK = {"vsock_cid": 2, "vsock_port": 4050}
PATH = {"path": "/var/run/tdx-qgs/qgs.socket"}


@pytest.mark.parametrize("version", [V11_6, V12_8])
def test_upstream_libvirt_takes_the_path_form(version: int) -> None:
    domcaps.check_qgs_dialect(PATH, version)


@pytest.mark.parametrize("version", [V11_6, V12_8])
def test_vsock_form_on_upstream_libvirt_fails_naming_qgs_and_the_path_form(version: int
                                                                           ) -> None:
    with pytest.raises(InputError) as caught:
        domcaps.check_qgs_dialect(VSOCK, version)
    assert caught.value.field == "qgs"
    assert "silently drop" in caught.value.reason and "'path'" in caught.value.reason


@pytest.mark.parametrize("version", [V9_0, V10_0, V11_5])
def test_path_form_on_a_libvirt_before_11_6_fails_naming_qgs(version: int) -> None:
    with pytest.raises(InputError, match=r"qgs: libvirt .* predates") as caught:
        domcaps.check_qgs_dialect(PATH, version)
    assert "11.6.0" in str(caught.value)


@pytest.mark.parametrize("version", [V10_0, V11_5])
def test_canonical_libvirt_takes_the_vsock_form(version: int) -> None:
    domcaps.check_qgs_dialect(VSOCK, version)

"""GPU lookup through libvirt's node device API, against the test:/// driver with our fixture host.

The fixture (tests/fixtures/testhost.xml) holds two NVIDIA H100s (0000:3b:00.0 in IOMMU group 41,
0000:86:00.0 in group 95) and an Intel E810 NIC (0000:17:00.0, group 12).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.connection import connect
from tdx_provider.errors import InputError
from tdx_provider.host.gpu import (
    DMA_ENTRY_LIMIT_PARAM,
    PciDevice,
    list_gpus,
    list_pci_devices,
    lookup_pci_devices,
    parse_pci_device,
    prepare_gpus,
)
from tdx_provider.validation import PciAddress, pci_address, pci_addresses

pytestmark = pytest.mark.libvirt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TEST_HOST_URI = "test://" + str(FIXTURES / "testhost.xml")
H100_A = PciAddress(0, 0x3B, 0, 0)
H100_B = PciAddress(0, 0x86, 0, 0)
NIC = PciAddress(0, 0x17, 0, 0)


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    with connect(TEST_HOST_URI) as connection:
        yield connection


def test_fixture_host_is_loaded_by_the_test_driver(conn: libvirt.virConnect) -> None:
    assert conn.getType() == "TEST"
    names = sorted(device.name() for device in conn.listAllDevices())
    assert names == ["pci_0000_17_00_0", "pci_0000_3b_00_0", "pci_0000_86_00_0"]


def test_lookup_returns_ids_names_and_iommu_groups(conn: libvirt.virConnect) -> None:
    first, second = lookup_pci_devices(conn, [H100_A, H100_B])
    assert first == PciDevice(
        address=H100_A,
        vendor_id="0x10de",
        product_id="0x2331",
        vendor="NVIDIA Corporation",
        product="GH100 [H100 PCIe]",
        driver=None,  # the test driver never reports drivers (real hosts read sysfs)
        iommu_group=41,
        nodedev_name="pci_0000_3b_00_0",
        pci_class=0x030200,
    )
    assert (second.address, second.iommu_group) == (H100_B, 95)
    assert first.iommu_group != second.iommu_group


def test_lookup_keeps_the_requested_order(conn: libvirt.virConnect) -> None:
    devices = lookup_pci_devices(conn, [H100_B, NIC, H100_A])
    assert [device.address for device in devices] == [H100_B, NIC, H100_A]


def test_lookup_accepts_addresses_parsed_from_user_input(conn: libvirt.virConnect) -> None:
    addresses = pci_addresses("gpus", ["3b:00.0", "0000:86:00.0"])
    assert [device.nodedev_name for device in lookup_pci_devices(conn, addresses)] == [
        "pci_0000_3b_00_0",
        "pci_0000_86_00_0",
    ]


def test_missing_bdf_names_the_field_index_and_the_gpus_that_exist(
    conn: libvirt.virConnect,
) -> None:
    missing = pci_address("gpus[1]", "0000:af:00.0")
    with pytest.raises(InputError) as caught:
        lookup_pci_devices(conn, [H100_A, missing])
    error = caught.value
    assert error.field == "gpus[1]"
    assert "no PCI device 0000:af:00.0 on this host" in error.reason
    assert "0000:3b:00.0, 0000:86:00.0" in error.reason
    assert "0000:17:00.0" not in error.reason  # the NIC is not offered as a GPU
    assert len(str(error)) < 200


def test_missing_bdf_uses_the_callers_field_name(conn: libvirt.virConnect) -> None:
    with pytest.raises(InputError) as caught:
        lookup_pci_devices(conn, [PciAddress(1, 0, 0, 0)], field="trust_domain.gpus")
    assert caught.value.field == "trust_domain.gpus[0]"


def test_list_gpus_finds_both_h100s_and_not_the_nic(conn: libvirt.virConnect) -> None:
    gpus = list_gpus(conn)
    assert [gpu.address for gpu in gpus] == [H100_A, H100_B]
    assert all(gpu.product_id == "0x2331" for gpu in gpus)


def test_list_pci_devices_includes_the_nic(conn: libvirt.virConnect) -> None:
    devices = {device.address: device for device in list_pci_devices(conn)}
    assert set(devices) == {NIC, H100_A, H100_B}
    assert devices[NIC].pci_class == 0x020000
    assert not devices[NIC].is_gpu


def test_prepare_gpus_validates_then_raises_the_dma_limit(
    conn: libvirt.virConnect, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "sysfs-tdx-ready", root)
    marker = tmp_path / "setup-args"
    prepare_gpus(
        conn,
        [H100_A, H100_B],
        dma_entry_limit=0x200000,
        setup_command=["/bin/sh", "-c", 'echo "$@" > "$0"', str(marker)],
        sysfs_root=root,
    )
    assert int((root / DMA_ENTRY_LIMIT_PARAM).read_text()) == 0x200000
    assert marker.read_text().split() == ["0000:3b:00.0", "0000:86:00.0"]


def test_prepare_gpus_with_an_unknown_gpu_changes_nothing(
    conn: libvirt.virConnect, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "sysfs-tdx-ready", root)
    marker = tmp_path / "setup-ran"
    with pytest.raises(InputError, match=r"gpus\[0\]"):
        prepare_gpus(
            conn,
            [PciAddress(0, 0xAF, 0, 0)],
            dma_entry_limit=0x200000,
            setup_command=["/bin/touch", str(marker)],
            sysfs_root=root,
        )
    assert (root / DMA_ENTRY_LIMIT_PARAM).read_text().strip() == "65535"
    assert not marker.exists()


# A real host reports the host driver (the test driver never does).
REAL_HOST_NODEDEV = (FIXTURES / "xml" / "nodedev-pci-vfio.xml").read_text()


def test_parser_reads_the_driver_a_real_host_reports_and_tolerates_missing_class() -> None:
    device = parse_pci_device(REAL_HOST_NODEDEV)
    assert device is not None
    assert device.driver == "vfio-pci"
    assert device.address == PciAddress(0, 0x41, 0, 0)
    assert (device.vendor_id, device.product_id, device.product) == ("0x10de", "0x2330", "")
    assert device.pci_class is None
    assert device.is_gpu  # NVIDIA, class unknown


def test_parser_ignores_non_pci_node_devices() -> None:
    xml = "<device><name>computer</name><capability type='system'/></device>"
    assert parse_pci_device(xml) is None


def test_nvidia_audio_function_is_not_a_gpu() -> None:
    audio = REAL_HOST_NODEDEV.replace(
        "<domain>0</domain>", "<class>0x040300</class><domain>0</domain>"
    )
    device = parse_pci_device(audio)
    assert device is not None and not device.is_gpu

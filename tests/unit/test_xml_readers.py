"""The typed XML readers (tdx_provider.readers) on real documents: what libvirt's test driver
prints (domains, pools, volumes, node devices), what our templates render (a trust domain:
launchSecurity is unknown to the test driver's libvirt), and captured host documents
(tests/fixtures). Every declared property is read with a value here: the last test fails
when one is not (as virtinst's tests/test_checkprops.py does), so a path that matches
nothing in real XML cannot hide.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.guest import xml
from tdx_provider.metadata import NAMESPACE, Owner
from tdx_provider.readers import _base
from tdx_provider.readers.capabilities import DomainCapabilities, NodeDevice
from tdx_provider.readers.domain import Domain, Instance, LaunchSecurity
from tdx_provider.readers.storage import Pool, Volume
from tdx_provider.storage import pool as pools
from tdx_provider.storage import volume as volumes
from tdx_provider.validation import PciAddress

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOMCAPS = (FIXTURES / "domcaps" / "sid-libvirt-12.8-kvm-q35.xml").read_text()
VFIO_NODEDEV = (FIXTURES / "xml" / "nodedev-pci-vfio.xml").read_text()
TEST_HOST_URI = "test://" + str(FIXTURES / "testhost.xml")
OVERLAY, BASE, SEED = "/pool/td.qcow2", "/pool/base.qcow2", "/pool/td-seed.img"
MR_CONFIG_ID = base64.b64encode(bytes(range(48))).decode()

_RAN: list[str] = []


@pytest.fixture(autouse=True)
def _count(request: pytest.FixtureRequest) -> None:
    _RAN.append(request.node.name)


@pytest.fixture(scope="module")
def conn() -> Iterator[libvirt.virConnect]:
    connection = libvirt.open("test:///default")
    yield connection
    connection.close()


def spec(**overrides: object) -> xml.DomainSpec:
    values: dict[str, object] = dict(
        name="td-readers", owner=Owner("proj", "dev", "td"), memory_mib=2048, vcpus=2,
        disk=xml.Disk(OVERLAY, (xml.BackingLayer(BASE, "qcow2"),)),
        firmware="/usr/share/ovmf/OVMF.inteltdx.fd", kernel="/boot/vmlinuz",
        initrd="/boot/initrd.img", cmdline="console=ttyS0", gpus=(PciAddress(0, 0x3B, 0, 0),),
        network="default", cid=42, console_log="/var/log/td.log",
        qgs=xml.QuoteGenerationService(vsock_cid=2, vsock_port=4050),
        mr_config_id=MR_CONFIG_ID, seed=xml.SeedDisk(SEED, "iid-7"),
    )
    values.update(overrides)
    return xml.DomainSpec(**values)  # type: ignore[arg-type]


# --- domain XML ------------------------------------------------------------------------------


def test_a_rendered_trust_domain() -> None:
    dom = Domain.parse(xml.render(spec()))
    assert (dom.type, dom.name, dom.id, dom.uuid) == ("kvm", "td-readers", None, None)
    assert dom.memory is not None and (dom.memory.amount, dom.memory.unit) == (2048, "MiB")
    assert dom.memory_mib == 2048
    assert dom.vcpu is not None and (dom.vcpu.count, dom.vcpu.placement) == (2, "static")
    assert dom.vcpus == 2
    os_ = dom.os
    assert os_ is not None
    assert (os_.type, os_.machine, os_.loader) == ("hvm", "q35", "/usr/share/ovmf/OVMF.inteltdx.fd")
    assert (os_.kernel, os_.initrd, os_.cmdline) == ("/boot/vmlinuz", "/boot/initrd.img",
                                                     "console=ttyS0")
    args = [arg.value or "" for arg in dom.qemu_args]
    assert args[0] == "-netdev" and "hostfwd=tcp:127.0.0.1:0-:22" in args[1]


def test_the_disks_of_a_rendered_domain_and_their_backing_chain() -> None:
    dom = Domain.parse(xml.render(spec()))
    overlay, seed = dom.disks
    assert (overlay.type, overlay.device, overlay.format, overlay.target) == (
        "file", "disk", "qcow2", "vda")
    assert overlay.source is not None and overlay.source.file == OVERLAY
    assert overlay.source.path == OVERLAY
    top = overlay.backing_store
    assert top is not None and (top.type, top.format) == ("file", "qcow2")
    assert top.source is not None and top.source.file == BASE
    end = top.backing_store
    assert end is not None and end.source is None and end.backing_store is None
    assert [layer.source.file for layer in overlay.chain() if layer.source] == [BASE]
    assert [source.file for source in overlay.sources_below] == [BASE]
    assert seed.source is not None and seed.source.file == SEED and seed.chain() == []


def test_the_devices_of_a_rendered_domain() -> None:
    devices = Domain.parse(xml.render(spec())).devices
    assert devices is not None
    (gpu,) = devices.hostdevs
    assert (gpu.type, gpu.managed) == ("pci", True)
    assert gpu.address is not None
    assert (gpu.address.domain, gpu.address.bus, gpu.address.slot, gpu.address.function) == (
        0, 0x3B, 0, 0)
    (nic,) = devices.interfaces
    assert (nic.type, nic.network, nic.model) == ("network", "default", "virtio")
    assert devices.vsock is not None
    assert (devices.vsock.model, devices.vsock.cid, devices.vsock.cid_auto) == ("virtio", 42, False)
    assert devices.console_log == "/var/log/td.log"


def test_launch_security_of_a_rendered_trust_domain_both_qgs_forms() -> None:
    ls = Domain.parse(xml.render(spec())).launch_security
    assert ls is not None and (ls.type, ls.policy) == ("tdx", "0x10000000")
    (qgs,) = ls.quote_generation_services
    assert qgs.path is None
    (sock,) = qgs.sockets
    assert (sock.type, sock.cid, sock.port) == ("vsock", "2", "4050")
    assert [(c.tag, c.text) for c in ls.children][1] == ("mrConfigId", MR_CONFIG_ID)
    upstream = xml.render(spec(qgs=xml.QuoteGenerationService(path="/run/qgs.socket")))
    unix = Domain.parse(upstream).launch_security
    assert unix is not None
    assert [q.path for q in unix.quote_generation_services] == ["/run/qgs.socket"]
    assert Domain.parse(xml.render(spec(tdx=False))).launch_security is None


def test_our_metadata_inside_the_domain_and_from_libvirt(conn: libvirt.virConnect) -> None:
    instance = Domain.parse(xml.render(spec())).instance
    assert instance is not None and instance.owner is not None
    assert (instance.owner.project, instance.owner.stack, instance.owner.resource) == (
        "proj", "dev", "td")
    assert instance.owner.owner() == Owner("proj", "dev", "td")
    assert (instance.overlay, instance.shutdown_timeout, instance.tdx) == (OVERLAY, 60, True)
    assert (instance.seed, instance.seed_instance_id) == (SEED, "iid-7")
    name = f"rd-meta-{uuid.uuid4().hex[:8]}"
    dom = conn.defineXML(xml.render(spec(name=name, tdx=False, domain_type="test", gpus=())))
    try:
        alone = Instance.parse(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0))
        assert alone.owner is not None and alone.owner.owner() == Owner("proj", "dev", "td")
        assert (alone.overlay, alone.shutdown_timeout, alone.tdx) == (OVERLAY, 60, False)
    finally:
        dom.undefine()


LIVE_EXTRA_DISKS = """
    <disk type='block' device='disk'><source dev='/dev/vg/lv'/><target dev='vdc'/></disk>
    <disk type='volume' device='disk'><source pool='default-pool' volume='v.qcow2'/>
      <target dev='vdd'/></disk>
  </devices>"""


def test_a_live_definition_as_libvirt_prints_it(conn: libvirt.virConnect) -> None:
    name = f"rd-live-{uuid.uuid4().hex[:8]}"
    rendered = xml.render(spec(name=name, tdx=False, domain_type="test", gpus=()))
    dom = conn.defineXML(rendered.replace("</devices>", LIVE_EXTRA_DISKS, 1))
    try:
        dom.create()
        live = Domain.parse(dom.XMLDesc(0))
        assert live.id is not None and live.id > 0 and live.uuid == dom.UUIDString()
        assert live.memory is not None and live.memory.unit == "KiB" and live.memory_mib == 2048
        sources = [disk.source for disk in live.disks if disk.source is not None]
        assert [s.path for s in sources] == [OVERLAY, SEED, "/dev/vg/lv", None]
        assert sources[2].dev == "/dev/vg/lv"
        assert (sources[3].pool, sources[3].volume) == ("default-pool", "v.qcow2")
        assert [s.file for s in live.disks[0].sources_below] == [BASE]
        assert Domain.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).id is None
    finally:
        dom.destroy()
        dom.undefine()


def test_a_launch_security_element_alone() -> None:
    ls = LaunchSecurity.parse("<launchSecurity type='tdx'><policy> 0x1 </policy></launchSecurity>")
    assert (ls.type, ls.policy, ls.children[0].tag) == ("tdx", "0x1", "policy")


# --- storage XML -----------------------------------------------------------------------------


def test_a_pool_as_libvirt_prints_it(conn: libvirt.virConnect) -> None:
    name = f"rd-pool-{uuid.uuid4().hex[:8]}"
    wanted = str(uuid.uuid4())
    found = conn.storagePoolDefineXML(pools.pool_xml(name, f"/var/tmp/{name}", wanted), 0)
    try:
        pool = Pool.parse(found.XMLDesc(0))
        assert (pool.type, pool.name, pool.uuid, pool.path) == ("dir", name, wanted,
                                                                f"/var/tmp/{name}")
        assert pool.capacity is not None and pool.target is not None
        assert pool.target.mode == "0755"
    finally:
        found.undefine()
    assert Pool.parse("<pool type='dir'><name>x</name></pool>").path == ""


def test_volumes_and_a_backing_store_as_libvirt_prints_them(conn: libvirt.virConnect) -> None:
    default = conn.storagePoolLookupByName("default-pool")
    suffix = uuid.uuid4().hex[:8]
    base = default.createXML(volumes.volume_xml(f"rd-base-{suffix}", 1 << 20, "qcow2", "0644"), 0)
    info = volumes.info("default-pool", base)
    over = default.createXML(volumes.volume_xml(f"rd-ov-{suffix}", 2 << 20, "qcow2", "0600",
                                                backing=info), 0)
    try:
        vol = Volume.parse(over.XMLDesc(0))
        assert (vol.type, vol.name, vol.key) == ("file", f"rd-ov-{suffix}", over.key())
        assert (vol.capacity, vol.allocation is not None) == (2 << 20, True)
        assert vol.target is not None and (vol.target.path, vol.target.format,
                                           vol.target.mode) == (over.path(), "qcow2", "0600")
        assert vol.format == "qcow2" and vol.backing_path == base.path()
        assert vol.backing_store is not None
        assert (vol.backing_store.path, vol.backing_store.format) == (base.path(), "qcow2")
        plain = Volume.parse(base.XMLDesc(0))
        assert plain.backing_store is None and plain.backing_path is None
        assert Volume.parse("<volume><name>r</name></volume>").format == "raw"
    finally:
        over.delete(0)
        base.delete(0)


# --- host XML --------------------------------------------------------------------------------


def test_domain_capabilities_of_a_host_without_tdx() -> None:
    caps = DomainCapabilities.parse(DOMCAPS)
    assert (caps.emulator, caps.domain, caps.machine) == (
        "/usr/bin/qemu-system-x86_64", "kvm", "pc-q35-11.1")
    assert "/usr/share/OVMF/OVMF_CODE_4M.inteltdx.ms.fd" not in [v.text for v in caps.loaders]
    assert any("inteltdx" in (v.text or "") for v in caps.loaders)
    assert caps.tdx is not None and caps.tdx.supported == "no"
    assert caps.launch_security is not None and caps.launch_security.supported == "no"
    assert caps.launch_security.sectypes == []


def test_domain_capabilities_listing_tdx_among_secure_guest_types() -> None:
    listed = DOMCAPS.replace('<launchSecurity supported="no"/>',
                             '<launchSecurity supported="yes"><enum name="sectype">'
                             '<value>sev</value><value>tdx</value></enum></launchSecurity>')
    launch = DomainCapabilities.parse(listed).launch_security
    assert launch is not None and launch.supported == "yes"
    assert [value.text for value in launch.sectypes] == ["sev", "tdx"]


def test_node_devices_as_libvirt_prints_them() -> None:
    with libvirt.open(TEST_HOST_URI) as host:
        h100 = NodeDevice.parse(host.nodeDeviceLookupByName("pci_0000_3b_00_0").XMLDesc(0))
    assert h100.name == "pci_0000_3b_00_0" and h100.driver is None
    pci = h100.pci
    assert pci is not None
    assert (pci.domain, pci.bus, pci.slot, pci.function) == (0, 59, 0, 0)
    assert (pci.pci_class, pci.iommu_group) == (0x030200, 41)
    assert pci.vendor is not None and (pci.vendor.id, pci.vendor.name) == ("0x10de",
                                                                           "NVIDIA Corporation")
    assert pci.product is not None and pci.product.id == "0x2331"
    system = "<device><name>computer</name><capability type='system'/></device>"
    assert NodeDevice.parse(system).pci is None


def test_a_real_hosts_node_device_names_its_driver() -> None:
    device = NodeDevice.parse(VFIO_NODEDEV)
    assert device.driver == "vfio-pci"
    assert device.pci is not None and device.pci.product is not None
    assert (device.pci.product.name, device.pci.pci_class) == ("", None)


# --- the base --------------------------------------------------------------------------------


def test_converters_read_libvirt_numbers_and_answers() -> None:
    assert [_base.to_int(t) for t in ("42", " 7 ", "0x3b", "0X10", "", "-1", "0xzz", "4e")] == [
        42, 7, 0x3B, 16, None, None, None, None]
    assert [_base.yes_no(t) for t in ("yes", "no", "on", "")] == [True, False, None, None]


def test_every_declared_property_is_read_with_a_value() -> None:
    """Fails when a declaration is never read with a value from real XML above (a path that
    matches nothing, or a property no test covers); run with the whole module."""
    others = [name for name in globals() if name.startswith("test_")]
    if len(set(_RAN)) < len(others):
        pytest.skip("needs every other test of this module in the same run")
    missing = sorted(f"{cls}.{attr}" for cls, attr in _base.declared() - _base.seen())
    assert not missing, f"declared but never read with a value: {', '.join(missing)}"

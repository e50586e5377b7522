"""Domain XML: what our templates render, both QGS dialects, schema validation, escaping, and
user templates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lxml import etree

from tdx_provider.errors import InputError
from tdx_provider.guest import xml
from tdx_provider.metadata import NAMESPACE, Owner
from tdx_provider.readers.domain import LaunchSecurity
from tdx_provider.validation import PciAddress

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
SCHEMA_PATH = Path("/usr/share/libvirt/schemas/domain.rng")
FIRMWARE = "/usr/share/ovmf/OVMF.tdx.fd"
OVERLAY = "/var/lib/libvirt/images/td-1.qcow2"
GPU_A = PciAddress(0x0000, 0x3B, 0x00, 0x0)
GPU_B = PciAddress(0x0001, 0xAF, 0x1F, 0x7)



def make_spec(**overrides: object) -> xml.DomainSpec:
    spec = xml.DomainSpec(
        name="td-1",
        owner=Owner("proj", "dev", "td"),
        memory_mib=2048,
        vcpus=2,
        disk=xml.Disk(OVERLAY),
        firmware=FIRMWARE,
    )
    return dataclasses.replace(spec, **overrides)


def render_tree(spec: xml.DomainSpec, template: str | None = None) -> etree._Element:
    return xml.parse(xml.render(spec, template))


def only(root: etree._Element, path: str) -> etree._Element:
    found = root.findall(path)
    assert len(found) == 1, f"expected exactly one {path}, found {len(found)}"
    return found[0]


def qemu_args(root: etree._Element) -> list[str]:
    return [arg.get("value") or "" for arg in root.iter(f"{{{QEMU_NS}}}arg")]


@pytest.fixture(scope="module")
def libvirt_schema() -> etree.RelaxNG:
    assert SCHEMA_PATH.exists(), f"libvirt's RelaxNG schemas are missing ({SCHEMA_PATH})"
    return etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))


# --- trust domain template: the TDX essentials ----------------------------------------------


def test_td_has_launch_security_tdx_with_the_policy_in_hex() -> None:
    root = render_tree(make_spec(tdx_policy=0x10000001))
    launch_security = only(root, "launchSecurity")
    assert launch_security.get("type") == "tdx"
    assert only(launch_security, "policy").text == "0x10000001"


def test_td_default_policy_is_sept_ve_disable_without_debug() -> None:
    root = render_tree(make_spec())
    assert int(only(root, "launchSecurity/policy").text or "", 0) == 0x10000000


def test_td_memory_is_private_anonymous() -> None:
    root = render_tree(make_spec())
    assert only(root, "memoryBacking/source").get("type") == "anonymous"
    assert only(root, "memoryBacking/access").get("mode") == "private"


def test_td_uses_split_irqchip_via_qemu_ioapic() -> None:
    root = render_tree(make_spec())
    assert only(root, "features/ioapic").get("driver") == "qemu"


def test_td_has_no_hpet() -> None:
    timer = only(render_tree(make_spec()), "clock/timer[@name='hpet']")
    assert timer.get("present") == "no"


def test_td_cpu_is_host_passthrough_with_one_socket_of_vcpus_cores() -> None:
    cpu = only(render_tree(make_spec(vcpus=6)), "cpu")
    assert cpu.get("mode") == "host-passthrough"
    assert only(cpu, "topology").get("cores") == "6"
    assert only(cpu, "topology").get("sockets") == "1"


def test_td_machine_is_q35() -> None:
    os_type = only(render_tree(make_spec()), "os/type")
    assert os_type.get("machine") == "q35"
    assert os_type.text == "hvm"


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_pm_children_use_enabled_attribute_not_enable(tdx: bool) -> None:
    pm = only(render_tree(make_spec(tdx=tdx)), "pm")
    assert [child.tag for child in pm] == ["suspend-to-mem", "suspend-to-disk"]
    for child in pm:
        assert child.get("enabled") == "no"
        assert child.get("enable") is None


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_no_allow_reboot_anywhere(tdx: bool) -> None:
    text = xml.render(make_spec(tdx=tdx))
    assert "allowReboot" not in text
    assert not list(xml.parse(text).iter("allowReboot"))


def test_td_loader_is_the_firmware() -> None:
    assert only(render_tree(make_spec()), "os/loader").text == FIRMWARE


def test_direct_boot_renders_kernel_initrd_and_cmdline_when_given() -> None:
    root = render_tree(
        make_spec(kernel="/boot/vmlinuz", initrd="/boot/initrd.img", cmdline="console=ttyS0 rw")
    )
    assert only(root, "os/kernel").text == "/boot/vmlinuz"
    assert only(root, "os/initrd").text == "/boot/initrd.img"
    assert only(root, "os/cmdline").text == "console=ttyS0 rw"


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_no_direct_boot_elements_without_a_kernel(tdx: bool) -> None:
    root = render_tree(make_spec(tdx=tdx))
    for tag in ("kernel", "initrd", "cmdline"):
        assert root.find(f"os/{tag}") is None


# --- devices (shared by both templates) ------------------------------------------------------


def test_disk_source_is_the_overlay_without_backing_store_when_no_chain_given() -> None:
    disk = only(render_tree(make_spec()), "devices/disk")
    assert only(disk, "source").get("file") == OVERLAY
    assert only(disk, "driver").get("type") == "qcow2"
    assert only(disk, "target").get("dev") == "vda"
    assert disk.find("backingStore") is None


def test_backing_chain_renders_nested_backing_stores_ending_in_an_empty_one() -> None:
    chain = (
        xml.BackingLayer("/pool/base-mid.qcow2", "qcow2"),
        xml.BackingLayer("/pool/base.raw", "raw"),
    )
    disk = only(render_tree(make_spec(disk=xml.Disk(OVERLAY, chain))), "devices/disk")
    assert only(disk, "source").get("file") == OVERLAY
    level = disk
    for layer in chain:
        level = only(level, "backingStore")
        assert level.get("type") == "file"
        assert only(level, "format").get("type") == layer.format
        assert only(level, "source").get("file") == layer.path
    terminator = only(level, "backingStore")
    assert len(terminator) == 0 and not terminator.attrib


def test_one_managed_hostdev_per_gpu_with_hex_address_attributes() -> None:
    hostdevs = render_tree(make_spec(gpus=(GPU_A, GPU_B))).findall("devices/hostdev")
    assert [h.attrib for h in hostdevs] == [
        {"mode": "subsystem", "type": "pci", "managed": "yes"},
        {"mode": "subsystem", "type": "pci", "managed": "yes"},
    ]
    addresses = [dict(only(h, "source/address").attrib) for h in hostdevs]
    assert addresses == [
        {"domain": "0x0000", "bus": "0x3b", "slot": "0x00", "function": "0x0"},
        {"domain": "0x0001", "bus": "0xaf", "slot": "0x1f", "function": "0x7"},
    ]


def test_no_hostdev_without_gpus() -> None:
    assert render_tree(make_spec()).find("devices/hostdev") is None


def test_vsock_cid_is_automatic_when_no_cid_given() -> None:
    cid = only(render_tree(make_spec(cid=None)), "devices/vsock/cid")
    assert cid.get("auto") == "yes"
    assert cid.get("address") is None
    assert only(render_tree(make_spec()), "devices/vsock").get("model") == "virtio"


def test_vsock_cid_is_fixed_when_given() -> None:
    cid = only(render_tree(make_spec(cid=42)), "devices/vsock/cid")
    assert (cid.get("auto"), cid.get("address")) == ("no", "42")


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_no_vsock_element_when_vsock_is_off(tdx: bool) -> None:
    assert render_tree(make_spec(tdx=tdx, vsock=False, cid=42)).find("devices/vsock") is None


def test_network_interface_only_when_a_network_is_set() -> None:
    assert render_tree(make_spec(network=None)).find("devices/interface") is None
    interface = only(render_tree(make_spec(network="default")), "devices/interface")
    assert interface.get("type") == "network"
    assert only(interface, "source").get("network") == "default"
    assert only(interface, "model").get("type") == "virtio"


def test_console_log_element_only_when_console_log_is_set() -> None:
    assert render_tree(make_spec()).find("devices/serial/log") is None
    log = only(render_tree(make_spec(console_log="/var/log/td-1.log")), "devices/serial/log")
    assert log.get("file") == "/var/log/td-1.log"


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_user_netdev_forwards_bind_address_and_host_port_to_guest_ssh(tdx: bool) -> None:
    spec = make_spec(tdx=tdx, ssh=xml.SshForward(host_port=2222, bind_address="0.0.0.0"))
    args = qemu_args(render_tree(spec))
    netdev = args[args.index("-netdev") + 1]
    assert "hostfwd=tcp:0.0.0.0:2222-:22" in netdev.split(",")
    assert netdev.startswith("user,")


def test_default_ssh_forward_binds_loopback_with_an_ephemeral_port() -> None:
    args = qemu_args(render_tree(make_spec()))
    assert any("hostfwd=tcp:127.0.0.1:0-:22" in arg for arg in args)


# --- our metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_metadata_carries_owner_overlay_and_shutdown_timeout_in_our_namespace(tdx: bool) -> None:
    root = render_tree(make_spec(tdx=tdx, shutdown_timeout=123))
    instance = only(root, f"metadata/{{{NAMESPACE}}}instance")
    owner = only(instance, f"{{{NAMESPACE}}}owner")
    assert dict(owner.attrib) == {"project": "proj", "stack": "dev", "resource": "td"}
    assert only(instance, f"{{{NAMESPACE}}}overlay").get("path") == OVERLAY
    assert only(instance, f"{{{NAMESPACE}}}shutdown").get("timeout") == "123"
    assert only(instance, f"{{{NAMESPACE}}}tdx").get("enabled") == ("yes" if tdx else "no")


# --- regular VM template ---------------------------------------------------------------------


def test_regular_vm_has_no_launch_security_nor_private_memory() -> None:
    root = render_tree(make_spec(tdx=False))
    assert root.find("launchSecurity") is None
    assert root.find("memoryBacking") is None


def test_regular_vm_under_tcg_has_no_host_passthrough_cpu() -> None:
    root = render_tree(make_spec(tdx=False, domain_type="qemu"))
    assert root.get("type") == "qemu"
    assert not root.xpath("cpu[@mode='host-passthrough']")


def test_regular_vm_under_kvm_uses_host_passthrough_cpu() -> None:
    assert only(render_tree(make_spec(tdx=False, domain_type="kvm")), "cpu").get("mode") == (
        "host-passthrough"
    )


def test_regular_vm_loader_is_pflash_only_when_firmware_is_given() -> None:
    loader = only(render_tree(make_spec(tdx=False)), "os/loader")
    assert (loader.text, loader.get("type"), loader.get("readonly")) == (FIRMWARE, "pflash", "yes")
    assert render_tree(make_spec(tdx=False, firmware=None)).find("os/loader") is None


# --- quote generation service: both dialects -------------------------------------------------


def test_qgs_unix_socket_renders_path_attribute_and_validates() -> None:
    spec = make_spec(qgs=xml.QuoteGenerationService(path="/var/run/tdx-qgs/qgs.socket"))
    root = xml.validate(xml.render(spec))
    qgs = only(root, "launchSecurity/quoteGenerationService")
    assert qgs.get("path") == "/var/run/tdx-qgs/qgs.socket"
    assert len(qgs) == 0


def test_qgs_vsock_renders_socket_address_and_validates() -> None:
    spec = make_spec(qgs=xml.QuoteGenerationService(vsock_cid=2, vsock_port=4050))
    root = xml.validate(xml.render(spec))
    qgs = only(root, "launchSecurity/quoteGenerationService")
    assert qgs.get("path") is None
    assert dict(only(qgs, "SocketAddress").attrib) == {"type": "vsock", "cid": "2", "port": "4050"}


def test_no_quote_generation_service_without_qgs() -> None:
    root = xml.validate(xml.render(make_spec(qgs=None)))
    assert root.find("launchSecurity/quoteGenerationService") is None


def test_validate_returns_the_tree_with_launch_security_still_in_it() -> None:
    assert xml.validate(xml.render(make_spec())).find("launchSecurity") is not None


def test_vsock_qgs_without_a_port_is_rejected_by_validate() -> None:
    spec = make_spec(qgs=xml.QuoteGenerationService(vsock_cid=2))
    with pytest.raises(InputError) as excinfo:
        xml.validate(xml.render(spec))
    assert excinfo.value.field == "template"
    assert "SocketAddress" in excinfo.value.reason


@pytest.mark.parametrize(
    ("launch_security", "complaint"),
    [
        pytest.param("<launchSecurity type='tdx'/>", "<policy> is missing", id="no-policy"),
        pytest.param(
            "<launchSecurity type='tdx'><policy> </policy></launchSecurity>",
            "<policy> is missing",
            id="blank-policy",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>lots</policy></launchSecurity>",
            "is not a number",
            id="non-numeric-policy",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy>"
            "<quoteGenerationService path='/run/qgs.sock'>"
            "<SocketAddress type='vsock' cid='2' port='4050'/>"
            "</quoteGenerationService></launchSecurity>",
            "both path= and <SocketAddress>",
            id="path-and-socket-address",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy>"
            "<quoteGenerationService><SocketAddress type='vsock' cid='2' port='qgs'/>"
            "</quoteGenerationService></launchSecurity>",
            "numeric cid and port",
            id="non-numeric-port",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy>"
            "<quoteGenerationService><SocketAddress type='unix' cid='2' port='4050'/>"
            "</quoteGenerationService></launchSecurity>",
            "type='vsock'",
            id="socket-address-not-vsock",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy>"
            "<quoteGenerationService path='run/qgs.sock'/></launchSecurity>",
            "must be absolute",
            id="relative-path",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy>"
            "<quoteGenerationService/></launchSecurity>",
            "needs path= or one <SocketAddress>",
            id="empty-qgs",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy>"
            "<quoteGenerationService path='/a'/><quoteGenerationService path='/b'/>"
            "</launchSecurity>",
            "more than one <quoteGenerationService>",
            id="two-qgs",
        ),
        pytest.param(
            "<launchSecurity type='tdx'><policy>0x10000000</policy><mrconfigid/></launchSecurity>",
            "unexpected elements ['mrconfigid']",
            id="unknown-child",
        ),
    ],
)
def test_malformed_launch_security_is_rejected_as_a_template_error(
    launch_security: str, complaint: str
) -> None:
    with pytest.raises(InputError) as excinfo:
        xml.check_launch_security(LaunchSecurity.parse(launch_security))
    assert excinfo.value.field == "template"
    assert complaint in excinfo.value.reason


@pytest.mark.parametrize(
    "launch_security",
    [
        "<launchSecurity type='tdx'><policy>0x10000000</policy></launchSecurity>",
        "<launchSecurity type='tdx'><policy>268435456</policy>"
        "<quoteGenerationService path='/run/qgs.sock'/></launchSecurity>",
        "<launchSecurity type='tdx'><policy>0x0</policy><quoteGenerationService>"
        "<SocketAddress type='vsock' cid='2' port='4050'/></quoteGenerationService>"
        "</launchSecurity>",
    ],
    ids=["policy-only", "unix-qgs", "vsock-qgs"],
)
def test_well_formed_launch_security_passes_the_structural_check(launch_security: str) -> None:
    xml.check_launch_security(LaunchSecurity.parse(launch_security))


def test_validate_applies_the_structural_check_to_launch_security_in_a_document() -> None:
    text = xml.render(make_spec()).replace("<policy>0x10000000</policy>", "")
    with pytest.raises(InputError, match="<policy> is missing"):
        xml.validate(text)


# --- libvirt's RelaxNG schema ----------------------------------------------------------------


@pytest.mark.parametrize("domain_type", ["kvm", "qemu"])
@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_rendered_xml_without_launch_security_passes_libvirt_schema(
    libvirt_schema: etree.RelaxNG, tdx: bool, domain_type: str
) -> None:
    spec = make_spec(
        tdx=tdx,
        domain_type=domain_type,
        disk=xml.Disk(OVERLAY, (xml.BackingLayer("/pool/base.qcow2", "qcow2"),)),
        kernel="/boot/vmlinuz",
        initrd="/boot/initrd.img",
        cmdline="console=ttyS0",
        gpus=(GPU_A, GPU_B),
        network="default",
        cid=7,
        console_log="/var/log/td-1.log",
        qgs=xml.QuoteGenerationService(vsock_cid=2, vsock_port=4050),
    )
    root = render_tree(spec)
    for launch_security in root.findall("launchSecurity"):
        root.remove(launch_security)
    assert libvirt_schema.validate(root), libvirt_schema.error_log
    xml.validate(xml.render(spec))


def test_minimal_specs_validate_for_both_templates() -> None:
    for tdx in (True, False):
        xml.render_and_validate(make_spec(tdx=tdx, vsock=False))


# --- escaping --------------------------------------------------------------------------------

NASTY = "a<b>c&d\"e'f'/><evil/>&amp;"


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_owner_strings_cannot_inject_elements_and_round_trip_exactly(tdx: bool) -> None:
    spec = make_spec(tdx=tdx, owner=Owner(NASTY, "dev" + NASTY, NASTY + "res"))
    root = render_tree(spec)
    assert not list(root.iter("evil"))
    owner = only(root, f"metadata/{{{NAMESPACE}}}instance/{{{NAMESPACE}}}owner")
    assert dict(owner.attrib) == {
        "project": NASTY,
        "stack": "dev" + NASTY,
        "resource": NASTY + "res",
    }


@pytest.mark.parametrize("tdx", [True, False], ids=["td", "regular"])
def test_cmdline_cannot_inject_elements_and_round_trips_exactly(tdx: bool) -> None:
    cmdline = "console=ttyS0 x=" + NASTY + "</cmdline><evil/>"
    root = render_tree(make_spec(tdx=tdx, kernel="/boot/vmlinuz", cmdline=cmdline))
    assert not list(root.iter("evil"))
    assert only(root, "os/cmdline").text == cmdline


@pytest.mark.parametrize("field_name", ["network", "console_log", "firmware", "kernel", "initrd"])
def test_other_user_strings_cannot_inject_elements(field_name: str) -> None:
    root = render_tree(make_spec(**{field_name: "/x" + NASTY}))
    assert not list(root.iter("evil"))
    assert "/x" + NASTY in [*(el.text for el in root.iter()), *root.xpath("//@*")]


def test_disk_paths_cannot_inject_elements() -> None:
    disk = xml.Disk("/o" + NASTY, (xml.BackingLayer("/b" + NASTY, "qcow2"),))
    root = render_tree(make_spec(disk=disk))
    assert not list(root.iter("evil"))
    assert only(root, "devices/disk/source").get("file") == "/o" + NASTY
    assert only(root, "devices/disk/backingStore/source").get("file") == "/b" + NASTY


# --- user templates --------------------------------------------------------------------------

USER_TEMPLATE = """\
<domain type='{{ domain_type }}'>
  <name>{{ name }}</name>
  <description>custom for {{ owner.resource }}</description>
  <memory unit='MiB'>{{ memory_mib }}</memory>
  <vcpu placement='static'>{{ vcpus }}</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <devices>
{% include "_common_devices.xml.j2" %}
  </devices>
</domain>
"""


def write_template(tmp_path: Path, text: str, filename: str = "custom.xml.j2") -> str:
    path = tmp_path / filename
    path.write_text(text)
    return str(path)


def test_user_template_can_include_our_partials_and_validates(tmp_path: Path) -> None:
    template = write_template(tmp_path, USER_TEMPLATE)
    root = xml.parse(xml.render_and_validate(make_spec(gpus=(GPU_A,)), template))
    assert only(root, "description").text == "custom for td"
    assert only(root, "devices/disk/source").get("file") == OVERLAY
    assert only(root, "devices/hostdev/source/address").get("bus") == "0x3b"


def test_user_template_sees_the_same_variables_and_is_autoescaped(tmp_path: Path) -> None:
    template = write_template(tmp_path, USER_TEMPLATE)
    root = render_tree(make_spec(owner=Owner("p", "s", NASTY)), template)
    assert not list(root.iter("evil"))
    assert only(root, "description").text == "custom for " + NASTY


def test_user_template_with_a_jinja_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = "<domain>\n  <name>{{ name }}</name>\n  {% if %}\n</domain>\n"
    template = write_template(tmp_path, text)
    with pytest.raises(InputError) as excinfo:
        xml.render(make_spec(), template)
    assert excinfo.value.field == "template"
    assert "line 3" in excinfo.value.reason


def test_user_template_rendering_non_xml_is_rejected(tmp_path: Path) -> None:
    template = write_template(tmp_path, "name = {{ name }}\n")
    with pytest.raises(InputError) as excinfo:
        xml.render_and_validate(make_spec(), template)
    assert excinfo.value.field == "template"
    assert "does not parse" in excinfo.value.reason


def test_user_template_rejected_by_the_schema_names_the_schema(tmp_path: Path) -> None:
    template = write_template(tmp_path, USER_TEMPLATE.replace("unit='MiB'", "unit='lightyears'"))
    with pytest.raises(InputError) as excinfo:
        xml.render_and_validate(make_spec(), template)
    assert excinfo.value.field == "template"
    assert "libvirt's domain schema" in excinfo.value.reason


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("{{ no_such_variable }}", "'no_such_variable' is undefined"),
        ("{{ owner.no_such_attribute }}", "no attribute 'no_such_attribute'"),
    ],
)
def test_user_template_with_an_undefined_variable_is_rejected(
    tmp_path: Path, expression: str, complaint: str
) -> None:
    template = write_template(tmp_path, USER_TEMPLATE.replace("{{ name }}", expression))
    with pytest.raises(InputError) as excinfo:
        xml.render(make_spec(), template)
    assert excinfo.value.field == "template"
    assert complaint in excinfo.value.reason


def test_missing_user_template_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as excinfo:
        xml.render(make_spec(), str(tmp_path / "absent.xml.j2"))
    assert excinfo.value.field == "template"


def test_template_rendering_something_other_than_a_domain_is_rejected(tmp_path: Path) -> None:
    template = write_template(tmp_path, "<network><name>{{ name }}</name></network>\n")
    with pytest.raises(InputError, match="expected <domain>"):
        xml.render_and_validate(make_spec(), template)


def test_template_rendering_a_domain_without_devices_is_rejected(tmp_path: Path) -> None:
    text = USER_TEMPLATE.split("  <devices>")[0] + "</domain>\n"
    template = write_template(tmp_path, text)
    with pytest.raises(InputError, match="without <devices>"):
        xml.render_and_validate(make_spec(), template)

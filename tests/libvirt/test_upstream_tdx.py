"""Trust-domain XML proven by a libvirt that knows TDX: the upstream (sid) host.

The XML is validated with that host's own schema (launchSecurity kept) and defined on its
``test:///default`` driver by its own virsh (run chrooted in its root; ``test:///default`` lives
per connection, so define and dumpxml share one virsh session). The provider itself never runs
virsh; these tests do, to ask the other libvirt. The preview checks, ``tdxctl host-check`` and
``tdxctl render`` then run against the upstream daemon (PULUMI_TDX_UPSTREAM_URI).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tdx_provider.connection import connect
from tdx_provider.errors import InputError
from tdx_provider.guest import xml
from tdx_provider.host import checks as host
from tdx_provider.metadata import Owner
from tdx_provider.resources.trust_domain import TRUST_DOMAIN_RESOURCE
from tdx_provider.validation import PciAddress
from tests.support.hosts import by_name, upstream_root

TDX_LOADER = "/usr/share/ovmf/OVMF.inteltdx.ms.fd"
QGS_PATH = "/var/run/tdx-qgs/qgs.socket"
DIGESTS = {"mr_config_id": bytes(range(48)), "mr_owner": bytes(range(1, 49)),
           "mr_owner_config": bytes(range(2, 50))}
B64 = {key: base64.b64encode(value).decode() for key, value in DIGESTS.items()}
TDXCTL = str(Path(sys.executable).with_name("tdxctl"))


@dataclasses.dataclass(frozen=True)
class Upstream:
    uri: str
    root: Path


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    """The upstream host of the matrix (tests/support/hosts.py): a failure, never a skip,
    when it does not answer."""
    host = by_name("upstream")
    host.version()
    return Upstream(host.uri, upstream_root())


@pytest.fixture
def upstream_conn(upstream: Upstream) -> Iterator[Any]:
    with connect(upstream.uri) as conn:
        yield conn


def td_spec(name: str, **overrides: Any) -> xml.DomainSpec:
    spec = xml.DomainSpec(
        name=name, owner=Owner("p", "s", "td"), memory_mib=2048, vcpus=2,
        disk=xml.Disk("/var/lib/libvirt/images/td.qcow2"), firmware=TDX_LOADER,
        gpus=(PciAddress(0, 0x3B, 0, 0), PciAddress(0, 0x86, 0, 0)), vsock=True, cid=7,
        qgs=xml.QuoteGenerationService(path=QGS_PATH),
        tdx_policy=xml.POLICY_SEPT_VE_DISABLE | xml.POLICY_DEBUG,
        mr_config_id=B64["mr_config_id"], mr_owner=B64["mr_owner"],
        mr_owner_config=B64["mr_owner_config"],
    )
    return dataclasses.replace(spec, **overrides)


def virsh_in_root(upstream: Upstream, commands: str) -> subprocess.CompletedProcess[str]:
    """That host's own virsh, chrooted in its root, with /var/tmp bind-mounted at the same path
    in a private mount namespace (the root itself is not modified)."""
    script = ('mount --bind /var/tmp "$1/var/tmp" && exec chroot "$1" virsh -q '
              '-c test:///default "$2"')
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(upstream.root),
                           commands], capture_output=True, text=True, timeout=120, check=False)


def define_and_dump(upstream: Upstream, scratch_dir: Path, name: str, document: str
                    ) -> etree._Element:
    path = scratch_dir / f"{name}.xml"
    path.write_text(document)
    done = virsh_in_root(upstream, f"define --validate {path}; dumpxml {name}")
    assert done.returncode == 0, done.stderr
    dumped = done.stdout[done.stdout.index("<domain"):]
    return etree.fromstring(dumped.encode())


# --- the host's own schema -------------------------------------------------------------------


def test_schema_for_the_chrooted_daemon_is_its_roots_and_judges_launch_security(
    upstream: Upstream,
) -> None:
    schema = xml.schema_for_uri(upstream.uri)
    assert schema.directory == upstream.root / "usr/share/libvirt/schemas"
    assert schema.launch_security is True


def test_td_validates_against_the_upstream_schema_with_launch_security_kept(
    upstream: Upstream,
) -> None:
    document = xml.render(td_spec("td-schema"))
    root = xml.validate(document, schema=xml.schema_for_uri(upstream.uri))
    assert root.find("launchSecurity/mrOwner") is not None


def test_upstream_schema_rejects_the_vsock_qgs_form(upstream: Upstream) -> None:
    spec = td_spec("td-vsock", qgs=xml.QuoteGenerationService(vsock_cid=2, vsock_port=4050))
    own_schema = r"schema rejects \(schema: .*/usr/share/libvirt/schemas \(the daemon's root\)\)"
    with pytest.raises(InputError, match=own_schema):
        xml.validate(xml.render(spec), schema=xml.schema_for_uri(upstream.uri))


def test_upstream_schema_judges_the_policy_format(upstream: Upstream) -> None:
    # 0o2 is a number to our structural check but not libvirt's hex: only a schema
    # that sees launchSecurity refuses it
    document = xml.render(td_spec("td-x")).replace("<policy>0x10000001<", "<policy>0o2<")
    xml.validate(document, schema=xml.local_schema())
    with pytest.raises(InputError, match="launchSecurity"):
        xml.validate(document, schema=xml.schema_for_uri(upstream.uri))


# --- round trip through upstream libvirt's parser ----------------------------------------------


def test_round_trip_keeps_policy_measurements_qgs_path_gpus_and_vsock(
    upstream: Upstream, scratch_dir: Path,
) -> None:
    name = scratch_dir.name
    dumped = define_and_dump(upstream, scratch_dir, name, xml.render(td_spec(name)))
    launch = dumped.find("launchSecurity")
    assert launch is not None and launch.get("type") == "tdx"
    assert int(launch.findtext("policy") or "", 16) == 0x10000001
    assert launch.findtext("mrConfigId") == B64["mr_config_id"]
    assert launch.findtext("mrOwner") == B64["mr_owner"]
    assert launch.findtext("mrOwnerConfig") == B64["mr_owner_config"]
    assert launch.find("quoteGenerationService").get("path") == QGS_PATH
    buses = sorted(a.get("bus") for a in dumped.findall("devices/hostdev/source/address"))
    assert buses == ["0x3b", "0x86"]
    assert dumped.find("devices/vsock/cid").get("address") == "7"


def test_round_trip_keeps_the_seed_as_a_read_only_virtio_disk_and_our_seed_mark(
    upstream: Upstream, scratch_dir: Path,
) -> None:
    name = scratch_dir.name
    seed = xml.SeedDisk("/var/lib/libvirt/images/seed-1", "iid-ptdx-0123456789abcdef0123")
    document = xml.render(td_spec(name, seed=seed))
    xml.validate(document, schema=xml.schema_for_uri(upstream.uri))
    dumped = define_and_dump(upstream, scratch_dir, name, document)
    disks = {d.find("target").get("dev"): d for d in dumped.findall("devices/disk")}
    assert sorted(disks) == ["vda", "vdb"]
    vdb = disks["vdb"]
    assert vdb.get("device") == "disk" and vdb.find("target").get("bus") == "virtio"
    assert vdb.find("source").get("file") == seed.path
    assert vdb.find("readonly") is not None
    assert vdb.find("driver").get("type") == "raw"
    mark = dumped.find("metadata/{*}instance/{*}seed")
    assert (mark.get("path"), mark.get("instance-id")) == (seed.path, seed.instance_id)
    assert dumped.find("launchSecurity").get("type") == "tdx"


def test_upstream_parser_silently_drops_the_vsock_qgs_form(
    upstream: Upstream, scratch_dir: Path,
) -> None:
    # why the vsock form must fail at preview on upstream libvirt: define (without --validate)
    # succeeds and the service is gone
    name = scratch_dir.name
    spec = td_spec(name, qgs=xml.QuoteGenerationService(vsock_cid=2, vsock_port=4050))
    path = scratch_dir / "vsock.xml"
    path.write_text(xml.render(spec))
    done = virsh_in_root(upstream, f"define {path}; dumpxml {name}")
    assert done.returncode == 0, done.stderr
    dumped = etree.fromstring(done.stdout[done.stdout.index("<domain"):].encode())
    qgs = dumped.find("launchSecurity/quoteGenerationService")
    assert qgs is not None and len(qgs) == 0 and not qgs.attrib


def test_hex_measurement_is_refused_by_upstream_libvirt(upstream: Upstream, scratch_dir: Path
                                                        ) -> None:
    # why we render base64: libvirt decodes the text as base64 and wants 48 bytes
    name = scratch_dir.name
    document = xml.render(td_spec(name)).replace(B64["mr_owner"], DIGESTS["mr_owner"].hex())
    path = scratch_dir / "hex.xml"
    path.write_text(document)
    done = virsh_in_root(upstream, f"define {path}")
    assert done.returncode != 0
    assert "expected 48" in done.stderr


# --- host checks and preview checks against the upstream daemon ---------------------------------


def test_libvirt_tdx_check_names_the_exact_reason(upstream_conn: Any) -> None:
    check = host.check_libvirt_tdx(upstream_conn)
    assert check.status == "fail"
    assert "libvirt 12." in check.reason
    assert "<tdx supported='no'/>" in check.reason


def test_tdx_loader_check_finds_the_inteltdx_image(upstream_conn: Any) -> None:
    check = host.check_tdx_loader(upstream_conn)
    assert check.status == "pass" and TDX_LOADER in check.reason


def preview(upstream: Upstream, **inputs: Any) -> tuple[dict[str, Any], dict[str, str]]:
    news = {"uri": upstream.uri, "overlay": "/var/lib/libvirt/images/td.qcow2",
            "memory_mib": 512, "vcpus": 1, "network": None, "name": "td-preview",
            "owner": {"project": "p", "stack": "s", "resource": "td"}, **inputs}
    checker = TRUST_DOMAIN_RESOURCE.check({}, news, root=Path("/"))
    return checker.inputs, {f.property: f.reason for f in checker.failures}


def test_preview_picks_the_tdx_firmware_and_fails_tdx_with_the_reason(upstream: Upstream
                                                                       ) -> None:
    checked, failures = preview(upstream)
    assert checked["firmware"] == TDX_LOADER
    assert list(failures) == ["tdx"]
    assert "<tdx supported='no'/>" in failures["tdx"]


def test_preview_fails_the_vsock_qgs_form_naming_qgs(upstream: Upstream) -> None:
    _, failures = preview(upstream, qgs={"vsock_cid": 2, "vsock_port": 4050})
    assert "qgs" in failures and "path" in failures["qgs"]


def test_preview_takes_the_path_qgs_form(upstream: Upstream) -> None:
    _, failures = preview(upstream, qgs={"path": QGS_PATH})
    assert "qgs" not in failures


def test_preview_fails_the_path_form_on_debians_libvirt_9() -> None:
    news = {"uri": "qemu:///system", "overlay": "/var/lib/libvirt/images/td.qcow2",
            "memory_mib": 512, "vcpus": 1, "network": None, "name": "td-preview",
            "firmware": "/usr/share/ovmf/OVMF.fd", "qgs": {"path": QGS_PATH},
            "owner": {"project": "p", "stack": "s", "resource": "td"}}
    checker = TRUST_DOMAIN_RESOURCE.check({}, news, root=Path("/"))
    failures = {f.property: f.reason for f in checker.failures}
    assert "predates" in failures["qgs"]


# --- tdxctl render -------------------------------------------------------------------------------


def tdxctl_render(upstream: Upstream, scratch_dir: Path, **inputs: Any
                  ) -> subprocess.CompletedProcess[str]:
    path = scratch_dir / "inputs.json"
    path.write_text(json.dumps({"overlay": "/var/lib/libvirt/images/td.qcow2",
                                "memory_mib": 1024, "vcpus": 1, "name": scratch_dir.name,
                                "network": None, **inputs}))
    return subprocess.run([TDXCTL, "render", "--uri", upstream.uri, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_render_prints_xml_the_upstream_libvirt_defines_and_warns_about_tdx(
    upstream: Upstream, scratch_dir: Path,
) -> None:
    done = tdxctl_render(upstream, scratch_dir, debug=True, qgs={"path": QGS_PATH},
                         mr_owner=DIGESTS["mr_owner"].hex())
    assert done.returncode == 0, done.stderr
    assert "warning: tdx:" in done.stderr and "<tdx supported='no'/>" in done.stderr
    dumped = define_and_dump(upstream, scratch_dir, scratch_dir.name, done.stdout)
    assert dumped.findtext("os/loader") == TDX_LOADER
    assert dumped.findtext("launchSecurity/policy") == "0x10000001"
    assert dumped.findtext("launchSecurity/mrOwner") == B64["mr_owner"]


@pytest.mark.parametrize(
    ("inputs", "field"),
    [({"memory_mib": "lots"}, "memory_mib"),
     ({"qgs": {"vsock_cid": 2, "vsock_port": 4050}}, "qgs"),
     ({"mr_owner": "abc"}, "mr_owner"),
     ({"tdx_policy": 1}, "tdx_policy")],
)
def test_render_of_bad_input_exits_non_zero_naming_the_property(
    upstream: Upstream, scratch_dir: Path, inputs: dict[str, Any], field: str,
) -> None:
    done = tdxctl_render(upstream, scratch_dir, **inputs)
    assert done.returncode == 1
    assert f"render: {field}: " in done.stderr
    assert done.stdout == ""


def test_host_check_on_the_upstream_host_names_the_reason_and_the_loader(upstream: Upstream
                                                                        ) -> None:
    done = subprocess.run([TDXCTL, "host-check", "--json", "--uri", upstream.uri],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    checks = {row["name"]: row for row in json.loads(done.stdout)}
    assert checks["libvirt_tdx"]["status"] == "fail"
    assert "<tdx supported='no'/>" in checks["libvirt_tdx"]["reason"]
    assert checks["tdx_loader"]["status"] == "pass"
    assert TDX_LOADER in checks["tdx_loader"]["reason"]
    assert "takes 'path'" in checks["qgs_form"]["reason"]

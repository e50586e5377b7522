"""Which libvirt schema judges the XML for a URI: a chrooted daemon's own, this machine's, or
this machine's standing in for a remote host (launchSecurity then checked structurally)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdx_provider.guest import xml


def make_root(tmp_path: Path, *, knows_tdx: bool) -> Path:
    schemas = tmp_path / "root/usr/share/libvirt/schemas"
    schemas.mkdir(parents=True)
    (schemas / "domain.rng").write_text("<grammar/>")
    value = "<value>tdx</value>" if knows_tdx else "<value>sev</value>"
    (schemas / "domaincommon.rng").write_text(f"<grammar><choice>{value}</choice></grammar>")
    return tmp_path / "root"


@pytest.mark.parametrize("socket", ["run/libvirt/libvirt-sock", "var/run/libvirt/libvirt-sock",
                                    "run/libvirt/virtqemud-sock"])
def test_socket_inside_a_root_selects_that_roots_schema(tmp_path: Path, socket: str) -> None:
    root = make_root(tmp_path, knows_tdx=True)
    schema = xml.schema_for_uri(f"qemu:///system?socket={root / socket}")
    assert schema.directory == root / "usr/share/libvirt/schemas"
    assert schema.launch_security is True


def test_a_roots_schema_without_tdx_does_not_judge_launch_security(tmp_path: Path) -> None:
    root = make_root(tmp_path, knows_tdx=False)
    schema = xml.schema_for_uri(f"qemu:///system?socket={root}/run/libvirt/libvirt-sock")
    assert schema.directory == root / "usr/share/libvirt/schemas"
    assert schema.launch_security is False


@pytest.mark.parametrize("uri", ["qemu:///system", "qemu:///system?socket=/run/libvirt/x-sock",
                                 "test:///default"])
def test_local_uris_select_this_machines_schema(uri: str) -> None:
    schema = xml.schema_for_uri(uri)
    assert schema.directory == xml.SCHEMA_DIR
    assert schema.launch_security is xml.schema_knows_tdx(xml.SCHEMA_DIR)


def test_socket_in_a_tree_without_libvirt_falls_back_to_this_machine(tmp_path: Path) -> None:
    schema = xml.schema_for_uri(f"qemu:///system?socket={tmp_path}/run/libvirt/libvirt-sock")
    assert schema.directory == xml.SCHEMA_DIR


@pytest.mark.parametrize("uri", ["qemu+ssh://root@tdx-host/system", "qemu+tcp://10.0.0.5/system"])
def test_remote_hosts_use_this_machines_schema_without_judging_launch_security(uri: str) -> None:
    schema = xml.schema_for_uri(uri)
    assert schema.directory == xml.SCHEMA_DIR
    assert schema.launch_security is False
    assert "remote" in schema.origin


"""cloud-init seeds: the image holds exactly what was declared, bad input fails at preview naming
its field, the instance-id follows the content, and the domain XML attaches the seed read-only
on virtio."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from tdx_provider.dynamic.cloud_init_seed import CloudInitSeedProvider
from tdx_provider.dynamic.trust_domain import TrustDomainProvider
from tdx_provider.errors import InputError
from tdx_provider.guest import cloud_init, seed_image, xml
from tdx_provider.metadata import Owner
from tests.unit.test_diff_rules import td_inputs, td_outputs

OWNER = {"project": "p", "stack": "s", "resource": "seed"}
NETWORK = {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Real public keys made by ssh-keygen: ed25519, RSA (long: must not be folded), ECDSA."""
    made = {}
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "3072"]), ("ecdsa", ["-b", "256"])):
        path = tmp_path_factory.mktemp("keys") / f"id_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C",
                        f"{kind}@test", "-f", str(path)], check=True)
        made[kind] = Path(f"{path}.pub").read_text().strip()
    return made


def declared(keys: dict[str, str], **overrides: Any) -> cloud_init.Seed:
    seed = cloud_init.Seed(
        hostname="td-1.example.org",
        users=(cloud_init.User("ops", (keys["ed25519"], keys["rsa"]), sudo=True,
                               groups=("adm",), shell="/bin/bash"),),
        ssh_authorized_keys=(keys["ecdsa"],),
        network_config=yaml.safe_dump(NETWORK),
    )
    return dataclasses.replace(seed, **overrides)


# --- the image -----------------------------------------------------------------------------


def test_seed_image_read_back_holds_the_declared_files(keys: dict[str, str]) -> None:
    files = cloud_init.render(declared(keys))
    image = seed_image.build(files.files)

    assert seed_image.label(image) == "cidata"
    assert seed_image.read(image) == files.files            # Rock Ridge names (Linux)
    assert seed_image.read(image, joliet=True) == files.files  # Joliet names

    user_data = seed_image.read(image)["user-data"].decode()
    assert user_data.startswith("#cloud-config\n")
    config = yaml.safe_load(user_data)
    assert config["users"][0] == "default"
    assert config["users"][1] == {
        "name": "ops", "ssh_authorized_keys": [keys["ed25519"], keys["rsa"]],
        "sudo": "ALL=(ALL) NOPASSWD:ALL", "groups": ["adm"], "shell": "/bin/bash",
        "lock_passwd": True}
    assert config["ssh_authorized_keys"] == [keys["ecdsa"]]
    # one key per line: a guest (and a grep) sees each key whole
    assert any(line.strip() == f"- {keys['rsa']}" for line in user_data.splitlines())
    meta = yaml.safe_load(seed_image.read(image)["meta-data"])
    assert meta == {"instance-id": files.instance_id, "local-hostname": "td-1.example.org"}
    assert yaml.safe_load(seed_image.read(image)["network-config"]) == NETWORK


def test_network_config_given_as_a_mapping_is_written_as_yaml(keys: dict[str, str]) -> None:
    files = cloud_init.render(declared(keys, network_config=NETWORK))
    image = seed_image.build(files.files)
    assert yaml.safe_load(seed_image.read(image)["network-config"]) == NETWORK


def test_seed_without_network_config_has_no_such_file(keys: dict[str, str]) -> None:
    files = cloud_init.render(declared(keys, network_config=None, hostname=None))
    image = seed_image.build(files.files)
    assert sorted(seed_image.read(image)) == ["meta-data", "user-data"]
    assert yaml.safe_load(seed_image.read(image)["meta-data"]) == {
        "instance-id": files.instance_id}


def test_raw_user_data_is_the_whole_user_data_byte_for_byte() -> None:
    raw = "#cloud-config\npackages: [htop]\nruncmd:\n  - [sh, -c, 'echo ü > /tmp/x']\n"
    files = cloud_init.render(cloud_init.Seed(user_data=raw))
    assert seed_image.read(seed_image.build(files.files))["user-data"] == raw.encode()


def test_instance_id_changes_exactly_when_the_content_does(keys: dict[str, str]) -> None:
    base = cloud_init.instance_id(declared(keys))
    assert cloud_init.instance_id(declared(keys)) == base
    assert base.startswith("iid-ptdx-") and len(base) == len("iid-ptdx-") + 20
    changed = [declared(keys, hostname="td-2"), declared(keys, ssh_authorized_keys=()),
               declared(keys, network_config=None),
               declared(keys, users=(cloud_init.User("ops"),))]
    ids = {cloud_init.instance_id(seed) for seed in changed}
    assert base not in ids and len(ids) == len(changed)


# --- preview checks ------------------------------------------------------------------------


def check(**news: Any) -> dict[str, str]:
    """Failures of the seed's check by property (nothing here reaches libvirt: a failure stops
    the check before the path lookup)."""
    props = {"uri": "qemu:///system", "pool": "p", "owner": OWNER, **news}
    return {f.property: f.reason for f in CloudInitSeedProvider().check({}, props).failures}


def test_user_data_that_is_not_yaml_names_line_and_column() -> None:
    failures = check(user_data="#cloud-config\nusers:\n  - name: ops\n    groups: [adm\n")
    assert set(failures) == {"user_data"}
    assert failures["user_data"].startswith("user_data: is not valid YAML: line 5, column 1:")


def test_user_data_without_a_header_and_cloud_config_that_is_no_mapping_fail() -> None:
    assert "must start with '#cloud-config'" in check(user_data="users: []\n")["user_data"]
    assert "must be a YAML mapping, not a list" in check(
        user_data="#cloud-config\n- a\n- b\n")["user_data"]
    assert check(user_data="#!/bin/sh\necho hi\n") == {}  # a script passes as it is


def test_an_ssh_key_that_does_not_parse_names_its_place(keys: dict[str, str]) -> None:
    kind, blob, _comment = keys["ed25519"].split()
    broken = f"{kind} {base64.b64encode(base64.b64decode(blob)[:-3]).decode()}"  # key cut short
    failures = check(users=[{"name": "ops", "ssh_authorized_keys": [keys["rsa"], broken]}])
    assert list(failures) == ["users"]
    assert failures["users"].startswith("users[0].ssh_authorized_keys[1]: ")
    assert "is not an OpenSSH public key" in failures["users"]

    failures = check(ssh_authorized_keys=["ssh-ed25519 not-base64!"])
    assert failures["ssh_authorized_keys"].startswith("ssh_authorized_keys[0]: ")

    failures = check(user_data=f"#cloud-config\nusers:\n  - name: a\n    ssh_authorized_keys:\n"
                               f"      - {keys['ecdsa']}\n      - ssh-rsa AAAAB3Nza\n")
    assert failures["user_data"].startswith(
        "user_data: cloud-config users[0].ssh_authorized_keys[1]: ")


@pytest.mark.parametrize("bad", ["-td", "td_1", "td..1", "a" * 64, "td-1.", "", "tü"])
def test_a_hostname_that_is_not_a_hostname_fails(bad: str) -> None:
    failures = check(hostname=bad)
    assert list(failures) == ["hostname"]
    assert "host name" in failures["hostname"]


def test_fqdn_and_numeric_labels_are_hostnames() -> None:
    for good in ("td-1", "td-1.example.org", "0123", "a" * 63):
        assert cloud_init.hostname("hostname", good) == good


def test_users_are_checked_field_by_field(keys: dict[str, str]) -> None:
    assert check(users=[{"name": "Ops"}])["users"].startswith("users[0].name: 'Ops'")
    assert check(users=[{"name": "ops", "sudo": "yes"}])["users"].startswith("users[0].sudo:")
    assert check(users=[{"name": "ops", "pasword": "x"}])["users"].startswith(
        "users[0].pasword: is not a user field")
    assert "more than once" in check(users=[{"name": "a"}, {"name": "a"}])["users"]


def test_user_data_cannot_be_combined_with_typed_users(keys: dict[str, str]) -> None:
    failures = check(user_data="#cloud-config\n{}\n", ssh_authorized_keys=[keys["ed25519"]])
    assert failures == {"ssh_authorized_keys": "ssh_authorized_keys: cannot be combined with "
                        "user_data, which is the whole user-data: declare them in its "
                        "cloud-config instead"}


def test_network_config_needs_a_version() -> None:
    assert "needs 'version' 1 or 2" in check(network_config={"ethernets": {}})["network_config"]
    assert "line 2, column" in check(network_config="version: 2\n  x: [\n")["network_config"]
    assert check(network_config={"network": {"version": 1, "config": []}}) == {}


def test_instance_id_is_known_at_preview_and_unknown_while_content_is() -> None:
    from pulumi.runtime.rpc import UNKNOWN

    props = {"uri": "qemu:///system", "pool": "p", "owner": OWNER, "hostname": "td-1",
             "name": "s"}
    known = CloudInitSeedProvider().check({}, {**props}).inputs
    assert known["instance_id"] == cloud_init.instance_id(cloud_init.Seed(hostname="td-1"))
    unknown = CloudInitSeedProvider().check({}, {**props, "hostname": UNKNOWN}).inputs
    assert unknown["instance_id"] == UNKNOWN


# --- diff rules ----------------------------------------------------------------------------


def seed_outputs(**overrides: Any) -> dict[str, Any]:
    outs = {"uri": "qemu:///system", "pool": "p", "name": "seed-1a2b3c4d", "auto_named": True,
            "hostname": "td-1", "users": [], "ssh_authorized_keys": [], "user_data": None,
            "network_config": None, "owner": OWNER, "instance_id": "iid-ptdx-1",
            "path": "/p/seed-1a2b3c4d"}
    outs.update(overrides)
    return outs


def test_any_seed_content_change_replaces_the_seed_and_nothing_else_changes_it() -> None:
    provider = CloudInitSeedProvider()
    assert provider.diff("id", seed_outputs(), seed_outputs()).changes is False
    result = provider.diff("id", seed_outputs(), seed_outputs(hostname="td-2"))
    assert result.replaces == ["hostname"]
    assert result.delete_before_replace is False  # auto-named: the new one first
    fixed = provider.diff("id", seed_outputs(auto_named=False),
                          seed_outputs(auto_named=False, user_data="#cloud-config\n"))
    assert fixed.replaces == ["user_data"] and fixed.delete_before_replace is True


def test_a_new_seed_replaces_the_trust_domain_and_an_old_state_sees_no_change() -> None:
    seed = {"path": "/p/seed-a", "instance_id": "iid-ptdx-a"}
    provider = TrustDomainProvider()
    # state written before seeds existed has no "seed" key; the new SDK sends none either
    assert provider.diff("id", td_outputs(), td_inputs()).changes is False
    assert provider.diff("id", td_outputs(seed=seed), td_inputs(seed=seed)).changes is False
    result = provider.diff("id", td_outputs(seed=seed),
                           td_inputs(seed={**seed, "instance_id": "iid-ptdx-b"}))
    assert result.replaces == ["seed"]
    assert result.delete_before_replace is True  # the overlay stays: the old domain goes first
    assert provider.diff("id", td_outputs(), td_inputs(seed=seed)).replaces == ["seed"]


# --- domain XML ----------------------------------------------------------------------------


def spec(tdx: bool, seed: xml.SeedDisk | None) -> xml.DomainSpec:
    return xml.DomainSpec(name="td-1", owner=Owner("p", "s", "td"), memory_mib=1024, vcpus=1,
                          disk=xml.Disk("/pool/disk.qcow2"), tdx=tdx, firmware="/fw.fd",
                          seed=seed)


@pytest.mark.parametrize("tdx", [True, False])
def test_the_seed_is_a_read_only_virtio_disk_in_both_templates(tdx: bool) -> None:
    seed = xml.SeedDisk("/pool/seed-1", "iid-ptdx-0123")
    root = xml.validate(xml.render(spec(tdx, seed)))
    disks = root.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    vdb = disks[1]
    assert vdb.get("device") == "disk" and vdb.find("target").get("bus") == "virtio"
    assert vdb.find("source").get("file") == "/pool/seed-1"
    assert vdb.find("driver").get("type") == "raw"
    assert vdb.find("readonly") is not None
    mark = root.find("metadata/{*}instance/{*}seed")
    assert (mark.get("path"), mark.get("instance-id")) == ("/pool/seed-1", "iid-ptdx-0123")


@pytest.mark.parametrize("tdx", [True, False])
def test_without_a_seed_the_xml_is_what_it_was(tdx: bool) -> None:
    root = xml.validate(xml.render(spec(tdx, None)))
    assert len(root.findall("devices/disk")) == 1
    assert root.find("metadata/{*}instance/{*}seed") is None


def test_seed_path_is_escaped() -> None:
    rendered = xml.render(spec(False, xml.SeedDisk("/pool/a'b<c", None)))
    root = etree.fromstring(rendered.encode())
    assert root.findall("devices/disk")[1].find("source").get("file") == "/pool/a'b<c"


def test_engine_check_errors_are_input_errors() -> None:
    with pytest.raises(InputError) as caught:
        cloud_init.hostname("hostname", "bad_name")
    assert caught.value.field == "hostname"

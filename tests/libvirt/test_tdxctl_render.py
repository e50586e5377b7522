"""``tdxctl render INPUTS.json`` on libvirt's test driver: the XML a TrustDomain would define,
through the preview checks; a host that cannot run a TD is a warning; bad input is an error
naming the property. (Against the upstream host: tests/libvirt/test_upstream_tdx.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tdx_provider.guest import xml
from tests.support.tdvf import Layout

TDXCTL = str(Path(sys.executable).with_name("tdxctl"))
URI = "test:///default"


def render(tmp_path: Path, inputs: dict[str, Any] | str, *args: str
           ) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "inputs.json"
    path.write_text(inputs if isinstance(inputs, str) else json.dumps(inputs))
    return subprocess.run([TDXCTL, "render", *args, str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Any]:
    firmware = tmp_path / "OVMF.inteltdx.fd"
    firmware.write_bytes(Layout().build())  # render measures it (MRTD): a real TDVF layout
    return {"uri": URI, "overlay": "/var/lib/libvirt/images/td.qcow2", "memory_mib": 512,
            "vcpus": 1, "name": "td-render", "network": None, "firmware": str(firmware)}


def test_render_prints_the_td_and_warns_that_this_host_cannot_run_it(
    tmp_path: Path, inputs: dict[str, Any],
) -> None:
    done = render(tmp_path, {**inputs, "debug": True})
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("tdxctl: warning: tdx: this host cannot run TDX")
    root = xml.validate(done.stdout)
    assert root.findtext("name") == "td-render"
    assert root.findtext("launchSecurity/policy") == "0x10000001"


def test_render_of_a_regular_vm_has_no_warning(tmp_path: Path, inputs: dict[str, Any]) -> None:
    done = render(tmp_path, {**inputs, "tdx": False, "domain_type": "qemu"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert xml.validate(done.stdout).find("launchSecurity") is None


def test_uri_option_overrides_the_inputs_uri(tmp_path: Path, inputs: dict[str, Any]) -> None:
    done = render(tmp_path, {**inputs, "uri": "qemu+ssh://nowhere.invalid/system"},
                  "--uri", URI)
    assert done.returncode == 0, done.stderr


def test_render_defaults_network_as_the_sdk_does(tmp_path: Path, inputs: dict[str, Any]) -> None:
    del inputs["network"]  # the SDK's default: libvirt's "default" network (test:/// has one)
    done = render(tmp_path, inputs)
    assert done.returncode == 0, done.stderr
    root = xml.validate(done.stdout)
    assert root.find("devices/interface/source").get("network") == "default"


def test_render_attaches_a_seed_given_by_path_or_with_its_instance_id(
    tmp_path: Path, inputs: dict[str, Any],
) -> None:
    for seed in ("/pool/seed-1", {"path": "/pool/seed-1", "instance_id": "iid-ptdx-1"}):
        done = render(tmp_path, {**inputs, "seed": seed})
        assert done.returncode == 0, done.stderr
        vdb = xml.validate(done.stdout).findall("devices/disk")[1]
        assert vdb.find("source").get("file") == "/pool/seed-1"
        assert vdb.find("readonly") is not None
    done = render(tmp_path, {**inputs, "seed": "seed-1"})
    assert done.returncode == 1
    assert "render: seed.path: 'seed-1' must be an absolute path" in done.stderr


def test_td_without_firmware_on_a_host_without_domain_capabilities_names_firmware(
    tmp_path: Path, inputs: dict[str, Any],
) -> None:
    del inputs["firmware"]
    done = render(tmp_path, inputs)
    assert done.returncode == 1
    assert "render: firmware: is required" in done.stderr


@pytest.mark.parametrize(
    ("change", "field"),
    [({"vcpus": 0}, "vcpus"), ({"name": "a/b"}, "name"), ({"debug": "yes"}, "debug"),
     ({"mr_config_id": "00" * 47}, "mr_config_id"), ({"tdx_policy": 1 << 28}, "tdx_policy")],
)
def test_bad_inputs_exit_1_naming_the_property_and_print_no_xml(
    tmp_path: Path, inputs: dict[str, Any], change: dict[str, Any], field: str,
) -> None:
    done = render(tmp_path, {**inputs, **change})
    assert done.returncode == 1
    assert f"tdxctl: render: {field}: " in done.stderr
    assert done.stdout == ""


def test_unknown_input_is_named(tmp_path: Path, inputs: dict[str, Any]) -> None:
    done = render(tmp_path, {**inputs, "memory": 512})
    assert done.returncode == 1
    assert "memory: is not a TrustDomain input" in done.stderr


def test_inputs_that_are_not_json_are_refused(tmp_path: Path) -> None:
    done = render(tmp_path, "{not json")
    assert done.returncode == 1
    assert "is not JSON" in done.stderr


def test_render_for_the_fixture_host_checks_and_renders_its_gpus(
    tmp_path: Path, inputs: dict[str, Any],
) -> None:
    fixture = Path(__file__).parents[1] / "fixtures/testhost.xml"
    done = render(tmp_path, {**inputs, "uri": f"test://{fixture}", "gpus": ["3b:00.0"]})
    assert done.returncode == 0, done.stderr
    addresses = xml.validate(done.stdout).findall("devices/hostdev/source/address")
    assert [(a.get("bus"), a.get("slot")) for a in addresses] == [("0x3b", "0x00")]
    absent = render(tmp_path, {**inputs, "uri": f"test://{fixture}", "gpus": ["0000:99:00.0"]})
    assert absent.returncode == 1
    assert "render: gpus" in absent.stderr

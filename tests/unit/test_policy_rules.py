"""The policy pack's rules, one resource at a time, through pulumi-policy's analyzer service
(tests/support/policy.py). The e2e tier (tests/e2e/test_policy.py) runs the same pack in the
real CLI; this tier covers what no host here can preview (a trust domain that passes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.policy import DYNAMIC, NATIVE, UNKNOWN, Diagnostic, analyze

MRTD_A = "ab" * 48
MRTD_B = "cd" * 48
# A trust domain as the dynamic provider's check hands it to a policy.
GOOD_TD: dict[str, Any] = {
    "name": "web-1", "tdx": True, "debug": False, "sept_ve_disable": True, "gpus": [],
    "firmware": "/usr/share/ovmf/OVMF.inteltdx.ms.fd", "mrtd": MRTD_A, "overlay": UNKNOWN,
    "uri": "qemu:///system", "domain_type": "kvm", "memory_mib": 4096.0, "vcpus": 4.0,
}


def td(**changes: Any) -> dict[str, Any]:
    return {**GOOD_TD, **changes}


def native(props: dict[str, Any]) -> dict[str, Any]:
    from tdx_policy.resources import camel

    return {camel(key): value for key, value in props.items()}


def only(diags: list[Diagnostic], policy: str) -> Diagnostic:
    assert [d.policy for d in diags] == [policy], diags
    return diags[0]


def test_a_compliant_trust_domain_passes_every_rule() -> None:
    assert analyze(DYNAMIC + "TrustDomain", "web", td()) == []


@pytest.mark.parametrize("prefix", [DYNAMIC, NATIVE])
@pytest.mark.parametrize(("changes", "policy", "prop"), [
    ({"debug": True}, "td-debug-off", "debug"),
    ({"sept_ve_disable": False}, "td-sept-ve-disabled", "sept_ve_disable"),
    ({"tdx": False, "mrtd": None, "firmware": None}, "td-not-a-regular-vm", "tdx"),
    ({"gpus": ["0000:3b:00.0"]}, "td-gpus-in-cc-mode", "gpus"),
    ({"cmdline": "root=/dev/vda console=ttyS0"}, "domain-serial-console-quiet", "cmdline"),
    ({"console_log": "/var/log/td.log"}, "domain-serial-console-quiet", "console_log"),
])
def test_each_rule_names_the_resource_and_the_property(
    prefix: str, changes: dict[str, Any], policy: str, prop: str
) -> None:
    props = td(**changes)
    shown = prop
    if prefix == NATIVE:
        from tdx_policy.resources import camel

        props, shown = native(props), camel(prop)
    diag = only(analyze(prefix + "TrustDomain", "web", props), policy)
    assert "TrustDomain 'web' (domain web-1)" in diag.message
    assert f": {shown} " in diag.message
    assert diag.level == ("advisory" if policy == "domain-serial-console-quiet" else "mandatory")


def test_td_only_rules_leave_an_allowed_regular_vm_alone() -> None:
    vm = td(tdx=False, debug=True, sept_ve_disable=False, gpus=["0000:3b:00.0"], mrtd=None)
    config = {"td-not-a-regular-vm": {"allowed_regular_vms": ["web-*"]},
              "td-expected-mrtd": {"pinned_mrtd": {"web": MRTD_A}}}
    assert analyze(DYNAMIC + "TrustDomain", "web", vm, config) == []


def test_regular_vms_are_allowed_by_resource_or_domain_name_patterns() -> None:
    vm = td(tdx=False, mrtd=None)
    for allowed in (["web"], ["web-1"], ["w*"]):
        config = {"td-not-a-regular-vm": {"allowed_regular_vms": allowed}}
        assert analyze(DYNAMIC + "TrustDomain", "web", vm, config) == [], allowed
    config = {"td-not-a-regular-vm": {"allowed_regular_vms": ["db-*"]}}
    only(analyze(DYNAMIC + "TrustDomain", "web", vm, config), "td-not-a-regular-vm")


def test_gpus_pass_when_listed_in_cc_mode_in_any_bdf_spelling() -> None:
    props = td(gpus=["0000:3b:00.0", "0000:86:00.0"])
    config = {"td-gpus-in-cc-mode": {"cc_mode_gpus": ["3B:00.0"]}}
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", props, config), "td-gpus-in-cc-mode")
    assert "0000:86:00.0" in diag.message and "0000:3b:00.0" not in diag.message
    config = {"td-gpus-in-cc-mode": {"cc_mode_gpus": ["3b:00.0", "0000:86:00.0"]}}
    assert analyze(DYNAMIC + "TrustDomain", "web", props, config) == []


def test_gpus_pass_with_a_setup_command_the_site_trusts_and_only_then() -> None:
    props = td(gpus=["0000:3b:00.0"], gpu_setup_command=["/usr/local/sbin/gpu-cc-on", "-v"])
    config = {"td-gpus-in-cc-mode": {"cc_setup_commands": ["/usr/local/sbin/gpu-cc-on"]}}
    assert analyze(DYNAMIC + "TrustDomain", "web", props, config) == []
    other = td(gpus=["0000:3b:00.0"], gpu_setup_command=["/bin/true"])
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", other, config), "td-gpus-in-cc-mode")
    assert "'/bin/true' is not one of the rule's cc_setup_commands" in diag.message


def test_mrtd_drift_names_the_pin_and_both_values() -> None:
    for config in ({"pinned_mrtd": {"web": MRTD_B}}, {"pinned_mrtd": {"web-1": "0x" + MRTD_B}},
                   {"pinned_mrtd_by_firmware": {GOOD_TD["firmware"]: MRTD_B.upper()}}):
        diag = only(analyze(DYNAMIC + "TrustDomain", "web", td(), {"td-expected-mrtd": config}),
                    "td-expected-mrtd")
        assert f"is {MRTD_B}, this preview computes {MRTD_A}" in diag.message
        assert "mrtd drifted" in diag.message and GOOD_TD["firmware"] in diag.message
    matching = {"td-expected-mrtd": {"pinned_mrtd": {"web": MRTD_A.upper()},
                                     "pinned_mrtd_by_firmware": {GOOD_TD["firmware"]: MRTD_A}}}
    assert analyze(DYNAMIC + "TrustDomain", "web", td(), matching) == []


def test_a_pin_that_cannot_be_checked_fails_closed() -> None:
    config = {"td-expected-mrtd": {"pinned_mrtd": {"web": MRTD_A}}}
    remote = td(mrtd=None, uri="qemu+ssh://host/system")
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", remote, config), "td-expected-mrtd")
    assert "cannot be computed" in diag.message and "pinned_mrtd['web']" in diag.message


def test_an_unknown_mrtd_is_checked_at_up_not_passed_at_preview() -> None:
    config = {"td-expected-mrtd": {"pinned_mrtd": {"web": MRTD_A}}}
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", td(mrtd=UNKNOWN), config),
                "td-expected-mrtd")
    assert diag.level == "advisory" and "can't be known during preview" in diag.message


def test_firmware_outside_the_allowed_list_fails() -> None:
    config = {"td-expected-mrtd": {"allowed_firmware": ["/usr/share/ovmf/OVMF.fd"]}}
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", td(), config), "td-expected-mrtd")
    assert f"firmware '{GOOD_TD['firmware']}' is not one of the rule's allowed_firmware" \
        in diag.message
    config = {"td-expected-mrtd": {"allowed_firmware": [GOOD_TD["firmware"]]}}
    assert analyze(DYNAMIC + "TrustDomain", "web", td(), config) == []


def test_a_template_with_vnc_or_a_network_console_fails(tmp_path: Path) -> None:
    clean = tmp_path / "clean.xml.j2"
    clean.write_text("<domain>{% include '_common_devices.xml.j2' %}</domain>")
    assert analyze(DYNAMIC + "TrustDomain", "web", td(template=str(clean))) == []
    (tmp_path / "_extra.xml.j2").write_text("<serial type='tcp'><source mode='bind'/></serial>")
    vnc = tmp_path / "vnc.xml.j2"
    vnc.write_text("<domain><devices>{% include '_extra.xml.j2' %}\n"
                   "<graphics type='vnc' listen='0.0.0.0'/></devices></domain>")
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", td(template=str(vnc))),
                "domain-no-remote-console")
    assert "template" in diag.message and "<graphics type='vnc'" in diag.message
    assert "<serial type='tcp'>" in diag.message and diag.level == "mandatory"


def test_an_unreadable_template_fails_rather_than_passes(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.xml.j2")
    diag = only(analyze(DYNAMIC + "TrustDomain", "web", td(template=missing)),
                "domain-no-remote-console")
    assert "cannot be read" in diag.message


@pytest.mark.parametrize("prefix", [DYNAMIC, NATIVE])
def test_a_base_image_without_sha256_fails(prefix: str) -> None:
    image = {"name": "base", "pool": "tdx", "source": "/srv/td.qcow2"}
    diag = only(analyze(prefix + "BaseImage", "base", image), "base-image-checksum")
    assert "BaseImage 'base'" in diag.message and "sha256 is not set" in diag.message
    assert "/srv/td.qcow2" in diag.message
    assert analyze(prefix + "BaseImage", "base", {**image, "sha256": "9f" * 32}) == []


def test_pools_outside_the_allowed_list_fail_and_others_pass() -> None:
    config = {"storage-in-allowed-pools": {"allowed_pools": ["tdx"]}}
    diag = only(analyze(DYNAMIC + "Pool", "pool", {"name": "scratch", "path": "/tmp/p"}, config),
                "storage-in-allowed-pools")
    assert "Pool 'pool' (pool scratch): name 'scratch'" in diag.message
    overlay = {"name": "disk", "pool": "scratch", "base_image": UNKNOWN}
    only(analyze(DYNAMIC + "Overlay", "disk", overlay, config), "storage-in-allowed-pools")
    assert analyze(DYNAMIC + "Overlay", "disk", {**overlay, "pool": "tdx"}, config) == []
    seed = {"name": "seed", "pool": "scratch", "hostname": "web-1"}
    only(analyze(DYNAMIC + "CloudInitSeed", "seed", seed, config), "storage-in-allowed-pools")
    assert analyze(DYNAMIC + "CloudInitSeed", "seed", {**seed, "pool": "tdx"}, config) == []
    assert analyze(DYNAMIC + "Pool", "pool", {"name": "scratch"}) == []  # no list: any pool


def test_other_types_are_not_read() -> None:
    assert analyze("pulumi:pulumi:Stack", "stack", {}) == []
    assert analyze("pulumi-python:dynamic:Resource", "x", {"debug": True}) == []
    assert analyze("aws:ec2/instance:Instance", "td", {"debug": True, "tdx": True}) == []

"""TrustDomain attestation inputs: debug, sept_ve_disable, tdx_policy and the MR* values —
their checks (each failure names its field), the policy they render, and the diff rules."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tdx_provider.checking import Checker
from tdx_provider.dynamic.trust_domain import TrustDomainProvider
from tdx_provider.errors import InputError
from tdx_provider.guest import inputs as checks
from tdx_provider.guest import xml
from tdx_provider.guest.domain_spec import spec_from
from tdx_provider.resources.trust_domain_checks import check_across_fields
from tdx_provider.specs import TRUST_DOMAIN

DIGEST = bytes(range(48))
DIGEST_HEX = DIGEST.hex()
DIGEST_B64 = base64.b64encode(DIGEST).decode()
MEASUREMENTS = ("mr_config_id", "mr_owner", "mr_owner_config")


def failures(**inputs: Any) -> dict[str, str]:
    checker = Checker({"tdx": True, "debug": False, "sept_ve_disable": True, **inputs})
    for key in ("debug", "sept_ve_disable", "tdx_policy", *MEASUREMENTS):
        checker.field(key, TRUST_DOMAIN.field(key).validate, optional=True)  # type: ignore[arg-type]
    check_across_fields(checker)
    return {failure.property: failure.reason for failure in checker.failures}


# --- MR* values ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", MEASUREMENTS)
@pytest.mark.parametrize("given", [DIGEST_HEX, DIGEST_HEX.upper(), DIGEST_B64])
def test_measurement_hex_or_base64_is_rendered_as_base64_of_48_bytes(field: str, given: str
                                                                      ) -> None:
    assert checks.measurement(field, given) == DIGEST_B64


def test_96_character_base64_is_72_bytes_and_refused() -> None:
    # 96 characters that are not all hex are base64 of 72 bytes: libvirt says "expected 48 got
    # 72"; we say it at preview, naming the field
    with pytest.raises(InputError, match=r"mr_owner: .*got 72 bytes"):
        checks.measurement("mr_owner", base64.b64encode(bytes(range(72))).decode())


@pytest.mark.parametrize("field", MEASUREMENTS)
@pytest.mark.parametrize("given", ["not base64!", DIGEST_HEX[:-2], base64.b64encode(b"x" * 32)
                                   .decode(), 42])
def test_bad_measurements_fail_naming_the_field(field: str, given: object) -> None:
    found = failures(**{field: given})
    assert list(found) == [field]
    assert found[field].startswith(f"{field}: ")


# --- policy bits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "policy"),
    [({}, 0x10000000), ({"debug": True}, 0x10000001), ({"sept_ve_disable": False}, 0),
     ({"tdx_policy": "0x40000000"}, 0x50000000), ({"tdx_policy": 0x40000000}, 0x50000000),
     ({"debug": True, "sept_ve_disable": False, "tdx_policy": "0x8000000000000000"},
      0x8000000000000001)],
)
def test_effective_policy_is_the_named_flags_plus_the_raw_bits(inputs: dict[str, Any],
                                                              policy: int) -> None:
    assert checks.effective_policy(inputs) == policy


def test_default_policy_is_sept_ve_disable_without_debug() -> None:
    assert checks.effective_policy({}) == xml.DEFAULT_TDX_POLICY == 1 << 28


@pytest.mark.parametrize("given", [0x40000000, "0x40000000", "1073741824"])
def test_raw_policy_is_normalised_to_hex(given: object) -> None:
    assert checks.raw_policy("tdx_policy", given) == "0x40000000"


@pytest.mark.parametrize(("bit", "owner"), [(0, "debug"), (28, "sept_ve_disable")])
def test_raw_policy_setting_a_named_bit_fails_naming_both_fields(bit: int, owner: str) -> None:
    found = failures(tdx_policy=1 << bit)
    assert list(found) == ["tdx_policy"]
    assert f"bit {bit}" in found["tdx_policy"] and owner in found["tdx_policy"]


@pytest.mark.parametrize("given", [-1, 1 << 64, "0xfoo", True, 1.5])
def test_raw_policy_out_of_range_or_not_a_number_fails(given: object) -> None:
    assert list(failures(tdx_policy=given)) == ["tdx_policy"]


@pytest.mark.parametrize("field", ["debug", "sept_ve_disable"])
def test_policy_flags_must_be_booleans(field: str) -> None:
    assert list(failures(**{field: "yes"})) == [field]


@pytest.mark.parametrize(("field", "value"), [("debug", True), ("tdx_policy", 0x40000000),
                                              ("mr_owner", DIGEST_B64)])
def test_attestation_inputs_on_a_regular_vm_fail_naming_the_field(field: str, value: object
                                                                  ) -> None:
    found = failures(tdx=False, **{field: value})
    assert list(found) == [field]
    assert "tdx is false" in found[field]


# --- rendering -------------------------------------------------------------------------------


def checked_props(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": "td-1", "owner": {"project": "p", "stack": "s", "resource": "r"},
        "memory_mib": 1024, "vcpus": 1, "tdx": True, "domain_type": "kvm",
        "firmware": "/fw.fd", "gpus": [], "ssh_host_port": 0, "ssh_bind_address": "127.0.0.1",
        "vsock": True, "shutdown_timeout": 60, "debug": False, "sept_ve_disable": True,
    }
    props.update(overrides)
    return props


def test_debug_and_measurements_reach_launch_security() -> None:
    props = checked_props(debug=True, mr_config_id=DIGEST_B64, mr_owner=DIGEST_B64,
                          mr_owner_config=DIGEST_B64)
    root = xml.validate(xml.render(spec_from(props, "/d.qcow2")))
    launch = root.find("launchSecurity")
    assert launch is not None
    assert launch.findtext("policy") == "0x10000001"
    for tag in xml.MEASUREMENT_ELEMENTS:
        assert launch.findtext(tag) == DIGEST_B64


def test_no_measurement_elements_when_none_given() -> None:
    root = xml.parse(xml.render(spec_from(checked_props(), "/d.qcow2")))
    assert [child.tag for child in root.find("launchSecurity")] == ["policy"]


@pytest.mark.parametrize("text", ["AAAA", "not base64!"])
def test_structural_check_refuses_measurements_libvirt_would_refuse(text: str) -> None:
    from tdx_provider.readers.domain import LaunchSecurity

    element = LaunchSecurity.parse(f"<launchSecurity type='tdx'><policy>0x0</policy>"
                                   f"<mrOwner>{text}</mrOwner></launchSecurity>")
    with pytest.raises(InputError, match="mrOwner"):
        xml.check_launch_security(element)


# --- diff ------------------------------------------------------------------------------------


def outputs(**overrides: Any) -> dict[str, Any]:
    outs = {**checked_props(), "uri": "qemu:///system", "auto_named": True, "overlay": "/d",
            "state": "running", **overrides}
    return outs


def test_state_from_before_the_attestation_inputs_shows_no_changes() -> None:
    old = {k: v for k, v in outputs().items() if k not in ("debug", "sept_ve_disable")}
    assert TrustDomainProvider().diff("id", old, outputs()).changes is False


@pytest.mark.parametrize(
    ("field", "value"),
    [("debug", True), ("sept_ve_disable", False), ("tdx_policy", "0x40000000"),
     ("mr_config_id", DIGEST_B64), ("mr_owner", DIGEST_B64), ("mr_owner_config", DIGEST_B64)],
)
def test_each_attestation_input_replaces_the_domain_and_is_named(field: str, value: object
                                                                  ) -> None:
    result = TrustDomainProvider().diff("id", outputs(), outputs(**{field: value}))
    assert result.changes is True
    assert result.replaces == [field]


def test_removing_a_measurement_replaces_the_domain() -> None:
    result = TrustDomainProvider().diff("id", outputs(mr_owner=DIGEST_B64), outputs())
    assert result.replaces == ["mr_owner"]

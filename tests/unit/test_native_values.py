"""The native adapter's translation of property values: camelCase <-> snake_case by the spec's
types (nested objects too, a user's ``any`` dict untouched), whole numbers, unknowns, secrets,
and the owner tag from the URN."""

from __future__ import annotations

from pulumi.provider.experimental.property_value import Computed, PropertyValue
from pulumi.runtime.rpc import UNKNOWN as WIRE_UNKNOWN

from tdx_provider.checking import UNKNOWN
from tdx_provider.native.provider import _type_name, owner_from_urn
from tdx_provider.native.values import from_plain, to_plain
from tdx_provider.specs import CLOUD_INIT_SEED, TRUST_DOMAIN


def pv(value: object, secret: bool = False) -> PropertyValue:
    """A wire value from plain Python (numbers as the wire's doubles)."""
    if isinstance(value, dict):
        return PropertyValue({k: pv(v) for k, v in value.items()}, is_secret=secret)
    if isinstance(value, list):
        return PropertyValue([pv(v) for v in value], is_secret=secret)
    if isinstance(value, int) and not isinstance(value, bool):
        return PropertyValue(float(value), is_secret=secret)
    return PropertyValue(value, is_secret=secret)  # type: ignore[arg-type]


def test_names_numbers_and_nested_objects_reach_the_engine_in_snake_case():
    wire = {"memoryMib": pv(256), "qgs": pv({"vsockCid": 2, "vsockPort": 4050}),
            "seed": pv({"path": "/p/seed", "instanceId": "iid-1"}), "gpus": pv(["0000:17:00.0"])}
    plain = to_plain(wire, TRUST_DOMAIN).values
    assert plain == {"memory_mib": 256, "qgs": {"vsock_cid": 2, "vsock_port": 4050},
                     "seed": {"path": "/p/seed", "instance_id": "iid-1"},
                     "gpus": ["0000:17:00.0"]}
    assert type(plain["memory_mib"]) is int
    assert from_plain(plain, TRUST_DOMAIN) == wire


def test_a_users_any_value_keeps_its_keys():
    config = {"version": 2, "ethernets": {"eth0": {"dhcp4": True, "set_name": "x"}}}
    plain = to_plain({"networkConfig": pv(config)}, CLOUD_INIT_SEED).values
    assert plain == {"network_config": config}
    assert from_plain(plain, CLOUD_INIT_SEED) == {"networkConfig": pv(config)}


def test_users_are_seed_user_objects_with_camel_case_fields():
    wire = {"users": pv([{"name": "ops", "sshAuthorizedKeys": ["k"], "sudo": True}])}
    plain = to_plain(wire, CLOUD_INIT_SEED).values
    assert plain == {"users": [{"name": "ops", "ssh_authorized_keys": ["k"], "sudo": True}]}


def test_unknowns_both_ways():
    plain = to_plain({"overlay": PropertyValue(WIRE_UNKNOWN), "cid": PropertyValue(Computed()),
                      "gpus": pv([WIRE_UNKNOWN])}, TRUST_DOMAIN).values
    assert plain == {"overlay": UNKNOWN, "cid": UNKNOWN, "gpus": [UNKNOWN]}
    wire = from_plain({"overlay": UNKNOWN}, TRUST_DOMAIN)
    assert wire == {"overlay": PropertyValue(WIRE_UNKNOWN)}


def test_secrets_are_marked_by_spec_and_by_what_came_in_secret():
    incoming = to_plain({"userData": pv("#cloud-config", secret=True),
                         "hostname": pv("td-1", secret=True)}, CLOUD_INIT_SEED)
    assert incoming.values == {"user_data": "#cloud-config", "hostname": "td-1"}
    assert incoming.secret == {"user_data", "hostname"}
    out = from_plain({**incoming.values, "path": "/p/s"}, CLOUD_INIT_SEED, incoming.secret)
    assert out["userData"].is_secret and out["hostname"].is_secret
    assert not out["path"].is_secret
    # the spec's secrets are secret even when they arrived plain
    assert from_plain({"user_data": "x"}, CLOUD_INIT_SEED)["userData"].is_secret


def test_owner_and_type_come_from_the_urn():
    urn = "urn:pulumi:dev::proj::tdx:index:TrustDomain::td-a"
    assert owner_from_urn(urn) == {"project": "proj", "stack": "dev", "resource": "td-a"}
    assert _type_name(urn) == "TrustDomain"
    child = "urn:pulumi:dev::proj::my:Component$tdx:index:Pool::pool"
    assert _type_name(child) == "Pool"


def test_internal_inputs_travel_under_names_pulumi_never_displays():
    """The engine's bookkeeping (owner tag, auto-name flag, the base's size known at preview)
    must reach create and stay in state, but is no property of the schema: on the wire it is
    ``__<camelCase>``, which Pulumi keeps and hides from previews and diffs (as bridged
    providers' ``__defaults``). ``mrtd`` is internal too but a schema output: shown."""
    from tdx_provider.specs import OVERLAY

    plain = {"pool": "p", "owner": {"project": "x"}, "auto_named": True, "base_capacity": 5}
    wire = from_plain(plain, OVERLAY)
    assert set(wire) == {"pool", "__owner", "__autoNamed", "__baseCapacity"}
    assert to_plain(wire, OVERLAY).values == plain
    assert "mrtd" in from_plain({"mrtd": "ab"}, TRUST_DOMAIN)

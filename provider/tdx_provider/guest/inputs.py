"""TrustDomain input values: each validator takes the property name first (so its error names
it) and returns the normalised value; plus the TD attributes they add up to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdx_provider import validation
from tdx_provider.errors import InputError

MEASUREMENTS = ("mr_config_id", "mr_owner", "mr_owner_config")
MEASUREMENT_BYTES = 48  # SHA-384
MAX_POLICY = (1 << 64) - 1
NAMED_POLICY_BITS = {0: "debug", 28: "sept_ve_disable"}
DOMAIN_TYPES = ("kvm", "qemu")
MAX_SHUTDOWN_TIMEOUT = 3600


def network(field: str, value: Any) -> str | None:
    """A libvirt network name, or "" for none (Pulumi drops None values on the wire, where an
    omitted network means the default one)."""
    return None if value == "" else validation.name(field, value)


def existing_file(field: str, value: Any) -> str:
    return validation.absolute_path(field, value, must_exist=True)


def text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(field, f"must be a string (got {type(value).__name__})")
    if "\x00" in value:
        raise InputError(field, "must not contain NUL characters")
    return value


def domain_type(field: str, value: Any) -> str:
    if value not in DOMAIN_TYPES:
        raise InputError(field, f"must be one of {', '.join(DOMAIN_TYPES)} (got {value!r})")
    return value


def bdfs(field: str, value: Any) -> list[str]:
    return [str(a) for a in validation.pci_addresses(field, value)]


def console_log(field: str, value: Any) -> str:
    path = validation.absolute_path(field, value, must_exist=False)
    if not Path(path).parent.is_dir():
        raise InputError(field, f"directory {str(Path(path).parent)!r} does not exist")
    return path


def cid(field: str, value: Any) -> int:
    # CIDs 0-2 are reserved (hypervisor, local, host).
    return validation.integer(field, value, minimum=3, maximum=0xFFFFFFFE)


def qgs(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(field, "must be {'path': ...} or {'vsock_cid': ..., 'vsock_port': ...}")
    keys = {k for k, v in value.items() if v is not None}
    if keys == {"path"}:
        return {"path": validation.absolute_path(f"{field}.path", value["path"], must_exist=False)}
    if keys == {"vsock_cid", "vsock_port"}:
        return {
            "vsock_cid": validation.integer(f"{field}.vsock_cid", value["vsock_cid"], minimum=0),
            "vsock_port": validation.integer(f"{field}.vsock_port", value["vsock_port"],
                                             minimum=1, maximum=0xFFFFFFFF),
        }
    raise InputError(
        field, f"has keys {sorted(keys)}; use either 'path' or both 'vsock_cid' and 'vsock_port'"
    )


def seed_disk(field: str, value: Any) -> dict[str, Any]:
    """The cloud-init seed volume: its path, or ``{'path': ..., 'instance_id': ...}`` (what the
    SDK passes for a ``CloudInitSeed``: the instance-id makes a new seed visible in the diff)."""
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict) or not set(value) <= {"path", "instance_id"}:
        raise InputError(field, "must be the seed volume's path or a CloudInitSeed")
    seed = {"path": validation.absolute_path(f"{field}.path", value.get("path"),
                                             must_exist=False)}
    instance_id = value.get("instance_id")
    if instance_id is not None:
        seed["instance_id"] = text(f"{field}.instance_id", instance_id)
    return seed


def page_add_order(field: str, value: Any) -> str:
    from tdx_provider.host.measure import PAGE_ORDERS

    if value not in PAGE_ORDERS:
        raise InputError(field, f"must be one of {', '.join(PAGE_ORDERS)} (got {value!r})")
    return str(value)


def raw_policy(field: str, value: Any) -> str:
    """Extra TD attribute bits: an integer, or a string (``"0x40000000"``) for bits above 2**53,
    which Pulumi's numbers (doubles) cannot carry. Normalised to a hex string."""
    if isinstance(value, str):
        try:
            number = int(value.strip(), 0)
        except ValueError as exc:
            raise InputError(field, f"{value!r} is not a number (e.g. 0x40000000)") from exc
    else:
        number = validation.integer(field, value, minimum=0)
    if not 0 <= number <= MAX_POLICY:
        raise InputError(field, f"must fit in 64 bits (got {value!r})")
    for bit, owner in NAMED_POLICY_BITS.items():
        if number & (1 << bit):
            raise InputError(field, f"sets bit {bit}, which the input {owner!r} controls: clear "
                             f"it in tdx_policy and set {owner} instead")
    return f"{number:#x}"


def measurement(field: str, value: Any) -> str:
    """48 bytes given as 96 hex digits or as base64; rendered as base64 (what libvirt parses:
    hex there is refused with "expected 48 got 72")."""
    import base64
    import binascii
    import re

    if not isinstance(value, str):
        raise InputError(field, f"must be a string (got {type(value).__name__})")
    text = value.strip()
    if re.fullmatch(r"[0-9a-fA-F]{96}", text):
        return base64.b64encode(bytes.fromhex(text)).decode()
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(field, f"must be {MEASUREMENT_BYTES} bytes (a SHA-384 digest) as 96 "
                         "hex digits or base64; it is neither") from exc
    if len(data) != MEASUREMENT_BYTES:
        raise InputError(field, f"must be {MEASUREMENT_BYTES} bytes (a SHA-384 digest) as 96 hex "
                         f"digits or base64; got {len(data)} bytes")
    return base64.b64encode(data).decode()


def bind_address(field: str, value: Any) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise InputError(field, f"{value!r} is not an IP address") from exc


def effective_policy(inputs: dict[str, Any]) -> int:
    """The TD attributes (libvirt ``<policy>``) for checked inputs."""
    from tdx_provider.guest import xml

    raw = inputs.get("tdx_policy")
    policy = int(raw, 0) if isinstance(raw, str) else int(raw or 0)
    if inputs.get("debug", False):
        policy |= xml.POLICY_DEBUG
    if inputs.get("sept_ve_disable", True):
        policy |= xml.POLICY_SEPT_VE_DISABLE
    return policy

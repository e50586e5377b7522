"""Preview-time checks of TrustDomain inputs: each failure names its property."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdx_provider import validation
from tdx_provider.errors import InputError

from ._common import Checker, is_unknown

DEFAULTS: dict[str, Any] = {
    "uri": "qemu:///system",
    "tdx": True,
    "gpus": [],
    "dma_entry_limit": 0x200000,
    "ssh_host_port": 0,
    "ssh_bind_address": "127.0.0.1",
    "vsock": True,
    "domain_type": "kvm",
    "shutdown_timeout": 60,
    "autostart": False,
    "debug": False,
    "sept_ve_disable": True,
}
# Launch-time measurement inputs (TD attributes and the MR* values). A state written before they
# existed was rendered with these values, so a missing old output means "this default".
ATTESTATION_DEFAULTS: dict[str, Any] = {
    "debug": False, "sept_ve_disable": True, "tdx_policy": None,
    "mr_config_id": None, "mr_owner": None, "mr_owner_config": None,
}
MEASUREMENTS = ("mr_config_id", "mr_owner", "mr_owner_config")
MEASUREMENT_BYTES = 48  # SHA-384
MAX_POLICY = (1 << 64) - 1
NAMED_POLICY_BITS = {0: "debug", 28: "sept_ve_disable"}
DOMAIN_TYPES = ("kvm", "qemu")
MAX_SHUTDOWN_TIMEOUT = 3600


def _file(field: str, value: Any) -> str:
    return validation.absolute_path(field, value, must_exist=True)


def _optional_text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(field, f"must be a string (got {type(value).__name__})")
    if "\x00" in value:
        raise InputError(field, "must not contain NUL characters")
    return value


def _domain_type(field: str, value: Any) -> str:
    if value not in DOMAIN_TYPES:
        raise InputError(field, f"must be one of {', '.join(DOMAIN_TYPES)} (got {value!r})")
    return value


def _bdfs(field: str, value: Any) -> list[str]:
    return [str(a) for a in validation.pci_addresses(field, value)]


def _console_log(field: str, value: Any) -> str:
    path = validation.absolute_path(field, value, must_exist=False)
    if not Path(path).parent.is_dir():
        raise InputError(field, f"directory {str(Path(path).parent)!r} does not exist")
    return path


def _cid(field: str, value: Any) -> int:
    # CIDs 0-2 are reserved (hypervisor, local, host).
    return validation.integer(field, value, minimum=3, maximum=0xFFFFFFFE)


def _qgs(field: str, value: Any) -> dict[str, Any]:
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


def _seed(field: str, value: Any) -> dict[str, Any]:
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
        seed["instance_id"] = _optional_text(f"{field}.instance_id", instance_id)
    return seed


def _page_add_order(field: str, value: Any) -> str:
    from tdx_provider.host.measure import PAGE_ORDERS

    if value not in PAGE_ORDERS:
        raise InputError(field, f"must be one of {', '.join(PAGE_ORDERS)} (got {value!r})")
    return str(value)


def _raw_policy(field: str, value: Any) -> str:
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


def _measurement(field: str, value: Any) -> str:
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


def check_attestation(checker: Checker) -> None:
    """The TD attributes and MR* inputs: launch-time measurements, each named on failure."""
    checker.field("debug", validation.boolean)
    checker.field("sept_ve_disable", validation.boolean)
    checker.field("tdx_policy", _raw_policy, optional=True)
    for key in MEASUREMENTS:
        checker.field(key, _measurement, optional=True)
    inputs = checker.inputs
    if inputs.get("tdx") is False:
        for key in ("tdx_policy", *MEASUREMENTS):
            if inputs.get(key) is not None:
                checker.fail(key, "applies to trust domains only (tdx is false)")
        if inputs.get("debug") is True:
            checker.fail("debug", "applies to trust domains only (tdx is false)")


def check_fields(checker: Checker) -> None:
    """Checks that need nothing but the values."""
    local = _is_local(checker.inputs.get("uri"))
    file_check = _file if local else (lambda f, v: validation.absolute_path(f, v, must_exist=False))
    checker.field("uri", validation.uri)
    checker.field("name", validation.name)
    checker.field("overlay", lambda f, v: validation.absolute_path(f, v, must_exist=False))
    checker.field("memory_mib", lambda f, v: validation.integer(f, v, minimum=64))
    checker.field("vcpus", lambda f, v: validation.integer(f, v, minimum=1, maximum=4096))
    checker.field("tdx", validation.boolean)
    checker.field("domain_type", _domain_type)
    checker.field("firmware", file_check, optional=True)
    checker.field("kernel", file_check, optional=True)
    checker.field("initrd", file_check, optional=True)
    checker.field("cmdline", _optional_text, optional=True)
    checker.field("gpus", _bdfs)
    checker.field("gpu_setup_command", validation.argv, optional=True)
    checker.field("dma_entry_limit", lambda f, v: validation.integer(f, v, minimum=0))
    checker.field("ssh_host_port", validation.port)
    checker.field("ssh_bind_address", _bind_address)
    checker.field("network", validation.name, optional=True)
    checker.field("vsock", validation.boolean)
    checker.field("cid", _cid, optional=True)
    checker.field("qgs", _qgs, optional=True)
    checker.field("template", _file, optional=True)
    checker.field("console_log", _console_log if local else _optional_text, optional=True)
    checker.field("shutdown_timeout",
                  lambda f, v: validation.integer(f, v, minimum=0, maximum=MAX_SHUTDOWN_TIMEOUT))
    checker.field("autostart", validation.boolean)
    checker.field("page_add_order", _page_add_order, optional=True)
    checker.field("seed", _seed, optional=True)


    check_attestation(checker)
    inputs = checker.inputs
    if inputs.get("tdx") is True and inputs.get("domain_type") == "qemu":
        checker.fail("domain_type", "a trust domain needs 'kvm'; TCG ('qemu') cannot run TDX")
    if inputs.get("kernel") is None and (inputs.get("initrd") or inputs.get("cmdline")):
        checker.fail("kernel", "is required when initrd or cmdline is given")
    if inputs.get("cid") is not None and inputs.get("vsock") is False:
        checker.fail("cid", "is set but vsock is false")


def _bind_address(field: str, value: Any) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise InputError(field, f"{value!r} is not an IP address") from exc


def _is_local(uri: Any) -> bool:
    """Files named in inputs are checked here only for this machine's own libvirtd; another
    host's files are not ours to read (libvirt reports a missing one when it starts the guest)."""
    from tdx_provider.connection import is_local_uri

    return isinstance(uri, str) and not is_unknown(uri) and is_local_uri(uri)


def check_against_host(checker: Checker, root: Path, *, readiness: bool = True) -> list[str]:
    """Checks that ask libvirt: capacity, TDX readiness, the QGS form, the default firmware,
    GPUs, the network. With ``readiness=False`` (``tdxctl render``) the reasons this host cannot
    run a TD are returned instead of failing ``tdx``."""
    if not checker.known("uri"):
        expected_mrtd(checker, None)
        return []
    inputs = checker.inputs
    from tdx_provider.connection import connect

    inputs["mrtd"] = None
    try:
        with connect(inputs["uri"]) as conn:
            return _check_host(checker, conn, root, readiness)
    except Exception as exc:  # an unreachable host fails the uri property
        checker.fail("uri", str(exc))
        return []


def _check_tdx_target(checker: Checker, conn: Any) -> None:
    """The QGS dialect this libvirt parses, and the TDX firmware when none is given."""
    from tdx_provider.errors import LibvirtOperationError
    from tdx_provider.host import checks as host

    inputs = checker.inputs
    if checker.known("qgs") and inputs.get("qgs"):
        checker.run("qgs", lambda: host.check_qgs_dialect(inputs["qgs"], conn.getLibVersion()))
    if inputs.get("firmware") is not None or not checker.known("firmware"):
        return
    try:
        caps = host.read_domain_capabilities(conn)
    except LibvirtOperationError as exc:
        checker.fail("firmware", f"is required for a trust domain here: {exc}, so no TDX "
                     "firmware can be picked (give the TDVF/OVMF loader path)")
        return
    firmware = caps.tdx_firmware()
    if firmware is None:
        offered = ", ".join(caps.loaders) or "none"
        checker.fail("firmware", f"is required: libvirt at {inputs['uri']} offers no TDX "
                     f"firmware among its loaders ({offered}); give the TDVF/OVMF loader path")
        return
    inputs["firmware"] = firmware


def _check_host(checker: Checker, conn: Any, root: Path, readiness: bool = True) -> list[str]:
    import libvirt

    from tdx_provider.host import gpu

    inputs = checker.inputs
    _model, memory_mib, cpus, *_ = conn.getInfo()
    if checker.known("memory_mib") and inputs["memory_mib"] > memory_mib:
        checker.fail("memory_mib", f"{inputs['memory_mib']} MiB is more than the host's "
                     f"{memory_mib} MiB")
    if checker.known("vcpus") and inputs["vcpus"] > cpus:
        checker.fail("vcpus", f"{inputs['vcpus']} is more than the host's {cpus} CPUs")
    warnings: list[str] = []
    if checker.known("tdx") and inputs["tdx"] is True:
        _check_tdx_target(checker, conn)
        if readiness:
            checker.run("tdx", lambda: _require_tdx(conn, root, inputs["uri"]))
        else:
            try:
                _require_tdx(conn, root, inputs["uri"])
            except InputError as exc:
                warnings.append(str(exc))
    if checker.known("gpus") and inputs["gpus"]:
        addresses = validation.pci_addresses("gpus", inputs["gpus"])
        checker.run("gpus", lambda: gpu.lookup_pci_devices(conn, addresses, "gpus"))
    if checker.known("network") and inputs.get("network"):
        try:
            network = conn.networkLookupByName(inputs["network"])
        except libvirt.libvirtError:
            checker.fail("network", f"libvirt network {inputs['network']!r} does not exist on "
                         f"{inputs['uri']} (define it, or set network to None)")
        else:
            if not network.isActive():
                checker.fail("network", f"libvirt network {inputs['network']!r} is not active "
                             f"(virsh net-start {inputs['network']}, or set network to None)")
    expected_mrtd(checker, conn)
    return warnings


def expected_mrtd(checker: Checker, conn: Any) -> None:
    """``mrtd``: the MRTD a trust domain built from this firmware by this host's QEMU will have
    (lowercase hex). None for regular VMs, for remote hosts (their firmware is not ours to
    read) and while the firmware is invalid; unknown while an input it needs is unknown."""
    checker.inputs["mrtd"] = _mrtd(checker, conn)


def _mrtd(checker: Checker, conn: Any) -> Any:
    from pulumi.runtime.rpc import UNKNOWN

    from tdx_provider.host import measure

    inputs = checker.inputs
    needed = ("tdx", "uri", "firmware", "page_add_order")
    if any(is_unknown(inputs.get(key)) for key in needed):
        return None if inputs.get("tdx") is False else UNKNOWN
    if (inputs.get("tdx") is not True or not _is_local(inputs.get("uri")) or conn is None
            or inputs.get("firmware") is None or not checker.known("firmware", "page_add_order")):
        return None
    try:
        return measure.expected_mrtd(conn, inputs["firmware"], inputs.get("page_add_order"))
    except measure.MeasureError as exc:
        checker.fail("firmware", f"no trust domain can be measured from it: {exc}")
        return None


def _require_tdx(conn: Any, root: Path, uri: str) -> None:
    from tdx_provider.connection import is_local_uri
    from tdx_provider.errors import HostNotReadyError
    from tdx_provider.host import checks as host

    try:
        host.require_tdx(conn, root, local=is_local_uri(uri))
    except HostNotReadyError as exc:
        raise InputError("tdx", f"{exc} (set tdx=False for a regular VM)") from exc

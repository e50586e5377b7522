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
}
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
    inputs = checker.inputs
    if inputs.get("tdx") is True:
        if inputs.get("domain_type") == "qemu":
            checker.fail("domain_type", "a trust domain needs 'kvm'; TCG ('qemu') cannot run TDX")
        if inputs.get("firmware") is None:
            checker.fail("firmware", "is required for a trust domain (the TDVF/OVMF loader path)")
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


def check_against_host(checker: Checker, root: Path) -> None:
    """Checks that ask libvirt: capacity, TDX readiness, GPUs, the network."""
    if not checker.known("uri"):
        return
    inputs = checker.inputs
    from tdx_provider.connection import connect

    try:
        with connect(inputs["uri"]) as conn:
            _check_host(checker, conn, root)
    except Exception as exc:  # an unreachable host fails the uri property
        checker.fail("uri", str(exc))


def _check_host(checker: Checker, conn: Any, root: Path) -> None:
    import libvirt

    from tdx_provider import gpu

    inputs = checker.inputs
    _model, memory_mib, cpus, *_ = conn.getInfo()
    if checker.known("memory_mib") and inputs["memory_mib"] > memory_mib:
        checker.fail("memory_mib", f"{inputs['memory_mib']} MiB is more than the host's "
                     f"{memory_mib} MiB")
    if checker.known("vcpus") and inputs["vcpus"] > cpus:
        checker.fail("vcpus", f"{inputs['vcpus']} is more than the host's {cpus} CPUs")
    if checker.known("tdx") and inputs["tdx"] is True:
        checker.run("tdx", lambda: _require_tdx(conn, root, inputs["uri"]))
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


def _require_tdx(conn: Any, root: Path, uri: str) -> None:
    from tdx_provider import host
    from tdx_provider.connection import is_local_uri
    from tdx_provider.errors import HostNotReadyError

    try:
        host.require_tdx(conn, root, local=is_local_uri(uri))
    except HostNotReadyError as exc:
        raise InputError("tdx", f"{exc} (set tdx=False for a regular VM)") from exc

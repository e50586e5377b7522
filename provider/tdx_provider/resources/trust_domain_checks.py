"""Preview-time checks of TrustDomain inputs beyond each field's own: across fields, files where
the domain runs, and against the host (capacity, TDX readiness, the QGS form, the default
firmware, GPUs, the network, the expected MRTD). Each failure names its property."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libvirt

from tdx_provider import validation
from tdx_provider.checking import UNKNOWN, Checker, is_unknown
from tdx_provider.connection import connect, is_local_uri
from tdx_provider.errors import HostNotReadyError, InputError, LibvirtOperationError
from tdx_provider.guest import inputs as td
from tdx_provider.host import checks as host
from tdx_provider.host import gpu, measure
from tdx_provider.storage import host_files

FILE_INPUTS = ("firmware", "kernel", "initrd")  # opened by QEMU where the domain runs


def is_local(uri: Any) -> bool:
    """Files named in inputs are this machine's only for its own libvirtd, and are then checked
    here. Another host's firmware, kernel and initrd are asked of its libvirt
    (:func:`check_host_files`); its console log (written, not read) is not checked. The
    template is rendered on this machine whatever the uri, so it is always read here."""
    return isinstance(uri, str) and not is_unknown(uri) and is_local_uri(uri)


def check_across_fields(checker: Checker) -> None:
    """Files on this machine when the domain runs here, and rules that tie fields together."""
    local = is_local(checker.inputs.get("uri"))
    for key in FILE_INPUTS:
        checker.field(key, td.existing_file if local else
                      (lambda f, v: validation.absolute_path(f, v, must_exist=False)),
                      optional=True)
    checker.field("console_log", td.console_log if local else td.text, optional=True)
    inputs = checker.inputs
    if inputs.get("tdx") is False:
        for key in ("tdx_policy", *td.MEASUREMENTS):
            if inputs.get(key) is not None:
                checker.fail(key, "applies to trust domains only (tdx is false)")
        if inputs.get("debug") is True:
            checker.fail("debug", "applies to trust domains only (tdx is false)")
    if inputs.get("tdx") is True and inputs.get("domain_type") == "qemu":
        checker.fail("domain_type", "a trust domain needs 'kvm'; TCG ('qemu') cannot run TDX")
    if inputs.get("kernel") is None and (inputs.get("initrd") or inputs.get("cmdline")):
        checker.fail("kernel", "is required when initrd or cmdline is given")
    if inputs.get("cid") is not None and inputs.get("vsock") is False:
        checker.fail("cid", "is set but vsock is false")


def check_against_host(checker: Checker, root: Path, *, readiness: bool = True) -> list[str]:
    """Checks that ask libvirt. With ``readiness=False`` (``tdxctl render``) the reasons this
    host cannot run a TD are returned instead of failing ``tdx``."""
    if not checker.known("uri"):
        expected_mrtd(checker, None)
        return []
    checker.inputs["mrtd"] = None
    try:
        with connect(checker.inputs["uri"]) as conn:
            return _check_host(checker, conn, root, readiness)
    except Exception as exc:  # an unreachable host fails the uri property
        checker.fail("uri", str(exc))
        return []


def _check_tdx_target(checker: Checker, conn: libvirt.virConnect) -> None:
    """The QGS dialect this libvirt parses, and the TDX firmware when none is given."""
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


def check_host_files(checker: Checker, conn: libvirt.virConnect) -> None:
    """firmware, kernel and initrd on a host that is not this machine, asked of its libvirt
    (:mod:`storage.host_files`): a file libvirt says is missing fails its field at preview,
    not when the guest starts. When the host cannot tell (a read-only connection, an unreadable
    directory), nothing fails: QEMU is the judge then."""
    uri = checker.inputs["uri"]
    if is_local(uri):
        return  # checked where Pulumi runs (check_across_fields), the same machine
    keys = [k for k in FILE_INPUTS if checker.known(k) and checker.inputs.get(k) is not None]
    try:
        found = host_files.probe(conn, [checker.inputs[k] for k in keys])
    except libvirt.libvirtError as exc:  # e.g. a probe pool libvirt would not stop
        for key in keys:
            checker.fail(key, f"cannot be checked on {uri}: {exc}")
        return
    for key in keys:
        path = found[checker.inputs[key]]
        if path.exists is False:
            checker.fail(key, f"file {path.path!r} does not exist on {uri} ({path.reason})")
        elif path.kind == "dir":
            checker.fail(key, f"{path.path!r} is a directory on {uri}, not a file")


def _check_host(checker: Checker, conn: libvirt.virConnect, root: Path,
                readiness: bool) -> list[str]:
    inputs = checker.inputs
    check_host_files(checker, conn)
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
        _check_network(checker, conn)
    expected_mrtd(checker, conn)
    return warnings


def _check_network(checker: Checker, conn: libvirt.virConnect) -> None:
    name, uri = checker.inputs["network"], checker.inputs["uri"]
    try:
        network = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        checker.fail("network", f"libvirt network {name!r} does not exist on {uri} (define "
                     "it, or set network to None)")
        return
    if not network.isActive():
        checker.fail("network", f"libvirt network {name!r} is not active (virsh net-start "
                     f"{name}, or set network to None)")


def expected_mrtd(checker: Checker, conn: libvirt.virConnect | None) -> None:
    """``mrtd``: the MRTD a trust domain built from this firmware by this host's QEMU will have
    (lowercase hex). None for regular VMs, for remote hosts (their firmware is not ours to
    read) and while the firmware is invalid; unknown while an input it needs is unknown."""
    checker.inputs["mrtd"] = _mrtd(checker, conn)


def _mrtd(checker: Checker, conn: libvirt.virConnect | None) -> Any:
    inputs = checker.inputs
    needed = ("tdx", "uri", "firmware", "page_add_order")
    if any(is_unknown(inputs.get(key)) for key in needed):
        return None if inputs.get("tdx") is False else UNKNOWN
    if (inputs.get("tdx") is not True or not is_local(inputs.get("uri")) or conn is None
            or inputs.get("firmware") is None or not checker.known("firmware", "page_add_order")):
        return None
    try:
        return measure.expected_mrtd(conn, inputs["firmware"], inputs.get("page_add_order"))
    except measure.MeasureError as exc:
        checker.fail("firmware", f"no trust domain can be measured from it: {exc}")
        return None


def _require_tdx(conn: libvirt.virConnect, root: Path, uri: str) -> None:
    try:
        host.require_tdx(conn, root, local=is_local_uri(uri))
    except HostNotReadyError as exc:
        raise InputError("tdx", f"{exc} (set tdx=False for a regular VM)") from exc

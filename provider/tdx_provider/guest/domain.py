"""Trust domains (and regular VMs): define, start, read, update, and graceful teardown."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from tdx_provider import cancellation
from tdx_provider.connection import is_no_such
from tdx_provider.errors import ConflictError, LibvirtOperationError
from tdx_provider.guest import introspect
from tdx_provider.guest import xml as domain_xml
from tdx_provider.metadata import NAMESPACE, PREFIX, Owner
from tdx_provider.readers import domain as reader

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}

POLL_INTERVAL = 0.1      # seconds between state polls while waiting for a guest to stop
ACPI_RESEND_EVERY = 5.0  # a guest still booting may miss the first power-button press


@dataclass(frozen=True)
class Instance:
    """Our metadata on a domain."""

    owner: Owner
    overlay: str | None
    shutdown_timeout: int | None
    tdx: bool | None
    seed: str | None = None  # path of the cloud-init seed volume


@dataclass(frozen=True)
class DomainInfo:
    name: str
    uuid: str
    state: str
    memory_mib: int
    vcpus: int
    autostart: bool
    instance: Instance | None
    ssh_port: int | None
    cid: int | None
    ip: str | None


@dataclass(frozen=True)
class Teardown:
    """How a domain went away."""

    name: str
    graceful: bool   # stopped on ACPI within the timeout
    seconds: float   # from the ACPI request to shut off (or to the forced stop)
    existed: bool = True


def lookup(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise


def instance_of(dom: libvirt.virDomain) -> Instance | None:
    """Our metadata, or None when the domain is not ours."""
    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0)
    except libvirt.libvirtError:
        return None
    # libvirt hands the element back without its namespace; the reader matches local names.
    found = reader.Instance.parse(text)
    if found.owner is None:
        return None
    return Instance(
        owner=found.owner.owner(),
        overlay=found.overlay,
        shutdown_timeout=found.shutdown_timeout,
        tdx=found.tdx,
        seed=found.seed,
    )


def state_of(dom: libvirt.virDomain) -> str:
    return STATES.get(dom.state()[0], "unknown")


def info(dom: libvirt.virDomain, *, connection_details: bool = True) -> DomainInfo:
    config = reader.Domain.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    active = dom.isActive()
    return DomainInfo(
        name=dom.name(),
        uuid=dom.UUIDString(),
        state=state_of(dom),
        memory_mib=config.memory_mib,
        vcpus=config.vcpus,
        autostart=bool(dom.autostart()),
        instance=instance_of(dom),
        ssh_port=introspect.live_ssh_port(dom) if connection_details and active else None,
        cid=introspect.live_cid(dom) if connection_details and active else None,
        ip=introspect.live_ip(dom) if connection_details and active else None,
    )


def read(conn: libvirt.virConnect, name: str) -> DomainInfo | None:
    dom = lookup(conn, name)
    return info(dom) if dom is not None else None


def create(
    conn: libvirt.virConnect,
    name: str,
    xml: str,
    owner: Owner,
    *,
    autostart: bool = False,
    before_start: Callable[[], None] | None = None,
) -> DomainInfo:
    """Define (with libvirt's schema validation) and start a domain; transactional.

    If any step fails, the domain this call defined is removed before the error propagates.
    A leftover domain of the same name is adopted only when it carries our owner tag for the
    same owner; anything else with that name is a conflict that names its owner.
    """
    existing = lookup(conn, name)
    if existing is not None:
        found = instance_of(existing)
        if found is None or found.owner != owner:
            holder = f"owned by {found.owner}" if found else "not created by pulumi-tdx"
            raise ConflictError(f"a domain named {name!r} already exists ({holder})")
        # ours, left by an interrupted run: redefine that same domain (libvirt refuses a
        # definition of an existing name under another UUID)
        xml = domain_xml.with_uuid(xml, existing.UUIDString())
    try:
        dom = conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as exc:
        raise LibvirtOperationError(f"libvirt refused to define {name!r}: {exc}") from exc
    try:
        if before_start is not None:
            before_start()
        if not dom.isActive():
            dom.create()
        dom.setAutostart(1 if autostart else 0)
    except BaseException as exc:
        if existing is None:
            _remove(dom)
        if isinstance(exc, libvirt.libvirtError):
            raise LibvirtOperationError(f"cannot start {name!r}: {exc}") from exc
        raise
    return info(dom)


def _remove(dom: libvirt.virDomain) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        undefine(dom)


def undefine(dom: libvirt.virDomain) -> None:
    """Undefine with NVRAM, managed save and snapshot/checkpoint metadata."""
    flags = (
        libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    )
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return
        dom.undefine()


def _is_off(dom: libvirt.virDomain) -> bool:
    try:
        return not dom.isActive()
    except libvirt.libvirtError as exc:
        if is_no_such(exc):  # a transient domain disappears when it stops
            return True
        raise


def stop(
    dom: libvirt.virDomain, timeout: float, *, clock: Callable[[], float] = time.monotonic
) -> Teardown:
    """ACPI shutdown, wait (polling the state) at most ``timeout`` s, then force off."""
    name = dom.name()
    start = clock()
    if _is_off(dom):
        return Teardown(name, graceful=True, seconds=0.0)
    deadline = start + timeout
    next_press = start
    while clock() < deadline and not cancellation.requested():  # cancelled: as if timed out
        if clock() >= next_press:
            with contextlib.suppress(libvirt.libvirtError):
                dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            next_press = clock() + ACPI_RESEND_EVERY
        if _is_off(dom):
            return Teardown(name, graceful=True, seconds=clock() - start)
        cancellation.pause(POLL_INTERVAL)
    if _is_off(dom):
        return Teardown(name, graceful=True, seconds=clock() - start)
    with contextlib.suppress(libvirt.libvirtError):
        dom.destroyFlags(libvirt.VIR_DOMAIN_DESTROY_GRACEFUL)
    if not _is_off(dom):
        dom.destroy()
    return Teardown(name, graceful=False, seconds=clock() - start)


def delete(conn: libvirt.virConnect, name: str, timeout: float) -> Teardown:
    """Graceful teardown then undefine (NVRAM included). A domain already gone is success."""
    dom = lookup(conn, name)
    if dom is None:
        return Teardown(name, graceful=True, seconds=0.0, existed=False)
    result = stop(dom, timeout)
    undefine(dom)
    return result


def start(conn: libvirt.virConnect, name: str) -> None:
    dom = lookup(conn, name)
    if dom is None:
        raise LibvirtOperationError(f"domain {name!r} is gone")
    if not dom.isActive():
        dom.create()


def set_autostart(conn: libvirt.virConnect, name: str, autostart: bool) -> None:
    dom = lookup(conn, name)
    if dom is None:
        raise LibvirtOperationError(f"domain {name!r} is gone")
    dom.setAutostart(1 if autostart else 0)


def set_shutdown_timeout(conn: libvirt.virConnect, name: str, timeout: int) -> None:
    """Rewrite our metadata's shutdown timeout in the persistent (and live) definition."""
    dom = lookup(conn, name)
    if dom is None:
        raise LibvirtOperationError(f"domain {name!r} is gone")
    text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0)
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain_xml.with_shutdown_timeout(text, timeout),
        PREFIX, NAMESPACE, flags,
    )


def list_all(conn: libvirt.virConnect) -> list[libvirt.virDomain]:
    return sorted(conn.listAllDomains(0), key=lambda d: d.name())

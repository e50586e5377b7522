"""TrustDomain: check (down to a render validated with the host's schema), diff, and the
lifecycle: backing chain, GPU preparation, define, start, wait for connection details; update
in place; refresh; graceful teardown."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import libvirt

from tdx_provider import cancellation
from tdx_provider.checking import Checker, is_unknown
from tdx_provider.connection import connect, is_local_uri
from tdx_provider.errors import LibvirtOperationError
from tdx_provider.guest import domain, imported, introspect, xml
from tdx_provider.guest.domain_spec import backing_chain, render_document, spec_from
from tdx_provider.host import gpu
from tdx_provider.specs import TRUST_DOMAIN
from tdx_provider.storage import volume
from tdx_provider.validation import pci_address

from . import trust_domain_checks as checks
from .base import Resource, State, host_root, owner_of

SSH_FORWARD_WAIT_SECONDS = 5.0


def _outputs(props: dict[str, Any], info: domain.DomainInfo) -> dict[str, Any]:
    outs = {**props, "name": info.name, "uuid": info.uuid, "state": info.state,
            "memory_mib": info.memory_mib, "vcpus": info.vcpus, "autostart": info.autostart,
            "ssh_port": info.ssh_port, "ip": info.ip}
    outs["cid"] = info.cid if info.cid is not None else props.get("cid")
    return outs


class TrustDomainResource(Resource):
    spec = TRUST_DOMAIN

    def check_more(self, olds: dict[str, Any], checker: Checker, *, readiness: bool,
                   root: Path) -> list[str]:
        checks.check_across_fields(checker)
        warnings = checks.check_against_host(checker, root, readiness=readiness)
        # firmware stays None only while the host is unknown: the render waits for it
        firmware_known = not checker.inputs["tdx"] or checker.inputs.get("firmware") is not None
        if not checker.failures and firmware_known:
            checker.run("template", lambda: render_document(checker.inputs))
        return warnings

    def delete_before_replace(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        """When the name is fixed, when GPUs are attached (a GPU cannot be held by two
        domains) and when the disk stays the same (QEMU locks the image: two running guests
        cannot share one overlay)."""
        overlay = news.get("overlay")
        same_disk = not is_unknown(overlay) and olds.get("overlay") == overlay
        return not news.get("auto_named") or bool(news.get("gpus")) or same_disk

    def force_update(self, olds: dict[str, Any]) -> bool:
        return olds.get("state") not in (None, "running")  # up starts a stopped domain

    def create(self, props: dict[str, Any]) -> State:
        with connect(props["uri"]) as conn:
            # a new guest of this stack on a disk an operator released: the stack declares it
            for path in (props["overlay"], (props.get("seed") or {}).get("path")):
                if path:
                    volume.reclaim_path(conn, path, owner_of(props))
            chain = backing_chain(conn, props["overlay"])
            document = xml.render_and_validate(spec_from(props, props["overlay"], chain),
                                               props.get("template"),
                                               xml.schema_for_uri(props["uri"]))
            console_log = _new_local_file(props.get("console_log"), props["uri"])
            try:
                info = domain.create(conn, props["name"], document, owner_of(props),
                                     autostart=props["autostart"],
                                     before_start=lambda: _prepare_gpus(conn, props))
            except BaseException:
                _remove_if_empty(console_log)  # made by this failed start, holds nothing
                raise
            info = wait_for_connection_details(conn, info)
        return State(info.uuid, _outputs(props, info))

    def read(self, id_: str, props: dict[str, Any]) -> State | None:
        with connect(props["uri"]) as conn:
            info = domain.read(conn, props.get("name") or _name_of(conn, id_))
            if info is not None and "overlay" not in props:  # imported: its definition says
                dom = domain.lookup(conn, info.name)
                props = {**props, **(imported.inputs_of(dom) if dom is not None else {})}
        if info is None:
            return None
        return State(info.uuid, _outputs(props, info))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        name = news["name"]
        with connect(news["uri"]) as conn:
            if olds.get("autostart") != news["autostart"]:
                domain.set_autostart(conn, name, news["autostart"])
            if olds.get("shutdown_timeout") != news["shutdown_timeout"]:
                domain.set_shutdown_timeout(conn, name, news["shutdown_timeout"])
            domain.start(conn, name)
            info = domain.read(conn, name)
            if info is None:
                raise LibvirtOperationError(f"domain {name!r} disappeared during the update")
            info = wait_for_connection_details(conn, info)
        return _outputs(news, info)

    def delete(self, id_: str, props: dict[str, Any]) -> str | None:
        timeout = props.get("shutdown_timeout", TRUST_DOMAIN.field("shutdown_timeout").default)
        with connect(props["uri"]) as conn:
            result = domain.delete(conn, props["name"], timeout)
        if not result.existed:
            return None
        how = "stopped by ACPI" if result.graceful else "forced off (ACPI timed out)"
        return f"{result.name}: {how} after {result.seconds:.1f} s, undefined"


def _name_of(conn: libvirt.virConnect, uuid: str) -> str:
    """An import knows only the id (the UUID); a name works too."""
    try:
        return str(conn.lookupByUUIDString(uuid).name())
    except libvirt.libvirtError:
        return uuid


def _prepare_gpus(conn: libvirt.virConnect, props: dict[str, Any]) -> None:
    """GPU preparation touches this machine's sysfs and runs a local command, so it applies to
    local URIs only; a remote host prepares its GPUs itself."""
    gpus = [pci_address("gpus", g) for g in props.get("gpus") or []]
    if gpus and is_local_uri(props["uri"]):
        gpu.prepare_gpus(conn, gpus, dma_entry_limit=props["dma_entry_limit"],
                         setup_command=props.get("gpu_setup_command"), sysfs_root=host_root())


def wait_for_connection_details(conn: libvirt.virConnect,
                                info: domain.DomainInfo) -> domain.DomainInfo:
    """QEMU sets up the SSH forward as it starts; give the monitor a moment (bounded). Only the
    forward is polled; the full read (XML, metadata, addresses) happens once at the end."""
    if info.ssh_port is not None or info.state != "running":
        return info
    dom = domain.lookup(conn, info.name)
    deadline = time.monotonic() + cancellation.remaining(SSH_FORWARD_WAIT_SECONDS)
    while dom is not None and time.monotonic() < deadline and not cancellation.requested():
        if introspect.live_ssh_port(dom) is not None:
            break
        cancellation.pause(0.1)
    return domain.read(conn, info.name) or info


def _new_local_file(path: str | None, uri: str) -> str | None:
    """``path`` if it is on this machine and does not exist yet, else None."""
    if path is None or not is_local_uri(uri) or os.path.lexists(path):
        return None
    return path


def _remove_if_empty(path: str | None) -> None:
    if path is None:
        return
    try:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            os.remove(path)
    except OSError:
        pass


TRUST_DOMAIN_RESOURCE = TrustDomainResource()

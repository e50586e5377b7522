"""TrustDomain: an Intel TDX trust domain (or, with ``tdx=False``, a regular VM)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from ._common import Checker, adapter, auto_name, diff, is_unknown, owner_of

# mrtd is computed by check (the expected measurement): a change is shown, nothing is rebuilt.
UPDATE_KEYS = ("autostart", "shutdown_timeout", "mrtd", "page_add_order")
REPLACE_KEYS = (
    "uri", "name", "overlay", "memory_mib", "vcpus", "tdx", "firmware", "kernel", "initrd",
    "cmdline", "gpus", "gpu_setup_command", "dma_entry_limit", "ssh_host_port", "ssh_bind_address",
    "network", "vsock", "cid", "qgs", "domain_type", "template", "console_log",
    # launch-time measurements: a TD cannot change them after it starts
    "debug", "sept_ve_disable", "tdx_policy", "mr_config_id", "mr_owner", "mr_owner_config",
    # the cloud-init seed disk: a new seed is a new first boot
    "seed",
)
OPTIONAL_KEYS = ("cid",)  # None: libvirt assigns one
# Overrides the host root for TDX checks and GPU preparation (tests point it at a fixture tree).
HOST_ROOT_ENV = "PULUMI_TDX_HOST_ROOT"
PLACEHOLDER_OVERLAY = "/var/lib/libvirt/images/overlay-not-yet-created.qcow2"
PLACEHOLDER_SEED = "/var/lib/libvirt/images/seed-not-yet-created"


def host_root() -> Path:
    return Path(os.environ.get(HOST_ROOT_ENV, "/"))


def _outputs(props: dict[str, Any], info: Any) -> dict[str, Any]:
    outs = {**props, "name": info.name, "uuid": info.uuid, "state": info.state,
            "memory_mib": info.memory_mib, "vcpus": info.vcpus, "autostart": info.autostart,
            "ssh_port": info.ssh_port, "ip": info.ip}
    outs["cid"] = info.cid if info.cid is not None else props.get("cid")
    return outs


def spec_from(props: dict[str, Any], overlay_path: str, chain: tuple[Any, ...] = ()) -> Any:
    """The engine's DomainSpec for these (checked) inputs."""
    from tdx_provider.guest import xml
    from tdx_provider.validation import pci_address

    from ._trust_domain_checks import effective_policy

    qgs = props.get("qgs")
    seed = props.get("seed")
    return xml.DomainSpec(
        name=props["name"],
        owner=owner_of(props),
        memory_mib=props["memory_mib"],
        vcpus=props["vcpus"],
        disk=xml.Disk(overlay_path, chain),
        tdx=props["tdx"],
        domain_type=props["domain_type"],
        firmware=props.get("firmware"),
        kernel=props.get("kernel"),
        initrd=props.get("initrd"),
        cmdline=props.get("cmdline"),
        gpus=tuple(pci_address("gpus", g) for g in props.get("gpus") or []),
        ssh=xml.SshForward(props["ssh_host_port"], props["ssh_bind_address"]),
        network=props.get("network"),
        vsock=props["vsock"],
        cid=props.get("cid"),
        qgs=xml.QuoteGenerationService(**qgs) if qgs else None,
        console_log=props.get("console_log"),
        shutdown_timeout=props["shutdown_timeout"],
        tdx_policy=effective_policy(props),
        mr_config_id=props.get("mr_config_id"),
        mr_owner=props.get("mr_owner"),
        mr_owner_config=props.get("mr_owner_config"),
        seed=xml.SeedDisk(seed["path"], seed.get("instance_id")) if seed else None,
    )


class TrustDomainProvider(ResourceProvider):
    @adapter
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        checker, _warnings = check_inputs(olds, news, host_root())
        return CheckResult(checker.inputs, checker.failures)

    @adapter
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        from ._trust_domain_checks import ATTESTATION_DEFAULTS

        # a state from before the attestation inputs was rendered with their defaults (and
        # inputs from an SDK that predates them mean the same)
        olds = {**ATTESTATION_DEFAULTS, **olds}
        news = {**ATTESTATION_DEFAULTS, **news}
        # delete-before-replace when the name is fixed, when GPUs are attached (a GPU cannot
        # be held by two domains) and when the disk stays the same (QEMU locks the image:
        # two running guests cannot share one overlay).
        overlay = news.get("overlay")
        same_disk = not is_unknown(overlay) and olds.get("overlay") == overlay
        dbr = not news.get("auto_named") or bool(news.get("gpus")) or same_disk
        stopped = olds.get("state") not in (None, "running")
        return diff(olds, news, replace_keys=REPLACE_KEYS, update_keys=UPDATE_KEYS,
                    optional=OPTIONAL_KEYS, delete_before_replace=dbr, force_update=stopped)

    @adapter
    def create(self, props: dict[str, Any]) -> CreateResult:
        from tdx_provider.connection import connect, is_local_uri
        from tdx_provider.guest import domain, xml
        from tdx_provider.host import gpu
        from tdx_provider.storage import volume
        from tdx_provider.validation import pci_address

        with connect(props["uri"]) as conn:
            # a new guest of this stack on a disk an operator released: the stack declares it
            for path in (props["overlay"], (props.get("seed") or {}).get("path")):
                if path:
                    volume.reclaim_path(conn, path, owner_of(props))
            chain = backing_chain(conn, props["overlay"])
            document = xml.render_and_validate(spec_from(props, props["overlay"], chain),
                                               props.get("template"),
                                               xml.schema_for_uri(props["uri"]))
            gpus = [pci_address("gpus", g) for g in props.get("gpus") or []]

            def prepare() -> None:
                # GPU preparation touches this machine's sysfs and runs a local command, so it
                # applies to local URIs only; a remote host prepares its GPUs itself.
                if gpus and is_local_uri(props["uri"]):
                    gpu.prepare_gpus(conn, gpus, dma_entry_limit=props["dma_entry_limit"],
                                     setup_command=props.get("gpu_setup_command"),
                                     sysfs_root=host_root())

            console_log = _new_local_file(props.get("console_log"), props["uri"])
            try:
                info = domain.create(conn, props["name"], document, owner_of(props),
                                     autostart=props["autostart"], before_start=prepare)
            except BaseException:
                _remove_if_empty(console_log)  # made by this failed start, holds nothing
                raise
            info = _wait_for_connection_details(conn, info)
        return CreateResult(info.uuid, _outputs(props, info))

    @adapter
    def read(self, _id: str, props: dict[str, Any]) -> ReadResult:
        from tdx_provider.connection import connect
        from tdx_provider.guest import domain

        with connect(props["uri"]) as conn:
            info = domain.read(conn, props["name"])
        if info is None:
            return ReadResult(None, {})
        return ReadResult(info.uuid, _outputs(props, info))

    @adapter
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from tdx_provider.connection import connect
        from tdx_provider.guest import domain

        name = news["name"]
        with connect(news["uri"]) as conn:
            if olds.get("autostart") != news["autostart"]:
                domain.set_autostart(conn, name, news["autostart"])
            if olds.get("shutdown_timeout") != news["shutdown_timeout"]:
                domain.set_shutdown_timeout(conn, name, news["shutdown_timeout"])
            domain.start(conn, name)
            info = domain.read(conn, name)
            if info is None:
                from tdx_provider.errors import LibvirtOperationError

                raise LibvirtOperationError(f"domain {name!r} disappeared during the update")
            info = _wait_for_connection_details(conn, info)
        return UpdateResult(_outputs(news, info))

    @adapter
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        import pulumi

        from tdx_provider.connection import connect
        from tdx_provider.guest import domain

        with connect(props["uri"]) as conn:
            result = domain.delete(conn, props["name"], props.get("shutdown_timeout", 60))
        if result.existed:
            how = "stopped by ACPI" if result.graceful else "forced off (ACPI timed out)"
            pulumi.log.info(f"{result.name}: {how} after {result.seconds:.1f} s, undefined")


def check_inputs(olds: dict[str, Any], news: dict[str, Any], root: Path, *,
                 readiness: bool = True) -> tuple[Checker, list[str]]:
    """Preview's checks of TrustDomain inputs, ending in a render validated with the target
    host's schema. ``readiness=False`` (``tdxctl render``) returns the reasons the host cannot
    run a TD as warnings instead of failing ``tdx``."""
    from . import _trust_domain_checks as checks

    checker = Checker(news)
    for key, default in checks.DEFAULTS.items():
        if checker.inputs.get(key) is None:
            checker.inputs[key] = default
    resource = (news.get("owner") or {}).get("resource", "td")
    checker.inputs["name"], checker.inputs["auto_named"] = auto_name(resource, olds, news)
    checks.check_fields(checker)
    warnings = checks.check_against_host(checker, root, readiness=readiness)
    # firmware stays None only while the host is unknown: the render waits for it
    firmware_known = not checker.inputs["tdx"] or checker.inputs.get("firmware") is not None
    if not checker.failures and firmware_known:
        checker.run("template", lambda: render_document(checker.inputs))
    return checker, warnings


def _new_local_file(path: str | None, uri: str) -> str | None:
    """``path`` if it is on this machine and does not exist yet, else None."""
    from tdx_provider.connection import is_local_uri

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


def render_document(inputs: dict[str, Any], chain: tuple[Any, ...] = ()) -> str:
    """The domain XML these checked inputs render to, validated with the target host's schema."""
    from tdx_provider.guest import xml

    overlay = inputs.get("overlay")
    path = PLACEHOLDER_OVERLAY if is_unknown(overlay) or not overlay else overlay
    seed = inputs.get("seed")
    if seed is not None and is_unknown(seed):  # made in this same update: its path is unknown
        known = seed if isinstance(seed, dict) else {}
        seed = {"path": known.get("path") if not is_unknown(known.get("path"))
                else PLACEHOLDER_SEED,
                "instance_id": known.get("instance_id")
                if not is_unknown(known.get("instance_id")) else None}
        inputs = {**inputs, "seed": seed}
    return xml.render_and_validate(spec_from(inputs, path, chain), inputs.get("template"),
                                   xml.schema_for_uri(inputs["uri"]))


def backing_chain(conn: Any, path: str) -> tuple[Any, ...]:
    """The overlay's backing chain as libvirt's storage API sees it (works remotely)."""
    import libvirt
    from lxml import etree

    from tdx_provider.guest import xml

    layers = []
    current = path
    for _ in range(16):
        try:
            vol = conn.storageVolLookupByPath(current)
        except libvirt.libvirtError:
            break
        doc = etree.fromstring(vol.XMLDesc(0).encode())
        backing = doc.findtext("backingStore/path")
        if not backing:
            break
        fmt_el = doc.find("backingStore/format")
        fmt = (fmt_el.get("type") if fmt_el is not None else None) or "raw"
        layers.append(xml.BackingLayer(backing, fmt))
        current = backing
    return tuple(layers)


def _wait_for_connection_details(conn: Any, info: Any) -> Any:
    """QEMU sets up the SSH forward as it starts; give the monitor a moment (bounded). Only the
    forward is polled; the full read (XML, metadata, addresses) happens once at the end."""
    import time

    from tdx_provider.guest import domain, introspect

    if info.ssh_port is not None or info.state != "running":
        return info
    dom = domain.lookup(conn, info.name)
    deadline = time.monotonic() + 5.0
    while dom is not None and time.monotonic() < deadline:
        if introspect.live_ssh_port(dom) is not None:
            break
        time.sleep(0.1)
    return domain.read(conn, info.name) or info

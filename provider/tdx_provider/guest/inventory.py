"""What runs on a host: one row per domain, ours marked with their owner and disks.

``tdxctl list`` prints these rows; any other adapter that shows a host's guests reads the same.
Every value is read best-effort (:func:`probe.probe`): a domain that changes while we look shows
unknown values, it does not end the listing.
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt

from tdx_provider.guest import domain, introspect
from tdx_provider.probe import probe


@dataclass(frozen=True)
class DomainRow:
    """One domain as listed; anything that cannot be read (or is not ours) is None."""

    name: str
    state: str | None
    ip: str | None
    ssh_port: int | None
    cid: int | None
    overlay: str | None
    seed: str | None
    owner: str | None


def instance_or_none(dom: libvirt.virDomain) -> domain.Instance | None:
    """Our tag on the domain; None when it is not ours (or the tag cannot be read)."""
    return probe(lambda: domain.instance_of(dom))


def domain_row(dom: libvirt.virDomain) -> DomainRow:
    """The row of one domain; live values (IP, port, CID) only while it runs."""
    instance = instance_or_none(dom)
    active = bool(probe(dom.isActive))
    return DomainRow(
        name=dom.name(),
        state=probe(lambda: domain.state_of(dom)),
        ip=probe(lambda: introspect.live_ip(dom)) if active else None,
        # The SSH port comes from a QEMU monitor command, which libvirt logs as tainting the
        # domain: only our own domains are asked.
        ssh_port=probe(lambda: introspect.live_ssh_port(dom)) if active and instance else None,
        cid=probe(lambda: introspect.live_cid(dom)) if active else None,
        overlay=instance.overlay if instance else None,
        seed=instance.seed if instance else None,
        owner=str(instance.owner) if instance else None,
    )


def list_domains(conn: libvirt.virConnect) -> list[DomainRow]:
    """Every domain on the host (ours and others), in :func:`domain.list_all` order."""
    return [domain_row(dom) for dom in domain.list_all(conn)]

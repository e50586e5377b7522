"""The two edits guest/xml.py makes to documents libvirt holds: a redefinition keeps the
leftover domain's UUID, and a new shutdown timeout keeps the rest of our metadata. Against
libvirt's test driver (real libvirt, in process)."""

from __future__ import annotations

import uuid

import libvirt

from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.readers.domain import Domain

OWNER = Owner("proj", "dev", "td")


def _spec(name: str) -> xml.DomainSpec:
    return xml.DomainSpec(name=name, owner=OWNER, memory_mib=256, vcpus=1, tdx=False,
                          domain_type="test", disk=xml.Disk("/pool/e.qcow2"),
                          seed=xml.SeedDisk("/pool/e-seed.img", "iid-1"))


def test_with_uuid_sets_or_adds_the_uuid() -> None:
    rendered = xml.render(_spec("e"))
    wanted = str(uuid.uuid4())
    assert Domain.parse(xml.with_uuid(rendered, wanted)).uuid == wanted
    again = str(uuid.uuid4())
    assert Domain.parse(xml.with_uuid(xml.with_uuid(rendered, wanted), again)).uuid == again


def test_a_new_shutdown_timeout_keeps_the_rest_of_our_metadata() -> None:
    name = f"rd-edit-{uuid.uuid4().hex[:8]}"
    with libvirt.open("test:///default") as conn:
        dom = conn.defineXML(xml.render(_spec(name)))
        try:
            domain.set_shutdown_timeout(conn, name, 17)
            found = domain.instance_of(dom)
            assert found == domain.Instance(OWNER, "/pool/e.qcow2", 17, False, "/pool/e-seed.img")
            # an interrupted run's leftover of the same owner is redefined under its UUID
            before = dom.UUIDString()
            info = domain.create(conn, name, xml.render(_spec(name)), OWNER)
            assert info.uuid == before
            assert domain.instance_of(dom) == domain.Instance(OWNER, "/pool/e.qcow2", 60, False,
                                                              "/pool/e-seed.img")
        finally:
            domain.delete(conn, name, 0)

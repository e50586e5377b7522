"""Domain XML (``virDomain.XMLDesc``, a rendered definition) and our metadata element.

One class per element; each property is one declaration (see :mod:`tdx_provider.readers._base`).
Our metadata element comes two ways: inside a domain's XML, in our namespace
(:attr:`Domain.instance`), and alone from ``virDomain.metadata``, which hands it back without
a namespace (:meth:`Instance.parse`); the ``{*}`` paths read both.
"""

from __future__ import annotations

from tdx_provider.metadata import NAMESPACE, Owner
from tdx_provider.readers._base import (
    Child,
    Children,
    Nested,
    Prop,
    XMLElement,
    to_int,
    yes_no,
)

QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"

_BYTES_PER_UNIT = {"KiB": 1024, "k": 1024, "MiB": 1024**2, "M": 1024**2, "GiB": 1024**3,
                   "G": 1024**3, "b": 1, "bytes": 1}


# --- our metadata ----------------------------------------------------------------------------


class OwnerTag(XMLElement):
    """``<ptdx:owner project= stack= resource=>``."""

    project = Prop("@project")
    stack = Prop("@stack")
    resource = Prop("@resource")

    def owner(self) -> Owner:
        return Owner(self.project or "", self.stack or "", self.resource or "")


class Instance(XMLElement):
    """``<ptdx:instance>``: who declared the domain and what we need to tear it down."""

    owner = Child(OwnerTag, "{*}owner")
    overlay = Prop("{*}overlay/@path")
    shutdown_timeout = Prop("{*}shutdown/@timeout", to_int)
    tdx = Prop("{*}tdx/@enabled", yes_no)
    seed = Prop("{*}seed/@path")
    seed_instance_id = Prop("{*}seed/@instance-id")


# --- disks -----------------------------------------------------------------------------------


class Source(XMLElement):
    """A disk's (or a layer's) ``<source>``: a file, a block device or a pool's volume."""

    file = Prop("@file")
    dev = Prop("@dev")
    pool = Prop("@pool")
    volume = Prop("@volume")

    @property
    def path(self) -> str | None:
        """The file or device it names, if any."""
        return self.file or self.dev or None


class BackingStore(XMLElement):
    """One layer of a disk's backing chain; the chain ends with an empty ``<backingStore/>``."""

    type = Prop("@type")
    format = Prop("format/@type")
    source = Child(Source, "source")
    backing_store = Nested("backingStore")


class Disk(XMLElement):
    """``<disk>``: its source, its backing chain, and every source below its own."""

    type = Prop("@type")
    device = Prop("@device")
    format = Prop("driver/@type")
    target = Prop("target/@dev")
    source = Child(Source, "source")
    backing_store = Child(BackingStore, "backingStore")
    # Every <source> below the disk's own, at any depth: backing chain, a block copy's
    # <mirror>, a data store. Whatever libvirt nests there, the disk reads it.
    sources_below = Children(Source, "*//source")

    def chain(self) -> list[BackingStore]:
        """The backing chain, top layer first, without the empty terminator."""
        layers: list[BackingStore] = []
        layer = self.backing_store
        while layer is not None and layer.source is not None:
            layers.append(layer)
            layer = layer.backing_store
        return layers


# --- other devices ---------------------------------------------------------------------------


class PciAddress(XMLElement):
    """``<address domain= bus= slot= function=>`` (hex or decimal)."""

    domain = Prop("@domain", to_int)
    bus = Prop("@bus", to_int)
    slot = Prop("@slot", to_int)
    function = Prop("@function", to_int)


class Hostdev(XMLElement):
    """``<hostdev mode='subsystem' type='pci'>``: a passed-through PCI function."""

    type = Prop("@type")
    managed = Prop("@managed", yes_no)
    address = Child(PciAddress, "source/address")


class Interface(XMLElement):
    """``<interface>``: a libvirt network NIC."""

    type = Prop("@type")
    network = Prop("source/@network")
    model = Prop("model/@type")


class Vsock(XMLElement):
    """``<vsock>``; libvirt fills in the CID's address in a live definition when auto='yes'."""

    model = Prop("@model")
    cid = Prop("cid/@address", to_int)
    cid_auto = Prop("cid/@auto", yes_no)


class Devices(XMLElement):
    disks = Children(Disk, "disk")
    hostdevs = Children(Hostdev, "hostdev")
    interfaces = Children(Interface, "interface")
    vsock = Child(Vsock, "vsock")
    console_log = Prop("serial/log/@file")


# --- launch security -------------------------------------------------------------------------


class SocketAddress(XMLElement):
    """Canonical's QGS form: ``<SocketAddress type='vsock' cid= port=>`` (raw text: the
    structural check reports what is not a number)."""

    type = Prop("@type")
    cid = Prop("@cid")
    port = Prop("@port")


class QuoteGenerationService(XMLElement):
    """Upstream's ``path=`` or Canonical's ``<SocketAddress>``."""

    path = Prop("@path")
    sockets = Children(SocketAddress, "SocketAddress")


class Element(XMLElement):
    """Any element, read only for its tag and text (what an element list is made of)."""

    text = Prop(".")


class LaunchSecurity(XMLElement):
    """``<launchSecurity type='tdx'>``: policy (raw text), QGS and measurement registers."""

    type = Prop("@type")
    policy = Prop("policy")
    quote_generation_services = Children(QuoteGenerationService, "quoteGenerationService")
    children = Children(Element, "*")


# --- the domain ------------------------------------------------------------------------------


class Os(XMLElement):
    type = Prop("type")
    machine = Prop("type/@machine")
    loader = Prop("loader")
    kernel = Prop("kernel")
    initrd = Prop("initrd")
    cmdline = Prop("cmdline")


class Memory(XMLElement):
    """``<memory unit=...>``: libvirt writes KiB when it names no unit."""

    amount = Prop(".", to_int)
    unit = Prop("@unit")

    @property
    def mib(self) -> int:
        return (self.amount or 0) * _BYTES_PER_UNIT.get(self.unit or "KiB", 1024) // 1024**2


class Vcpu(XMLElement):
    count = Prop(".", to_int)
    placement = Prop("@placement")


class QemuArg(XMLElement):
    value = Prop("@value")


class Domain(XMLElement):
    """``<domain>``: the persistent definition, or the live one while it runs."""

    type = Prop("@type")
    id = Prop("@id", to_int)  # only a running domain's live definition has one
    name = Prop("name")
    uuid = Prop("uuid")
    memory = Child(Memory, "memory")
    vcpu = Child(Vcpu, "vcpu")
    os = Child(Os, "os")
    devices = Child(Devices, "devices")
    launch_security = Child(LaunchSecurity, "launchSecurity")
    instance = Child(Instance, f"metadata/{{{NAMESPACE}}}instance")
    qemu_args = Children(QemuArg, f"{{{QEMU_NAMESPACE}}}commandline/{{{QEMU_NAMESPACE}}}arg")

    @property
    def memory_mib(self) -> int:
        """``<memory>`` in MiB (0 when absent)."""
        return self.memory.mib if self.memory is not None else 0

    @property
    def vcpus(self) -> int:
        """``<vcpu>``'s count (0 when absent)."""
        return (self.vcpu.count if self.vcpu is not None else None) or 0

    @property
    def disks(self) -> list[Disk]:
        return self.devices.disks if self.devices is not None else []

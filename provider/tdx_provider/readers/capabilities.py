"""Host XML: KVM domain capabilities (``virConnect.getDomainCapabilities``) and node devices
(``virNodeDevice.XMLDesc``), as the host checks and GPU passthrough read them.

One class per element; each property is one declaration (see :mod:`tdx_provider.readers._base`).
"""

from __future__ import annotations

from tdx_provider.readers._base import Child, Children, Prop, XMLElement, to_int

# --- domain capabilities ---------------------------------------------------------------------


class Value(XMLElement):
    """An ``<enum>``'s or a loader's ``<value>``."""

    text = Prop(".")


class Feature(XMLElement):
    """A ``<features>`` entry such as ``<tdx supported='no'/>`` (``supported`` as libvirt
    printed it: the host checks quote it back)."""

    supported = Prop("@supported")


class LaunchSecurityCapability(XMLElement):
    """``<features><launchSecurity supported=...>`` and the secure guest types it lists."""

    supported = Prop("@supported")
    sectypes = Children(Value, "enum[@name='sectype']/value")


class DomainCapabilities(XMLElement):
    """``<domainCapabilities>``."""

    emulator = Prop("path")
    domain = Prop("domain")
    machine = Prop("machine")
    loaders = Children(Value, "os/loader/value")
    tdx = Child(Feature, "features/tdx")
    launch_security = Child(LaunchSecurityCapability, "features/launchSecurity")


# --- node devices ----------------------------------------------------------------------------


class PciId(XMLElement):
    """``<vendor id='0x10de'>NVIDIA Corporation</vendor>`` (and ``<product>``)."""

    id = Prop("@id")
    name = Prop(".")


class PciCapability(XMLElement):
    """``<capability type='pci'>``: address, class, ids and IOMMU group."""

    domain = Prop("domain", to_int)
    bus = Prop("bus", to_int)
    slot = Prop("slot", to_int)
    function = Prop("function", to_int)
    pci_class = Prop("class", to_int)
    vendor = Child(PciId, "vendor")
    product = Child(PciId, "product")
    iommu_group = Prop("iommuGroup/@number", to_int)


class NodeDevice(XMLElement):
    """``<device>``: its name, its host driver and, for a PCI device, its PCI capability."""

    name = Prop("name")
    driver = Prop("driver/name")
    pci = Child(PciCapability, "capability[@type='pci']")

"""Storage XML: a pool's (``virStoragePool.XMLDesc``) and a volume's (``virStorageVol.XMLDesc``).

One class per element; each property is one declaration (see :mod:`tdx_provider.readers._base`).
"""

from __future__ import annotations

from tdx_provider.readers._base import Child, Prop, XMLElement, to_int


class Target(XMLElement):
    """A pool's or a volume's ``<target>``: where it lives, its format and file mode."""

    path = Prop("path")
    format = Prop("format/@type")
    mode = Prop("permissions/mode")


class Pool(XMLElement):
    """``<pool type='dir'>``."""

    type = Prop("@type")
    name = Prop("name")
    uuid = Prop("uuid")
    capacity = Prop("capacity", to_int)
    target = Child(Target, "target")

    @property
    def path(self) -> str:
        """The pool's directory ("" when it names none)."""
        return (self.target.path if self.target is not None else None) or ""


class BackingStore(XMLElement):
    """A volume's ``<backingStore>``: the file below it and that file's format."""

    path = Prop("path")
    format = Prop("format/@type")


class Volume(XMLElement):
    """``<volume>``."""

    type = Prop("@type")
    name = Prop("name")
    key = Prop("key")
    capacity = Prop("capacity", to_int)
    allocation = Prop("allocation", to_int)
    target = Child(Target, "target")
    backing_store = Child(BackingStore, "backingStore")

    @property
    def format(self) -> str:
        """The volume's format; libvirt omits it for a raw file, so "raw" when absent."""
        return (self.target.format if self.target is not None else None) or "raw"

    @property
    def backing_path(self) -> str | None:
        """The file the volume is backed by; None when it has no backing store."""
        return (self.backing_store.path if self.backing_store is not None else None) or None

"""The small generic base of the typed XML readers, after virt-manager's virtinst xmlbuilder.

Why: libvirt XML used to be read back with ad-hoc ``find``/``findtext`` calls scattered over
the engine, each with its own idea of a missing element, an empty attribute or a number. A
reader class per element declares each property once, with one relative path and at most one
converter, so every caller reads a field the same way and a test can prove that each declared
path matches real libvirt XML (tests/unit/test_xml_readers.py).

A path is lxml's ElementPath (``tag``, ``a/b``, ``{*}tag``, ``*//tag``, ``tag[@k='v']``),
optionally ending in ``@attribute``:

- ``Prop("memory")``: the text of ``<memory>`` (stripped), ``""`` when empty;
- ``Prop("memory/@unit")``: an attribute of a child; ``Prop("@id")``: one of the element itself;
- ``Prop(".")``: the element's own text.

Anything missing reads as None. Readers only read: rendering is guest/xml.py's business.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from lxml import etree

T = TypeVar("T")
E = TypeVar("E", bound="XMLElement")

# Every declared property (owner class, attribute name), and those read with a value found:
# the test that every declaration matches real XML compares the two (as virtinst's
# tests/test_checkprops.py does).
_DECLARED: set[tuple[str, str]] = set()
_SEEN: set[tuple[str, str]] = set()


def declared() -> frozenset[tuple[str, str]]:
    """Every declared property as ``(Class, attribute)``."""
    return frozenset(_DECLARED)


def seen() -> frozenset[tuple[str, str]]:
    """The declared properties read so far with a value present in the XML."""
    return frozenset(_SEEN)


def to_int(text: str) -> int | None:
    """Decimal (libvirt's numbers, sysfs) or ``0x`` hex (PCI ids, classes, addresses); None
    for anything else, so a hand-edited or half-written value reads as absent."""
    text = text.strip()
    if text.isdecimal():
        return int(text)
    if text[:2].lower() == "0x":
        try:
            return int(text, 16)
        except ValueError:
            return None
    return None


def yes_no(text: str) -> bool | None:
    """libvirt's ``yes``/``no``; None for anything else."""
    return {"yes": True, "no": False}.get(text.strip())


def parse_xml(xml: str | bytes) -> etree._Element:
    """Parse a document libvirt (or we) wrote: no entity expansion, no network."""
    data = xml.encode() if isinstance(xml, str) else xml
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


class XMLElement:
    """A read-only view of one XML element; subclasses declare its properties."""

    def __init__(self, node: etree._Element) -> None:
        self._node = node

    @classmethod
    def parse(cls: type[E], xml: str | bytes) -> E:
        """The reader over the root element of ``xml``."""
        return cls(parse_xml(xml))

    @property
    def tag(self) -> str:
        """The element's local name (without a namespace)."""
        return etree.QName(self._node).localname

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.tag}>"


class _Declared:
    """Registers each declaration under its owner class (see :func:`declared`)."""

    key: tuple[str, str] = ("", "")

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = (owner.__name__, name)
        _DECLARED.add(self.key)

    def _saw(self, value: object) -> None:
        if value is not None and value != [] and self.key not in _SEEN:
            _SEEN.add(self.key)


class Prop(_Declared, Generic[T]):
    """A text or attribute value, through at most one converter."""

    @overload
    def __init__(self: Prop[str], path: str) -> None: ...

    @overload
    def __init__(self: Prop[T], path: str, conv: Callable[[str], T | None]) -> None: ...

    def __init__(self, path: str, conv: Callable[[str], Any] | None = None) -> None:
        element, attribute = path, None
        if path.startswith("@"):
            element, attribute = ".", path[1:]
        elif "/@" in path:
            element, attribute = path.rsplit("/@", 1)
        self.element: str = element
        self.attribute: str | None = attribute
        self.conv = conv

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Prop[T]: ...

    @overload
    def __get__(self, obj: XMLElement, objtype: type | None = None) -> T | None: ...

    def __get__(self, obj: XMLElement | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        node = obj._node if self.element == "." else obj._node.find(self.element)
        if node is None:
            return None
        raw = node.get(self.attribute) if self.attribute else (node.text or "").strip()
        value = raw if raw is None or self.conv is None else self.conv(raw)
        self._saw(value)
        return value


class Child(_Declared, Generic[E]):
    """The first child element at ``path``, read by ``cls``; None when there is none."""

    def __init__(self, cls: type[E], path: str) -> None:
        self.cls, self.path = cls, path

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Child[E]: ...

    @overload
    def __get__(self, obj: XMLElement, objtype: type | None = None) -> E | None: ...

    def __get__(self, obj: XMLElement | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        node = obj._node.find(self.path)
        value = None if node is None else self.cls(node)
        self._saw(value)
        return value


class Children(_Declared, Generic[E]):
    """Every element at ``path`` (document order), each read by ``cls``."""

    def __init__(self, cls: type[E], path: str) -> None:
        self.cls, self.path = cls, path

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Children[E]: ...

    @overload
    def __get__(self, obj: XMLElement, objtype: type | None = None) -> list[E]: ...

    def __get__(self, obj: XMLElement | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        value = [self.cls(node) for node in obj._node.iterfind(self.path)]
        self._saw(value)
        return value


class Nested(_Declared):
    """A child of the same kind as its parent (a backing chain's next layer); None at the end."""

    def __init__(self, path: str) -> None:
        self.path = path

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Nested: ...

    @overload
    def __get__(self, obj: E, objtype: type | None = None) -> E | None: ...

    def __get__(self, obj: XMLElement | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        node = obj._node.find(self.path)
        value = None if node is None else type(obj)(node)
        self._saw(value)
        return value

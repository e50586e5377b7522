"""The vocabulary of resource specs: a typed field per input or output, and a resource's spec.

A spec says, once, everything an adapter needs to know about a property: its type, its default,
what a change to it does (replace or update), whether it is secret, how it is validated and
what it means. The dynamic adapter's check and diff, the native provider's schema, the SDK's
defaults (checked by a test) and ``docs/resources.md`` all derive from these declarations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Change(Enum):
    """What a changed input does to the resource."""

    REPLACE = "replace"  # a new resource (the old one is deleted before or after)
    UPDATE = "update"  # applied in place
    NONE = "none"  # internal bookkeeping: never a diff of its own


class _Missing:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _Missing()


@dataclass(frozen=True)
class Type:
    """A property's type in the package schema's terms: ``string``, ``integer``, ``boolean``,
    ``number``, ``array`` (of ``items``), ``object`` (of ``properties``, a named type), ``map``
    (string to ``items``) or ``any``."""

    kind: str
    items: Type | None = None
    name: str = ""  # an object type's token suffix, e.g. "QuoteGenerationService"
    properties: tuple[Field, ...] = ()
    description: str = ""


STRING = Type("string")
INTEGER = Type("integer")
BOOLEAN = Type("boolean")
NUMBER = Type("number")
ANY = Type("any")


def array(items: Type) -> Type:
    return Type("array", items=items)


def obj(name: str, description: str, *properties: Field) -> Type:
    return Type("object", name=name, properties=properties, description=description)


Validator = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Field:
    """One property of a resource.

    ``default`` applies when the input is missing or None. With ``sdk_default`` it is the SDKs'
    default only: the engine takes a missing value as None, because Pulumi drops None values on
    the wire and None must keep meaning "none" (``network=None``: no second NIC).
    ``keep_when_none``: None in the new inputs means "whatever it is now" (a computed value
    such as a detected format or a CID libvirt assigned), so it is no diff.
    ``input``/``output`` say where the property appears; an input is also an output (state
    holds the checked inputs). ``required``: an input the program must give; for an output
    (``input=False``), one that every create and read reports. ``internal`` properties travel
    between check and create but are no part of the public schema.
    """

    name: str
    type: Type
    description: str
    default: Any = NO_DEFAULT
    change: Change = Change.REPLACE
    required: bool = False
    secret: bool = False
    validate: Validator | None = None
    input: bool = True
    output: bool = True
    internal: bool = False
    keep_when_none: bool = False
    sdk_default: bool = False
    secret_when: str = ""  # secret whenever this other input is given (a value derived from it)
    added_later: bool = False  # state written before it existed: a missing old value = default

    @property
    def camel(self) -> str:
        """The property's name in the package schema and non-Python languages."""
        return camel(self.name)

    @property
    def wire(self) -> str:
        """Its name between the native provider and the Pulumi engine: the schema's, or for an
        internal input that is no output ``__<camel>``, which Pulumi keeps in the checked
        inputs and in state but never displays (as bridged providers' ``__defaults``)."""
        return f"__{self.camel}" if self.internal and not self.output else self.camel

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


def output(name: str, type_: Type, description: str, *, secret: bool = False,
           secret_when: str = "", always: bool = False) -> Field:
    """A property the resource reports and no program sets; ``always``: every create and read
    reports it (the schema's ``required``, so typed SDKs make it no optional)."""
    return Field(name, type_, description, input=False, change=Change.NONE, secret=secret,
                 secret_when=secret_when, required=always)


@dataclass(frozen=True)
class ResourceSpec:
    """A resource: its schema token, what it is, and its properties."""

    name: str  # "TrustDomain": the token is tdx:index:<name>
    description: str
    fields: tuple[Field, ...]
    id_description: str = ""

    @property
    def token(self) -> str:
        return f"tdx:index:{self.name}"

    @property
    def inputs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.input)

    @property
    def outputs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.output)

    @property
    def public_inputs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.inputs if not f.internal)

    def keys(self, change: Change) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs if f.change is change)

    @property
    def keep_when_none(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs if f.keep_when_none)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def legacy_defaults(self) -> dict[str, Any]:
        """Defaults of inputs added after the first release: what a missing old value meant."""
        return {f.name: f.default for f in self.inputs if f.added_later}

    def sdk_defaults(self) -> dict[str, Any]:
        """Defaults the SDKs fill in and the engine does not."""
        return {f.name: f.default for f in self.inputs if f.sdk_default}

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.inputs if f.has_default}


_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")


def camel(snake_name: str) -> str:
    """``memory_mib`` -> ``memoryMib`` (the inverse of :func:`snake`)."""
    head, *rest = snake_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(camel: str) -> str:
    """``memoryMib`` -> ``memory_mib`` (the inverse of :attr:`Field.camel`)."""
    return _CAMEL_RE.sub("_", camel).lower()



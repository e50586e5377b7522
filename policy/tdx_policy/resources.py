"""What a rule sees of a pulumi-tdx resource, for both adapters.

The dynamic provider's types are ``pulumi-python:dynamic/tdx:<Kind>`` with snake_case
properties; the native provider's are ``tdx:index:<Kind>`` with the same properties in
camelCase. A rule reads properties by their snake_case name through :class:`Resource`.

During preview the engine hands a policy the *checked* inputs: the provider's defaults are
filled in, ``name`` is resolved, and a TrustDomain carries ``firmware`` (also when the host
picked it) and ``mrtd`` (the expected MRTD). Internal keys such as ``__provider`` are not
passed. A value that is not known yet (an output of a resource created in the same update)
raises ``pulumi_policy``'s UnknownValueError when read; the pack then reports that the rule
could not run during preview, and it runs again with known values at ``pulumi up``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

DYNAMIC_PREFIX = "pulumi-python:dynamic/tdx:"
NATIVE_PREFIX = "tdx:index:"
KINDS = ("Pool", "BaseImage", "Overlay", "CloudInitSeed", "TrustDomain")


def kind_of(resource_type: str) -> str | None:
    """``TrustDomain`` etc. for a type of either adapter, else None."""
    for prefix in (DYNAMIC_PREFIX, NATIVE_PREFIX):
        if resource_type.startswith(prefix) and resource_type[len(prefix):] in KINDS:
            return resource_type[len(prefix):]
    return None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


@dataclass(frozen=True)
class Resource:
    """One resource as a rule reads it: ``get`` takes the snake_case property name."""

    kind: str
    name: str
    resource_type: str
    props: Mapping[str, Any]

    def get(self, prop: str, default: Any = None) -> Any:
        for key in (prop, camel(prop)):
            if key in self.props:
                value = self.props[key]  # raises UnknownValueError while unknown
                return default if value is None else value
        return default

    def shown(self, prop: str) -> str:
        """The property's name as the user wrote it for this adapter."""
        return camel(prop) if self.resource_type.startswith(NATIVE_PREFIX) else prop

    def label(self) -> str:
        """``TrustDomain 'td' (domain web-1)``: the resource name, and the libvirt name when
        it is known and differs."""
        text = f"{self.kind} {self.name!r}"
        try:
            physical = self.get("name")
        except UnknownValueError:  # during preview the resource name suffices
            physical = None
        if isinstance(physical, str) and physical != self.name:
            text += f" ({_physical_noun(self.kind)} {physical})"
        return text

    def is_trust_domain(self) -> bool:
        """A TrustDomain with tdx on (the default when the property is absent)."""
        return self.kind == "TrustDomain" and self.get("tdx", True) is not False


def _physical_noun(kind: str) -> str:
    return {"TrustDomain": "domain", "Pool": "pool"}.get(kind, "volume")


def resource_from(resource_type: str, name: str, props: Mapping[str, Any]) -> Resource | None:
    kind = kind_of(resource_type)
    if kind is None:
        return None
    return Resource(kind, name, resource_type, props)

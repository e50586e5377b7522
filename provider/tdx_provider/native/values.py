"""Property values on the wire <-> the engine's plain dicts, driven by the spec's types.

Names: the schema's camelCase at the top level and inside named object types, and ``__``
before an internal input (:attr:`~tdx_provider.specs.fields.Field.wire`); the keys of an
``any`` value (a cloud-init network config) are the user's and stay as they are. Numbers: the
wire carries doubles, the engine wants integers back. Unknowns: Pulumi's wire sentinel (or a
``Computed`` value) is the engine's :data:`~tdx_provider.checking.UNKNOWN` and back. Secrets:
what the spec marks secret, and whatever came in secret, goes out secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi.provider.experimental.property_value import Computed, PropertyValue, ResourceReference
from pulumi.runtime.rpc import UNKNOWN as WIRE_UNKNOWN

from tdx_provider.checking import UNKNOWN
from tdx_provider.specs.fields import Field, ResourceSpec, Type, camel, snake


@dataclass(frozen=True)
class Plain:
    """Plain engine values and the top-level (snake_case) names that arrived secret."""

    values: dict[str, Any]
    secret: frozenset[str]


def _by_wire(fields: Sequence[Field]) -> dict[str, Field]:
    return {f.wire: f for f in fields}


def _to_plain(value: PropertyValue, type_: Type | None) -> Any:
    raw = value.value
    if isinstance(raw, Computed) or raw == WIRE_UNKNOWN:
        return UNKNOWN
    if isinstance(raw, float):
        keep_float = type_ is not None and type_.kind == "number"
        return int(raw) if raw.is_integer() and not keep_float else raw
    if isinstance(raw, ResourceReference):  # an id stands for the resource (as in the SDK)
        return _to_plain(raw.resource_id, type_) if raw.resource_id is not None else UNKNOWN
    if isinstance(raw, Mapping):
        if type_ is not None and type_.kind == "object":
            return object_to_plain(raw, type_.properties)
        items = type_.items if type_ is not None and type_.kind == "map" else None
        return {k: _to_plain(v, items) for k, v in raw.items()}
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        items = type_.items if type_ is not None and type_.kind == "array" else None
        return [_to_plain(v, items) for v in raw]
    return raw


def object_to_plain(props: Mapping[str, PropertyValue], fields: Sequence[Field]) -> dict[str, Any]:
    """camelCase properties of ``fields`` -> snake_case plain values (unknown names too)."""
    known = _by_wire(fields)
    result: dict[str, Any] = {}
    for key, value in props.items():
        field = known.get(key)
        result[field.name if field else snake(key)] = _to_plain(value,
                                                                field.type if field else None)
    return result


def to_plain(props: Mapping[str, PropertyValue], spec: ResourceSpec) -> Plain:
    known = _by_wire(spec.fields)
    secret = frozenset(known[k].name if k in known else snake(k)
                       for k, v in props.items() if v.contains_secret())
    return Plain(object_to_plain(props, spec.fields), secret)


def _from_plain(value: Any, type_: Type | None) -> PropertyValue:
    if value is UNKNOWN:
        return PropertyValue(WIRE_UNKNOWN)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return PropertyValue(value)
    if isinstance(value, int | float):
        return PropertyValue(float(value))
    if isinstance(value, Mapping):
        if type_ is not None and type_.kind == "object":
            return PropertyValue(object_from_plain(value, type_.properties))
        items = type_.items if type_ is not None and type_.kind == "map" else None
        return PropertyValue({str(k): _from_plain(v, items) for k, v in value.items()})
    if isinstance(value, list | tuple):
        items = type_.items if type_ is not None and type_.kind == "array" else None
        return PropertyValue([_from_plain(v, items) for v in value])
    return PropertyValue(str(value))  # nothing else is plain data: say what it is


def object_from_plain(values: Mapping[str, Any],
                      fields: Sequence[Field]) -> dict[str, PropertyValue]:
    known = {f.name: f for f in fields}
    result: dict[str, PropertyValue] = {}
    for key, value in values.items():
        field = known.get(key)
        result[field.wire if field else camel(key)] = _from_plain(value,
                                                                    field.type if field else None)
    return result


def from_plain(values: Mapping[str, Any], spec: ResourceSpec,
               secret: frozenset[str] = frozenset()) -> dict[str, PropertyValue]:
    """Engine values -> wire values; the spec's secrets and ``secret`` names marked secret."""
    known = {f.name: f for f in spec.fields}
    result = object_from_plain(values, spec.fields)
    for key in (set(spec.secrets) | secret) & set(values):
        if values[key] is not None:
            name = known[key].wire if key in known else camel(key)
            result[name] = result[name].with_secret(True)
    return result

"""Plumbing of the native SDK: property names and the resource base class.

A Pulumi program hands a resource snake_case keywords; the package schema names them in
camelCase. ``pulumi.CustomResource`` asks :meth:`translate_input_property` for every key it
sends (nested dict keys too) and :meth:`translate_output_property` for every key it gets back,
so the names the schema knows are translated and any other key (e.g. of a cloud-init network
config, which is the user's) passes as it is.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import pulumi

_UNDERSCORE = re.compile(r"_([a-z0-9])")
_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


def camel(name: str) -> str:
    return _UNDERSCORE.sub(lambda m: m.group(1).upper(), name)


def snake(name: str) -> str:
    return _UPPER.sub("_", name).lower()


@cache
def schema() -> dict[str, Any]:
    """The package schema the plugin serves (shipped with the provider package)."""
    text = resources.files("tdx_provider.native").joinpath("schema.json").read_text()
    return json.loads(text)


@cache
def schema_names() -> frozenset[str]:
    """Every camelCase property name of the schema's resources and types."""
    pkg = schema()
    names: set[str] = set()
    for res in pkg["resources"].values():
        names |= set(res["inputProperties"]) | set(res["properties"])
    for type_ in pkg["types"].values():
        names |= set(type_["properties"])
    # inputs the SDK passes beside the schema (the engine's; never a user's): see Overlay
    return frozenset(names | {"baseCapacity"})


def output_names(token: str) -> list[str]:
    """snake_case names of a resource's outputs (each becomes an ``Output`` attribute)."""
    return [snake(name) for name in schema()["resources"][token]["properties"]]


def check_names(token: str, inputs: dict[str, Any]) -> None:
    """A misspelt keyword is the caller's error here, not an input the provider ignores."""
    known = schema()["resources"][token]["inputProperties"]
    unknown = sorted(k for k in inputs if camel(k) not in known)
    if unknown:
        raise TypeError(f"{token.rsplit(':', 1)[-1]}() got unexpected keyword arguments: "
                        f"{', '.join(unknown)}")


class NativeResource(pulumi.CustomResource):
    """A resource of the ``tdx`` package, served by the ``pulumi-resource-tdx`` plugin."""

    _token: str = ""

    def __init__(self, resource_name: str, args: dict[str, Any],
                 opts: pulumi.ResourceOptions | None) -> None:
        props: dict[str, Any] = dict.fromkeys(output_names(self._token))
        # None is not sent: the provider applies the spec's default (and the provider's uri)
        props.update({k: v for k, v in args.items() if v is not None})
        super().__init__(self._token, resource_name, props, opts)

    def translate_input_property(self, prop: str) -> str:
        name = camel(prop)
        return name if name in schema_names() else prop

    def translate_output_property(self, prop: str) -> str:
        return snake(prop) if prop in schema_names() else prop

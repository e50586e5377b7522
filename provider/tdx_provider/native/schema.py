"""The ``tdx`` package schema, generated from the engine's typed specs (never written by hand).

Pulumi's schema is what other languages, ``pulumi package get-schema``, YAML's type checks and
``docs/resources.md`` see: camelCase names, a description for every property, ``secret`` and
``replaceOnChanges`` marks, object types under ``types``. Internal inputs (the owner tag, the
auto-name flag, computed check values) are no part of it; an internal field that is also an
output (the expected ``mrtd``) is listed as an output only.

The provider answers GetSchema from ``schema.json`` beside this module (written by
``make docs``; a unit test fails when it is stale), so start-up imports neither the specs nor
libvirt.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PACKAGE = "tdx"
GO_IMPORT_PATH = "pulumi-tdx.local/sdk/go/tdx"  # no public host: programs use a replace line
NODE_PACKAGE = "@pulumi-tdx/tdx"
SCHEMA_FILE = Path(__file__).with_name("schema.json")
URI_DESCRIPTION = (
    "libvirt connection URI of the host this provider manages (``qemu:///system``, "
    "``qemu+ssh://user@host/system``, ...). Resources that set no ``uri`` of their own use it."
)

_TICKS = re.compile(r"``([^`]+)``")


def markdown(text: str) -> str:
    """The specs' reST double backticks as Markdown code spans."""
    return _TICKS.sub(r"`\1`", text)


def _type_ref(type_: Any) -> dict[str, Any]:
    """A property's type: primitives inline, named objects by reference, ``any`` as Pulumi's."""
    if type_.kind == "array":
        return {"type": "array", "items": _type_ref(type_.items)}
    if type_.kind == "map":
        return {"type": "object", "additionalProperties": _type_ref(type_.items)}
    if type_.kind == "object":
        return {"$ref": f"#/types/{PACKAGE}:index:{type_.name}"}
    if type_.kind == "any":
        return {"$ref": "pulumi.json#/Any"}
    return {"type": type_.kind}


_PRIMITIVE_KINDS = frozenset({"string", "integer", "boolean", "number"})


def _property(field: Any, *, as_input: bool) -> dict[str, Any]:
    from tdx_provider.specs.fields import Change

    spec: dict[str, Any] = {**_type_ref(field.type), "description": markdown(field.description)}
    # The schema allows defaults on primitives only; a None default means "none", so no default.
    # A resource's ``uri`` defaults to its provider's, which the schema cannot say. A default
    # only the Python SDKs fill in (``network``) is none of the schema's: generated SDKs apply
    # schema defaults, and a Go or TypeScript program could then never say "none".
    if (field.has_default and field.default is not None and field.name != "uri"
            and not field.sdk_default and field.type.kind in _PRIMITIVE_KINDS):
        spec["default"] = field.default
    if field.secret:
        spec["secret"] = True
    if as_input and field.change is Change.REPLACE:
        spec["replaceOnChanges"] = True
        spec["willReplaceOnChanges"] = True
    return spec


def _object_type(type_: Any) -> dict[str, Any]:
    required = [f.camel for f in type_.properties if f.required]
    result: dict[str, Any] = {
        "type": "object",
        "description": markdown(type_.description),
        "properties": {f.camel: _property(f, as_input=False) for f in type_.properties},
    }
    if required:
        result["required"] = required
    return result


def _object_types(type_: Any, into: dict[str, dict[str, Any]]) -> None:
    """Collect every named object type reachable from ``type_`` (nested ones too)."""
    if type_ is None:
        return
    if type_.kind == "object":
        into[f"{PACKAGE}:index:{type_.name}"] = _object_type(type_)
        for f in type_.properties:
            _object_types(f.type, into)
    else:
        _object_types(type_.items, into)


def _always_set(field: Any) -> bool:
    """An input whose default the engine fills in, whatever the program says."""
    return field.has_default and field.default is not None and not field.sdk_default


def _resource(spec: Any) -> dict[str, Any]:
    inputs = spec.public_inputs
    description = markdown(spec.description)
    if spec.id_description:
        description += f"\n\nThe resource's ID: {markdown(spec.id_description)}"
    return {
        "description": description,
        "properties": {f.camel: _property(f, as_input=False) for f in spec.outputs},
        "required": [f.camel for f in spec.outputs if not f.internal
                     and (f.required or _always_set(f))],
        "inputProperties": {f.camel: _property(f, as_input=True) for f in inputs},
        "requiredInputs": [f.camel for f in inputs if f.required],
    }


def _uri_property() -> dict[str, Any]:
    from tdx_provider.connection import DEFAULT_URI

    return {"type": "string", "description": markdown(URI_DESCRIPTION), "default": DEFAULT_URI}


def build() -> dict[str, Any]:
    """The package schema as a dict, from :data:`tdx_provider.specs.SPECS`."""
    from tdx_provider import __version__
    from tdx_provider.specs import SPECS

    types: dict[str, dict[str, Any]] = {}
    for spec in SPECS.values():
        for f in spec.fields:
            if not f.internal or f.output:
                _object_types(f.type, types)
    return {
        "name": PACKAGE,
        "displayName": "Intel TDX on libvirt",
        "version": __version__,
        "description": "Intel TDX trust domains, their disks and storage pools on libvirt.",
        "keywords": ["pulumi", "tdx", "libvirt", "confidential-computing", "category/cloud"],
        "license": "Apache-2.0",
        "meta": {"moduleFormat": "(.*)"},
        "config": {"variables": {"uri": _uri_property()}},
        "provider": {
            "description": "One libvirt host: an explicit provider per host lets one stack "
                           "manage several.",
            "properties": {"uri": _uri_property()},
            "inputProperties": {"uri": _uri_property()},
        },
        "types": dict(sorted(types.items())),
        "resources": {spec.token: _resource(spec) for spec in SPECS.values()},
        "language": {
            "python": {"packageName": "pulumi_tdx_native"},
            # sdk/go (a module of its own; programs point at it with a replace line) and
            # sdk/nodejs, generated by `make sdks` (scripts/sdkgen)
            "go": {"importBasePath": GO_IMPORT_PATH, "generateResourceContainerTypes": False,
                   "respectSchemaVersion": True},
            "nodejs": {"packageName": NODE_PACKAGE, "respectSchemaVersion": True,
                       "packageDescription": "Intel TDX trust domains on libvirt (pulumi-tdx).",
                       "dependencies": {"@pulumi/pulumi": "^3.249.0"}},  # runtime.existsResource
        },
    }


def render() -> str:
    """The schema as the JSON text ``schema.json`` holds."""
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def text() -> str:
    """The schema for GetSchema: the generated file when present, else generated now."""
    try:
        return SCHEMA_FILE.read_text()
    except FileNotFoundError:
        return render()

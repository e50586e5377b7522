"""``docs/resources.md``: the Markdown reference of every resource, rendered from the schema.

Run ``python -m tdx_provider.native.docs`` (``make docs``) after changing a spec: it rewrites
``docs/resources.md`` and the schema the plugin serves; a unit test fails while either is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tdx_provider.native import schema

HEADER = """\
# Resources

Generated from the package schema (`pulumi package get-schema tdx`) by `make docs`, from the
specs in `provider/tdx_provider/specs/`; do not edit (the rules at the end come from
`docs/resource-rules.md`). Property names are the schema's (camelCase, as in YAML and other
languages); the Python SDKs take the same names in snake_case (`memoryMib` is `memory_mib`).
"Replaces" marks inputs whose change replaces the resource; the others are applied in place.

Two ways to the same engine: `pulumi_tdx` (Python dynamic providers, types
`pulumi-python:dynamic/tdx:Pool`, ...; every resource takes `uri`, default `qemu:///system`)
and the native provider plugin `pulumi-resource-tdx` (types `tdx:index:Pool`, ...; any Pulumi
language, `pulumi import`, provider config `tdx:uri` and explicit providers, one per host; from
Python through `pulumi_tdx.native`). Names given by the user are used as-is; an omitted `name`
becomes the resource name plus a random suffix. Every input is checked at `pulumi preview`,
which names the property and creates nothing.
"""
RULES = Path(__file__).resolve().parents[3] / "docs" / "resource-rules.md"


def _cell(text: str) -> str:
    """Table cells hold one line and no bare pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _type_name(prop: dict[str, Any]) -> str:
    ref = prop.get("$ref", "")
    if ref == "pulumi.json#/Any":
        return "any"
    if ref.startswith("#/types/"):
        name = ref.rsplit(":", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if prop.get("type") == "array":
        return f"{_type_name(prop['items'])}[]"
    if prop.get("type") == "object" and "additionalProperties" in prop:
        return f"map of {_type_name(prop['additionalProperties'])}"
    return str(prop.get("type", "any"))


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    value = prop["default"]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _inputs_table(props: dict[str, Any], required: list[str]) -> list[str]:
    lines = ["| Input | Type | Default | Replaces | Secret | Description |",
             "|---|---|---|---|---|---|"]
    for name, prop in props.items():
        label = f"`{name}`" + (" (required)" if name in required else "")
        lines.append(
            f"| {label} | {_type_name(prop)} | {_default(prop)} | "
            f"{'yes' if prop.get('replaceOnChanges') else ''} | "
            f"{'yes' if prop.get('secret') else ''} | {_cell(prop['description'])} |")
    return lines


def _outputs_table(props: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    lines = ["| Output | Type | Secret | Description |", "|---|---|---|---|"]
    for name, prop in props.items():
        if name in inputs and prop["description"] == inputs[name]["description"]:
            continue  # an input echoed in state: described above
        lines.append(f"| `{name}` | {_type_name(prop)} | {'yes' if prop.get('secret') else ''}"
                     f" | {_cell(prop['description'])} |")
    return lines


def _resource(token: str, res: dict[str, Any]) -> list[str]:
    name = token.rsplit(":", 1)[-1]
    inputs = res["inputProperties"]
    lines = [f"## {name}", "", f"Type token: `{token}`", "", res["description"], "",
             "### Inputs", "", *_inputs_table(inputs, res.get("requiredInputs", [])), "",
             "### Outputs", "",
             "Every input is also an output (state holds the checked inputs). Besides them:", "",
             *_outputs_table(res["properties"], inputs), ""]
    return lines


def _object_type(token: str, type_: dict[str, Any]) -> list[str]:
    name = token.rsplit(":", 1)[-1]
    required = type_.get("required", [])
    lines = [f"### {name}", "", type_["description"], "",
             "| Property | Type | Description |", "|---|---|---|"]
    for prop_name, prop in type_["properties"].items():
        label = f"`{prop_name}`" + (" (required)" if prop_name in required else "")
        lines.append(f"| {label} | {_type_name(prop)} | {_cell(prop['description'])} |")
    return [*lines, ""]


def _provider(pkg: dict[str, Any]) -> list[str]:
    lines = ["## Provider configuration", "", pkg["provider"]["description"], "",
             "| Config | Type | Default | Description |", "|---|---|---|---|"]
    for name, prop in pkg["config"]["variables"].items():
        lines.append(f"| `{pkg['name']}:{name}` | {_type_name(prop)} | {_default(prop)} | "
                     f"{_cell(prop['description'])} |")
    return [*lines, ""]


def render(pkg: dict[str, Any]) -> str:
    """The whole reference for the schema ``pkg``."""
    lines = [HEADER, *_provider(pkg)]
    for token, res in pkg["resources"].items():
        lines += _resource(token, res)
    lines += ["## Types", ""]
    for token, type_ in pkg["types"].items():
        lines += _object_type(token, type_)
    if RULES.exists():
        lines += [line for line in RULES.read_text().splitlines()
                  if not line.startswith("<!--")]
    return "\n".join(lines).rstrip("\n") + "\n"


def default_path() -> Path:
    """``docs/resources.md`` of the source tree this package is installed from (editable)."""
    return Path(__file__).resolve().parents[3] / "docs" / "resources.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=default_path(), help="Markdown to write")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    pkg = schema.build()
    wanted = {args.docs: render(pkg), schema.SCHEMA_FILE: schema.render()}
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

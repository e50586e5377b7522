"""The layers of docs/architecture.md, enforced: which package of the engine may import which,
the engine imports nothing from Pulumi, and only the adapters know both."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROVIDER = Path(__file__).resolve().parents[2] / "provider" / "tdx_provider"
SDK = Path(__file__).resolve().parents[2] / "sdk" / "python" / "pulumi_tdx"
PACKAGES = ("readers", "storage", "host", "guest", "specs", "resources", "tdxctl", "dynamic",
            "native")
# layer -> the layers it may import (besides itself); "core" is the modules at the root
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "readers": {"core"},
    "storage": {"core", "readers"},
    "host": {"core", "readers", "storage"},
    "guest": {"core", "readers", "storage", "host"},
    "specs": {"core", "storage", "guest", "host"},
    "resources": {"core", "readers", "storage", "host", "guest", "specs"},
    "tdxctl": {"core", "readers", "storage", "host", "guest", "specs", "resources"},
    "dynamic": {"core", "resources"},
    "native": {"core", "specs", "resources"},
}
ADAPTERS = {"dynamic", "native"}  # the only layers that may import pulumi or grpc


def layer_of(module: str) -> str:
    """``tdx_provider.storage.pool`` -> ``storage``; root modules -> ``core``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "core"


def module_name(path: Path, root: Path = PROVIDER.parent) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path, root: Path = PROVIDER.parent) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions, relative ones resolved;
    ``from package import module`` counts as the module."""
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if base == "tdx_provider" or (base.startswith("tdx_provider.")
                                                       and base.count(".") == 1))
    return found


def engine_files() -> list[Path]:
    return sorted(PROVIDER.rglob("*.py"))


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(PROVIDER)))
def test_each_module_imports_only_the_layers_below_it(path: Path) -> None:
    layer = layer_of(module_name(path))
    for module in imports(path):
        top = module.split(".")[0]
        if top == "tdx_provider":
            target = layer_of(module)
            assert target == layer or target in ALLOWED[layer], (
                f"{module_name(path)} ({layer}) imports {module} ({target})")
        elif top in ("pulumi", "grpc", "pulumi_tdx"):
            assert layer in ADAPTERS, f"{module_name(path)} ({layer}) imports {module}"


def test_the_sdk_reaches_the_engine_only_through_adapters_and_the_defaults() -> None:
    """The SDK imports no libvirt: adapters it hands its resources to, and the defaults."""
    for path in sorted(SDK.rglob("*.py")):
        for module in imports(path, SDK.parent):
            if module.startswith("tdx_provider."):
                assert (layer_of(module) in ("dynamic", "native", "specs")
                        or module in ("tdx_provider.defaults", "tdx_provider.checking")), (
                    path.name, module)


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The test can fail: an engine module that imports pulumi is named."""
    bad = PROVIDER / "storage" / "_layer_probe.py"
    bad.write_text("import pulumi\n")
    try:
        with pytest.raises(AssertionError, match="storage"):
            test_each_module_imports_only_the_layers_below_it(bad)
    finally:
        bad.unlink()

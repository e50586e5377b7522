"""Write the Python SDK's Args docstrings from the typed resource specs (the one source of each
input's meaning). ``python scripts/sync_sdk_docs.py`` rewrites sdk/python/pulumi_tdx in place;
tests/unit/test_sdk_matches_specs.py fails while a docstring or default differs."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

from tdx_provider.specs import BASE_IMAGE, CLOUD_INIT_SEED, OVERLAY, POOL, TRUST_DOMAIN
from tdx_provider.specs.cloud_init_seed import SEED_USER
from tdx_provider.specs.fields import Field
from tdx_provider.specs.trust_domain import QGS

SDK = Path(__file__).resolve().parents[1] / "sdk/python/pulumi_tdx"
# (module, class) -> the spec fields its attributes document
CLASSES: dict[tuple[str, str], tuple[Field, ...]] = {
    ("pool.py", "PoolArgs"): POOL.public_inputs,
    ("base_image.py", "BaseImageArgs"): BASE_IMAGE.public_inputs,
    ("overlay.py", "OverlayArgs"): OVERLAY.public_inputs,
    ("cloud_init_seed.py", "CloudInitSeedArgs"): CLOUD_INIT_SEED.public_inputs,
    ("cloud_init_seed.py", "SeedUser"): SEED_USER.properties,
    ("trust_domain.py", "TrustDomainArgs"): TRUST_DOMAIN.public_inputs,
    ("trust_domain.py", "QuoteGenerationService"): QGS.properties,
}


def docstring(description: str) -> list[str]:
    """A field docstring as the SDK writes it: four spaces in, 100 columns at most."""
    lines = textwrap.wrap(description, width=100 - 4 - 3, break_on_hyphens=False)
    if len(lines) == 1 and len(lines[0]) <= 100 - 4 - 6:
        return [f'    """{lines[0]}"""']
    body = [f"    {line}" for line in lines]
    body[0] = f'    """{lines[0]}'
    body[-1] += '"""'
    return body


def attributes(tree: ast.Module, name: str) -> list[tuple[ast.AnnAssign, ast.Expr | None]]:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    found = []
    for i, node in enumerate(cls.body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            nxt = cls.body[i + 1] if i + 1 < len(cls.body) else None
            is_doc = (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                      and isinstance(nxt.value.value, str))
            found.append((node, nxt if is_doc else None))  # type: ignore[arg-type]
    return found


def synced(source: str, class_name: str, fields: tuple[Field, ...]) -> str:
    """``source`` with the docstrings of ``class_name``'s attributes taken from ``fields``."""
    by_name = {f.name: f for f in fields}
    lines = source.splitlines()
    edits = []
    for node, doc in attributes(ast.parse(source), class_name):
        spec = by_name.get(node.target.id)  # type: ignore[union-attr]
        if spec is None:
            continue
        new = docstring(spec.description)
        if doc is not None:
            edits.append((doc.lineno - 1, doc.end_lineno or doc.lineno, new))
        else:
            end = node.end_lineno or node.lineno
            edits.append((end, end, new))
    for start, end, new in sorted(edits, reverse=True):
        lines[start:end] = new
    return "\n".join(lines) + "\n"


def main() -> int:
    changed = []
    for (module, class_name), fields in CLASSES.items():
        path = SDK / module
        source = path.read_text()
        new = synced(source, class_name, fields)
        if new != source:
            path.write_text(new)
            changed.append(f"{module}:{class_name}")
    print("updated: " + (", ".join(changed) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

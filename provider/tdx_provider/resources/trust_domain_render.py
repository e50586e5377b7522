"""What ``tdxctl render`` prints: the domain XML a TrustDomain with given inputs would define.

The inputs go through the provider's own preview checks (the engine's
:class:`~tdx_provider.resources.trust_domain.TrustDomainResource` check:
field checks, the host's capacity, the QGS dialect of that libvirt, the default TDX firmware from
its domain capabilities) and the render is validated with that host's schema, exactly as at
``pulumi preview``; the disk's backing chain is read from the host's storage API, as at create.
Whether the host can *run* a TD is reported as warnings, not failures: the XML is for reviews and
bug reports (virt-install ``--print-xml``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdx_provider.errors import InputError, TdxError

RENDER_OWNER = {"project": "tdxctl", "stack": "render"}


@dataclass
class Rendered:
    xml: str
    warnings: list[str] = field(default_factory=list)


class RenderInputError(TdxError):
    """Inputs that fail the checks; ``failures`` are ``property: reason`` lines."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


def input_keys() -> frozenset[str]:
    from tdx_provider.specs import TRUST_DOMAIN

    return frozenset(f.name for f in TRUST_DOMAIN.public_inputs)


def load_inputs(path: Path) -> dict[str, Any]:
    """INPUTS.json: one object with TrustDomain keyword arguments (``qgs`` as an object)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(str(path), "must hold one JSON object of TrustDomain inputs")
    unknown = sorted(set(data) - input_keys())
    if unknown:
        raise InputError(unknown[0], f"is not a TrustDomain input (known: "
                         f"{', '.join(sorted(input_keys()))})")
    return data


def render_inputs(inputs: dict[str, Any], uri: str | None, root: Path) -> Rendered:
    """Check ``inputs`` as preview would (``uri`` overrides theirs) and render the XML."""
    from tdx_provider.connection import connect
    from tdx_provider.guest import xml as domain_xml
    from tdx_provider.guest.domain_spec import backing_chain, render_document
    from tdx_provider.resources.trust_domain import TRUST_DOMAIN_RESOURCE
    from tdx_provider.specs import TRUST_DOMAIN

    news = {**TRUST_DOMAIN.sdk_defaults(), **inputs}  # INPUTS.json holds SDK keyword args
    if uri is not None:
        news["uri"] = uri
    news["owner"] = {**RENDER_OWNER, "resource": str(news.get("name") or "td")}
    result = TRUST_DOMAIN_RESOURCE.check({}, news, readiness=False, root=root)
    if result.failures:
        raise RenderInputError([failure.reason for failure in result.failures])
    checked = result.inputs
    with connect(checked["uri"]) as conn:
        chain = backing_chain(conn, checked["overlay"])
    try:
        document = render_document(checked, chain)
    except InputError as exc:
        raise RenderInputError([str(exc)]) from exc
    return Rendered(domain_xml.indented(document), result.warnings)

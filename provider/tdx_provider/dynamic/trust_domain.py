"""TrustDomain: an Intel TDX trust domain (or, with ``tdx=False``, a regular VM)."""

from __future__ import annotations

from ._common import EngineProvider


class TrustDomainProvider(EngineProvider):
    """Pickled by reference into users' state: keep this module path and class name."""

    resource = "TrustDomain"

"""Pool: a libvirt ``dir`` storage pool."""

from __future__ import annotations

from ._common import EngineProvider


class PoolProvider(EngineProvider):
    """Pickled by reference into users' state: keep this module path and class name."""

    resource = "Pool"

"""BaseImage: a read-only base volume imported into a pool."""

from __future__ import annotations

from ._common import EngineProvider


class BaseImageProvider(EngineProvider):
    """Pickled by reference into users' state: keep this module path and class name."""

    resource = "BaseImage"

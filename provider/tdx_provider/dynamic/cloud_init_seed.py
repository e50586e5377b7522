"""CloudInitSeed: a NoCloud ``cidata`` volume (user-data, meta-data, network-config) in a pool."""

from __future__ import annotations

from ._common import EngineProvider


class CloudInitSeedProvider(EngineProvider):
    """Pickled by reference into users' state: keep this module path and class name."""

    resource = "CloudInitSeed"

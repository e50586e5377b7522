"""Overlay: a qcow2 volume backed by a base image; grows in place, never shrinks."""

from __future__ import annotations

from ._common import EngineProvider


class OverlayProvider(EngineProvider):
    """Pickled by reference into users' state: keep this module path and class name."""

    resource = "Overlay"

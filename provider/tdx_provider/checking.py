"""Checking inputs: the engine's "not known yet" marker and its failure collector.

An adapter turns its framework's unknown values (Pulumi's ``Unknown`` objects and wire sentinel)
into :data:`UNKNOWN` on the way in and back on the way out; the engine never imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tdx_provider.errors import InputError

T = TypeVar("T")


class _Unknown:
    """A value that is not known yet (an output of a resource not created yet)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    """True for :data:`UNKNOWN`, or a list or dict that holds one."""
    if value is UNKNOWN:
        return True
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    return False


@dataclass(frozen=True)
class Failure:
    """A check failure: ``property`` is the top-level input, ``reason`` names the item."""

    property: str
    reason: str


def top_level(key: str) -> str:
    """The input a property path starts in: ``gpus[1]`` -> ``gpus``, ``qgs.path`` -> ``qgs``."""
    for i, char in enumerate(key):
        if char in "[.":
            return key[:i]
    return key


class Checker:
    """Collects failures by property while normalising inputs (a copy of the new inputs)."""

    def __init__(self, news: dict[str, Any]) -> None:
        self.inputs = dict(news)
        self.failures: list[Failure] = []

    def field(self, key: str, validate: Callable[[str, Any], T], *, optional: bool = False) -> None:
        value = self.inputs.get(key)
        if is_unknown(value) or (optional and value is None):
            return
        try:
            self.inputs[key] = validate(key, value)
        except InputError as exc:
            self.fail(exc.field, exc.reason)

    def fail(self, key: str, reason: str) -> None:
        """``key`` may be a path into a list or dict (``gpus[1]``, ``qgs.path``): the failure
        is filed under the top-level input and its reason names the item."""
        self.failures.append(Failure(top_level(key), f"{key}: {reason}"))

    def run(self, key: str, action: Callable[[], object]) -> None:
        """Run a check that may raise InputError (e.g. one that asks libvirt)."""
        try:
            action()
        except InputError as exc:
            self.fail(exc.field, exc.reason)
        except Exception as exc:  # a host we cannot reach is a failure of that property
            self.fail(key, str(exc))

    def known(self, *keys: str) -> bool:
        failed = {f.property for f in self.failures}
        return all(not is_unknown(self.inputs.get(k)) and k not in failed for k in keys)

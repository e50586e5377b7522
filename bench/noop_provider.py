"""A dynamic provider that does no libvirt work: the Pulumi engine's own cost.

Imported (not defined in ``__main__``) so that, like our real providers, it is pickled into
state by reference and the no-op preview sees no ``__provider`` change.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ResourceProvider


class NoopProvider(ResourceProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = any(olds.get(k) != v for k, v in news.items() if k != "__provider")
        return DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(props["name"], {**props, "path": f"/noop/{props['name']}"})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None

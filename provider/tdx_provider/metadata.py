"""Our mark on libvirt objects: an owner tag in our own XML namespace.

Domains carry ``<metadata><ptdx:instance xmlns:ptdx=NAMESPACE>…</ptdx:instance></metadata>``.
Volumes cannot carry metadata, so each pool keeps a ledger (see :mod:`tdx_provider.storage.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "https://pulumi-tdx.dev/xmlns/domain/1"
PREFIX = "ptdx"


@dataclass(frozen=True)
class Owner:
    """Who declared an object: Pulumi project, stack and resource name (or a tool name)."""

    project: str
    stack: str
    resource: str

    def __str__(self) -> str:
        return f"{self.project}/{self.stack}/{self.resource}"

    @classmethod
    def parse(cls, text: str) -> Owner:
        project, stack, resource = [*text.split("/", 2), "", ""][:3]
        return cls(project, stack, resource)

    def as_dict(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack, "resource": self.resource}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Owner:
        return cls(data.get("project", ""), data.get("stack", ""), data.get("resource", ""))


def owner_matches(owner: Owner, pattern: str) -> bool:
    """``PROJECT``, ``PROJECT/STACK`` or ``PROJECT/STACK/RESOURCE`` (whole components): the
    selector ``tdxctl delete --owner`` and ``pool-cleanup --owner`` take."""
    wanted = pattern.split("/", 2)
    return [owner.project, owner.stack, owner.resource][: len(wanted)] == wanted

"""The engine's resource controllers: one generic check and diff over a spec, and the hooks each
resource fills in (more checks, create, read, update, delete).

Adapters (the Pulumi dynamic providers, the native provider plugin, ``tdxctl``) call these with
plain dicts keyed by the spec's snake_case names and :data:`~tdx_provider.checking.UNKNOWN` for
values not known yet; they translate results and errors, and decide nothing.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tdx_provider.checking import Checker, Failure, is_unknown
from tdx_provider.metadata import Owner
from tdx_provider.specs.fields import Change, ResourceSpec

# Overrides the host root for TDX checks and GPU preparation (tests point it at a fixture tree).
HOST_ROOT_ENV = "PULUMI_TDX_HOST_ROOT"


def host_root() -> Path:
    return Path(os.environ.get(HOST_ROOT_ENV, "/"))


@dataclass(frozen=True)
class Checked:
    """Checked inputs (normalised, defaults applied), failures by property, and warnings."""

    inputs: dict[str, Any]
    failures: list[Failure]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Diff:
    """``changes`` False when nothing changed; ``replaces`` names exactly the inputs that force
    a replacement, ``updates`` those applied in place."""

    changes: bool
    replaces: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()
    delete_before_replace: bool | None = None

    @property
    def changed(self) -> tuple[str, ...]:
        return self.replaces + self.updates


@dataclass(frozen=True)
class State:
    """What create and read return: the resource's id and all its properties."""

    id: str
    outputs: dict[str, Any]


_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def auto_name(resource_name: str, olds: dict[str, Any], news: dict[str, Any]) -> tuple[str, bool]:
    """Return (name, auto_named). A given name is used as-is; otherwise keep the previous
    auto-name, or make one from the resource name plus a random suffix (Pulumi-style)."""
    given = news.get("name")
    if given is not None:
        return given, False
    if olds.get("auto_named") and olds.get("name"):
        return olds["name"], True
    stem = _INVALID_NAME_CHARS.sub("-", resource_name).strip("-.") or "td"
    return f"{stem[:54]}-{secrets.token_hex(4)}", True


def owner_of(props: dict[str, Any]) -> Owner:
    return Owner.from_dict(props.get("owner") or {})


def changed_keys(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...],
                 keep_when_none: tuple[str, ...]) -> tuple[str, ...]:
    """Keys whose new input differs from the old output. For ``keep_when_none`` keys, None
    means "whatever it is now" (a computed default such as a detected format or the CID)."""
    changed = []
    for key in keys:
        new = news.get(key)
        if is_unknown(new):
            changed.append(key)
        elif new is None and key in keep_when_none:
            continue
        elif olds.get(key) != new:
            changed.append(key)
    return tuple(changed)


class Resource:
    """A resource's behaviour over its spec. Subclasses set :attr:`spec` and override hooks."""

    spec: ClassVar[ResourceSpec]
    # Auto-named resources get "<resource name>-<8 hex>" when no name is given.
    auto_named: ClassVar[bool] = True

    # -- check ------------------------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any], *,
              readiness: bool = True, root: Path | None = None) -> Checked:
        """Defaults, field validation (each failure names its property), then
        :meth:`check_more` (checks across fields and against the host)."""
        checker = Checker(news)
        for f in self.spec.inputs:
            if f.has_default and not f.sdk_default and checker.inputs.get(f.name) is None:
                checker.inputs[f.name] = _copy(f.default)
        if self.auto_named:
            resource = (news.get("owner") or {}).get("resource") or self.spec.name.lower()
            checker.inputs["name"], checker.inputs["auto_named"] = auto_name(resource, olds,
                                                                            news)
        for f in self.spec.public_inputs:
            value = checker.inputs.get(f.name)
            if f.validate is not None:
                checker.field(f.name, f.validate, optional=not f.required)
            elif f.required and value is None:
                checker.fail(f.name, "is required")
        warnings = self.check_more(olds, checker, readiness=readiness,
                                   root=root or host_root())
        return Checked(checker.inputs, checker.failures, warnings or [])

    def check_more(self, olds: dict[str, Any], checker: Checker, *, readiness: bool,
                   root: Path) -> list[str] | None:
        """Checks across fields or against the host; may fill computed inputs."""
        return None

    # -- diff -------------------------------------------------------------------------------
    def diff(self, olds: dict[str, Any], news: dict[str, Any]) -> Diff:
        """Old outputs against new checked inputs, by the spec's change rules."""
        legacy = self.spec.legacy_defaults()
        olds = {**legacy, **{k: v for k, v in olds.items() if not (k in legacy and v is None
                                                                  and legacy[k] is not None)}}
        news = {**legacy, **news}
        self.refuse(olds, news)
        keep = self.spec.keep_when_none
        replaces = changed_keys(olds, news, self.spec.keys(Change.REPLACE), keep)
        updates = changed_keys(olds, news, self.spec.keys(Change.UPDATE), keep)
        if not replaces and not updates and not self.force_update(olds):
            return Diff(changes=False)
        dbr = self.delete_before_replace(olds, news) if replaces else None
        return Diff(True, replaces, updates, dbr)

    def refuse(self, olds: dict[str, Any], news: dict[str, Any]) -> None:
        """Raise InputError for a change that must not happen (e.g. shrinking a disk)."""

    def delete_before_replace(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        """A fixed name cannot exist twice: delete the old one first."""
        return not news.get("auto_named")

    def force_update(self, olds: dict[str, Any]) -> bool:
        """An update even without changed inputs (e.g. to start a stopped domain)."""
        return False

    # -- lifecycle --------------------------------------------------------------------------
    def begin(self, operation: str, props: dict[str, Any]) -> None:
        """Called by adapters before an operation. After a create, update or delete this
        process may soon ask which domains use a volume: warm that listing now."""
        uri = props.get("uri")
        if operation in ("create", "update", "delete") and isinstance(uri, str):
            from tdx_provider.storage import disk_users

            disk_users.warm(uri)

    def create(self, props: dict[str, Any]) -> State:
        raise NotImplementedError

    def read(self, id_: str, props: dict[str, Any]) -> State | None:
        """The resource as it is now, or None when it is gone."""
        raise NotImplementedError

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{self.spec.name} has no in-place updates")

    def delete(self, id_: str, props: dict[str, Any]) -> str | None:
        """Remove it; returns a line for the user, or None."""
        raise NotImplementedError


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value

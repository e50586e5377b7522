"""Helpers shared by the adapters: unknown values, check failures, diff rules, naming."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pulumi.dynamic import CheckFailure, DiffResult
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

from tdx_provider.errors import InputError

T = TypeVar("T")


def is_unknown(value: Any) -> bool:
    """True for a value Pulumi does not know yet (an output of a resource not created yet)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    return False


def with_unknown_sentinels(value: Any) -> Any:
    """Replace ``Unknown`` objects (as preview deserialises them) by the wire sentinel, which
    serialises back as "unknown" in the checked inputs."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, list):
        return [with_unknown_sentinels(v) for v in value]
    if isinstance(value, dict):
        return {k: with_unknown_sentinels(v) for k, v in value.items()}
    return value


class Checker:
    """Collects check failures by property name while normalising inputs."""

    def __init__(self, news: dict[str, Any]) -> None:
        self.inputs = {key: with_unknown_sentinels(value) for key, value in news.items()}
        self.failures: list[CheckFailure] = []

    def field(self, key: str, validate: Callable[[str, Any], T], *, optional: bool = False) -> None:
        value = self.inputs.get(key)
        if is_unknown(value) or (optional and value is None):
            return
        try:
            self.inputs[key] = validate(key, value)
        except InputError as exc:
            self.fail(exc.field, exc.reason)

    def fail(self, key: str, reason: str) -> None:
        self.failures.append(CheckFailure(key, f"{key}: {reason}"))

    def run(self, key: str, action: Callable[[], object]) -> None:
        """Run a check that may raise InputError (e.g. one that asks libvirt)."""
        try:
            action()
        except InputError as exc:
            self.fail(exc.field, exc.reason)
        except Exception as exc:  # a host we cannot reach is a failure of that property
            self.fail(key, str(exc))

    def known(self, *keys: str) -> bool:
        failed = {f.property.split("[")[0] for f in self.failures}
        return all(not is_unknown(self.inputs.get(k)) and k not in failed for k in keys)


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


def changed_keys(
    olds: dict[str, Any], news: dict[str, Any], keys: Iterable[str], optional: Iterable[str] = ()
) -> list[str]:
    """Keys whose new input differs from the old output. For ``optional`` keys, None means
    "whatever it is now" (a computed default such as a detected format or the auto CID)."""
    optional = frozenset(optional)
    changed = []
    for key in keys:
        new = news.get(key)
        if is_unknown(new):
            changed.append(key)
        elif new is None and key in optional:
            continue
        elif olds.get(key) != new:
            changed.append(key)
    return changed


def diff(
    olds: dict[str, Any],
    news: dict[str, Any],
    *,
    replace_keys: Iterable[str],
    update_keys: Iterable[str] = (),
    optional: Iterable[str] = (),
    delete_before_replace: bool,
    force_update: bool = False,
) -> DiffResult:
    """``changes=False`` when nothing changed (else the engine would update everything);
    ``replaces`` names exactly the keys that force a replacement."""
    replaces = changed_keys(olds, news, replace_keys, optional)
    updates = changed_keys(olds, news, update_keys, optional)
    if not replaces and not updates and not force_update:
        return DiffResult(changes=False, replaces=[])
    return DiffResult(
        changes=True,
        replaces=replaces,
        delete_before_replace=delete_before_replace if replaces else None,
    )


def owner_of(props: dict[str, Any]) -> Any:
    from tdx_provider.metadata import Owner

    return Owner.from_dict(props.get("owner") or {})


def whole_numbers(value: Any) -> Any:
    """Pulumi's wire format carries every number as a double: give integers back their type."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    return value


class ProviderError(Exception):
    """What the engine shows the user: our message, without the engine's internal frames."""


F = TypeVar("F", bound=Callable[..., Any])


def adapter(method: F) -> F:
    """Wrap a provider method: integer-typed property dicts in, engine errors out as one clear
    message (the property name first for input errors)."""
    import functools

    from tdx_provider.errors import TdxError

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        import libvirt  # at call time: the SDK imports this module and knows nothing of libvirt

        args = tuple(whole_numbers(a) if isinstance(a, dict) else a for a in args)
        try:
            return method(self, *args)
        except TdxError as exc:
            raise ProviderError(str(exc)) from None
        except libvirt.libvirtError as exc:  # e.g. libvirtd went away in the middle of a call
            raise ProviderError(f"{method.__name__}: libvirt: {exc}") from None

    return wrapper  # type: ignore[return-value]

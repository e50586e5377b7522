"""Helpers shared by the adapters: unknown values, check failures, diff rules, naming."""

from __future__ import annotations

import re
import secrets
import sys
import threading
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
        """``key`` may be a path into a list or dict (``gpus[1]``, ``qgs.path``): the engine
        looks a failure's property up as a top-level input (it shows ``gpus[1]`` as ``{<nil>}``),
        so the property is the top-level key and the reason names the item."""
        self.failures.append(CheckFailure(top_level(key), f"{key}: {reason}"))

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


def top_level(key: str) -> str:
    """The input a property path starts in: ``gpus[1]`` -> ``gpus``, ``qgs.path`` -> ``qgs``."""
    return re.split(r"[\[.]", key, maxsplit=1)[0]


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
    """What the engine shows the user: one line of ours, without a traceback.

    Pulumi's dynamic-provider server answers every exception with ``traceback.format_exc()``,
    which honours ``sys.tracebacklimit``: with 0 it prints no frames and no "Traceback" header,
    only ``<type>: <message>``. So the limit is 0 from the moment we raise a ProviderError until
    the server formats it (``str()`` is the last thing formatting does, after the frames were
    skipped); other exceptions, such as a bug of ours, keep their traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._quiet = _QuietTracebacks.enter()

    def __str__(self) -> str:
        if self._quiet:
            self._quiet = False
            _QuietTracebacks.leave()
        return str(self.args[0])


# Shown as the type before our message: "pulumi-tdx: Pool 'pool': create failed: ...".
ProviderError.__module__ = "builtins"
ProviderError.__qualname__ = "pulumi-tdx"


class _QuietTracebacks:
    """``sys.tracebacklimit = 0`` while at least one ProviderError awaits formatting (the
    server runs 4 calls at once); the previous value comes back after the last one."""

    _lock = threading.Lock()
    _count = 0
    _saved: Any = None

    @classmethod
    def enter(cls) -> bool:
        with cls._lock:
            if cls._count == 0:
                cls._saved = getattr(sys, "tracebacklimit", _UNSET)
                sys.tracebacklimit = 0
            cls._count += 1
        return True

    @classmethod
    def leave(cls) -> None:
        with cls._lock:
            cls._count -= 1
            if cls._count == 0:
                if cls._saved is _UNSET:
                    del sys.tracebacklimit
                else:
                    sys.tracebacklimit = cls._saved


_UNSET = object()

# What failed, in the user's words, per provider method.
_OPERATIONS = {"check": "checking the inputs", "diff": "diff", "create": "create",
               "read": "refresh", "update": "update", "delete": "delete"}


def _what_to_do(exc: BaseException, uri: str) -> str:
    """The next step for a failure whose message does not already say one."""
    from tdx_provider.errors import (
        ConflictError,
        HostNotReadyError,
        InputError,
        InUseError,
    )

    if isinstance(exc, InputError):
        return f"change {exc.field} in the program and run again"
    if isinstance(exc, ConflictError):
        return "choose another name or remove the other object"
    if isinstance(exc, InUseError):
        return "remove what uses it first"
    if isinstance(exc, HostNotReadyError):
        return "see `tdxctl host-check`, or set tdx=False"
    if isinstance(exc, OSError):
        return "check that file or URL and run again"
    return f"check libvirtd at {uri} (`tdxctl --uri {uri} list`) and run again"


def failure_line(kind: str, props: dict[str, Any], operation: str, exc: BaseException) -> str:
    """``<Kind> '<resource>': <operation> failed: <why>; <what to do>``. Engine messages carry
    their own advice after a "; "; the others get one by kind of failure."""
    resource = (props.get("owner") or {}).get("resource") or props.get("name") or "?"
    why = str(exc).strip() or type(exc).__name__
    if type(exc).__module__ == "libvirt":
        why = f"libvirt: {why}"
    line = f"{kind} {resource!r}: {_OPERATIONS.get(operation, operation)} failed: {why}"
    if "; " not in why:
        line += f"; {_what_to_do(exc, props.get('uri') or 'qemu:///system')}"
    return " ".join(line.split())  # one line, whatever the message held


F = TypeVar("F", bound=Callable[..., Any])


# Operations after which this provider process may check which domains use a volume.
_WARMING = frozenset({"create", "update", "delete"})


def adapter(method: F) -> F:
    """Wrap a provider method: integer-typed property dicts in; failures a user can cause or
    meet (our engine's errors, libvirt's, files and URLs) out as one line of ours."""
    import functools

    from tdx_provider.errors import TdxError

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        import libvirt  # at call time: the SDK imports this module and knows nothing of libvirt

        args = tuple(whole_numbers(a) if isinstance(a, dict) else a for a in args)
        uri = next((a.get("uri") for a in args if isinstance(a, dict) and a.get("uri")), None)
        if isinstance(uri, str) and method.__name__ in _WARMING:
            from tdx_provider.storage import disk_users

            disk_users.warm(uri)  # a later delete's scan then needs no first listing
        try:
            return method(self, *args)
        except (TdxError, libvirt.libvirtError, OSError) as exc:
            props = next((a for a in reversed(args) if isinstance(a, dict)), {})
            kind = type(self).__name__.removesuffix("Provider")
            raise ProviderError(failure_line(kind, props, method.__name__, exc)) from None

    return wrapper  # type: ignore[return-value]

"""Failures as the user reads them: one line that names the resource, the operation and what
to do next, the same through every adapter."""

from __future__ import annotations

from typing import Any

from tdx_provider.connection import DEFAULT_URI
from tdx_provider.errors import ConflictError, HostNotReadyError, InputError, InUseError

# What failed, in the user's words, per operation.
OPERATIONS = {"check": "checking the inputs", "diff": "diff", "create": "create",
              "read": "refresh", "update": "update", "delete": "delete"}


def what_to_do(exc: BaseException, uri: str) -> str:
    """The next step for a failure whose message does not already say one."""
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
    line = f"{kind} {resource!r}: {OPERATIONS.get(operation, operation)} failed: {why}"
    if "; " not in why:
        uri = props.get("uri")
        line += f"; {what_to_do(exc, uri if isinstance(uri, str) else DEFAULT_URI)}"
    return " ".join(line.split())  # one line, whatever the message held

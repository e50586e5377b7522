"""The engine's error hierarchy. Messages tell the user what to change."""

from __future__ import annotations


class TdxError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(TdxError):
    """An input value is not acceptable. ``field`` names the property."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ConflictError(TdxError):
    """Something that is not ours (or does not match) already holds a name or path."""


class InUseError(TdxError):
    """Refused because something still depends on the object (names the holder)."""


class HostNotReadyError(TdxError):
    """The host cannot run what was asked (e.g. TDX is not enabled). Carries the reasons."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message + ": " + "; ".join(reasons))
        self.reasons = reasons


class TimedOutError(TdxError):
    """An operation outlived the time its caller gave it (``customTimeouts``); what it had
    made so far was removed."""


class LibvirtOperationError(TdxError):
    """A libvirt call failed; the message says which step and on what object."""

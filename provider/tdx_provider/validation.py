"""Input validation shared by the providers' ``check`` and by ``tdxctl``.

Every function takes the property name first so that the error it raises names it, and returns
the normalised value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tdx_provider.errors import InputError

NAME_MAX = 63
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Schemes we know how to drive. Remote transports of the QEMU driver are fine; the test driver
# is libvirt's own in-memory hypervisor (used by our fast tests).
URI_SCHEMES = frozenset(
    {"qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix", "qemu+libssh", "qemu+libssh2",
     "qemu+ext", "test"}
)


def name(field: str, value: object) -> str:
    """A libvirt object name that is also safe as a file name: ``[A-Za-z0-9][A-Za-z0-9._-]*``."""
    if not isinstance(value, str) or not value:
        raise InputError(field, "must be a non-empty string")
    if len(value) > NAME_MAX:
        raise InputError(field, f"must be at most {NAME_MAX} characters (got {len(value)})")
    if ".." in value:
        raise InputError(field, f"{value!r} must not contain '..'")
    if not _NAME_RE.fullmatch(value):  # match() would let a trailing newline through ($)
        raise InputError(
            field,
            f"{value!r} may only contain letters, digits, '.', '_' and '-', and must start "
            "with a letter or digit",
        )
    return value


def absolute_path(
    field: str, value: object, *, must_exist: bool = True, directory: bool = False
) -> str:
    """An absolute local path; when ``must_exist``, it must exist (as a file or a directory)."""
    if not isinstance(value, str) or not value:
        raise InputError(field, "must be a non-empty absolute path")
    if "\x00" in value or "\n" in value:
        raise InputError(field, "must not contain NUL or newline characters")
    if not os.path.isabs(value):
        raise InputError(field, f"{value!r} must be an absolute path")
    normalised = os.path.normpath(value)
    if must_exist:
        if directory and not os.path.isdir(normalised):
            raise InputError(field, f"directory {value!r} does not exist")
        if not directory and not os.path.isfile(normalised):
            raise InputError(field, f"file {value!r} does not exist")
    return normalised


def uri(field: str, value: object) -> str:
    """A libvirt connection URI with a scheme we support."""
    if not isinstance(value, str) or "://" not in value or not value.isprintable():
        raise InputError(field, f"{value!r} is not a libvirt URI such as 'qemu:///system'")
    try:
        scheme = urlsplit(value).scheme
    except ValueError as exc:  # e.g. an unbalanced '[' in the host part
        raise InputError(field, f"{value!r} is not a valid URI: {exc}") from exc
    if scheme not in URI_SCHEMES:
        allowed = ", ".join(sorted(URI_SCHEMES))
        raise InputError(field, f"unsupported URI scheme {scheme!r}; use one of {allowed}")
    return value


def integer(field: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An integer (bools and floats with a fraction are refused) within bounds."""
    if isinstance(value, bool):
        raise InputError(field, "must be an integer, not a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(field, f"must be a whole number (got {value})")
        value = int(value)
    if not isinstance(value, int):
        raise InputError(field, f"must be an integer (got {type(value).__name__})")
    if value < minimum:
        raise InputError(field, f"must be at least {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise InputError(field, f"must be at most {maximum} (got {value})")
    return value


def port(field: str, value: object) -> int:
    """A TCP port, 0 meaning 'pick a free one'."""
    return integer(field, value, minimum=0, maximum=65535)


def boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InputError(field, f"must be true or false (got {value!r})")
    return value


def sha256_hex(field: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise InputError(field, "must be 64 hexadecimal characters (a SHA-256 digest)")
    return value.lower()


@dataclass(frozen=True, order=True)
class PciAddress:
    """A PCI address (BDF with domain): ``DDDD:BB:SS.F``."""

    domain: int
    bus: int
    slot: int
    function: int

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"

    @property
    def nodedev_name(self) -> str:
        """libvirt's node device name for this address, e.g. ``pci_0000_3b_00_0``."""
        return f"pci_{self.domain:04x}_{self.bus:02x}_{self.slot:02x}_{self.function:x}"


_BDF_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,4}):)?(?P<bus>[0-9a-fA-F]{1,2}):"
    r"(?P<slot>[0-9a-fA-F]{1,2})\.(?P<function>[0-7])$"
)


def pci_address(field: str, value: object) -> PciAddress:
    """Parse ``DDDD:BB:SS.F`` or ``BB:SS.F`` (domain 0000), hex, case-insensitive."""
    if not isinstance(value, str):
        raise InputError(field, f"must be a PCI address string like '0000:3b:00.0' (got {value!r})")
    match = _BDF_RE.match(value.strip())
    if not match:
        raise InputError(field, f"{value!r} is not a PCI address of the form DDDD:BB:SS.F")
    slot = int(match["slot"], 16)
    if slot > 0x1F:
        raise InputError(field, f"{value!r}: PCI slot must be 00-1f")
    return PciAddress(
        domain=int(match["domain"] or "0", 16),
        bus=int(match["bus"], 16),
        slot=slot,
        function=int(match["function"]),
    )


def pci_addresses(field: str, values: object) -> list[PciAddress]:
    """A list of distinct PCI addresses, in the order given."""
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InputError(field, "must be a list of PCI addresses")
    seen: set[PciAddress] = set()
    result: list[PciAddress] = []
    for index, raw in enumerate(values):
        address = pci_address(f"{field}[{index}]", raw)
        if address in seen:
            raise InputError(f"{field}[{index}]", f"{address} is listed twice")
        seen.add(address)
        result.append(address)
    return result


def argv(field: str, value: object) -> list[str]:
    """A command as an argv list (never a shell string)."""
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InputError(field, "must be a non-empty list of strings (an argv, never a shell line)")
    if not all(isinstance(item, str) for item in value):
        raise InputError(field, "every element must be a string")
    return list(value)

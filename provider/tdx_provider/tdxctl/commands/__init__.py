"""The registry of ``tdxctl`` commands: name -> (module, class, summary), imported lazily.

As pip's ``commands/__init__.py``: ``tdxctl --help`` needs only the summaries, and a command's
module (with what it imports: the render pulls in the TrustDomain checks) is imported only when
that command runs. The order here is the order ``--help`` lists them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from tdx_provider.tdxctl.base import Command


@dataclass(frozen=True)
class CommandInfo:
    module: str
    class_name: str
    summary: str


_PACKAGE = "tdx_provider.tdxctl.commands"

COMMANDS: dict[str, CommandInfo] = {
    "list": CommandInfo(
        f"{_PACKAGE}.list", "ListCommand",
        "every domain on the host; ours show their owner"),
    "pool-info": CommandInfo(
        f"{_PACKAGE}.pool_info", "PoolInfoCommand",
        "pool state and sizes, and its volumes (kind, backing volume, user)"),
    "pool-cleanup": CommandInfo(
        f"{_PACKAGE}.pool_cleanup", "PoolCleanupCommand",
        "delete our overlays that no domain (running or defined) uses"),
    "delete": CommandInfo(
        f"{_PACKAGE}.delete", "DeleteCommand",
        "graceful teardown (ACPI, bounded wait, force, undefine), in parallel"),
    "host-check": CommandInfo(
        f"{_PACKAGE}.host_check", "HostCheckCommand",
        "can this host run TDX trust domains? (exit status 0 only if so)"),
    "measure": CommandInfo(
        f"{_PACKAGE}.measure", "MeasureCommand",
        "expected MRTD of a trust domain from its firmware (as the preview shows it)"),
    "render": CommandInfo(
        f"{_PACKAGE}.render", "RenderCommand",
        "print the domain XML a TrustDomain with these inputs would define"),
}


def create_command(name: str) -> Command:
    """The command registered as ``name`` (its module imported now)."""
    info = COMMANDS[name]
    command_class = getattr(importlib.import_module(info.module), info.class_name)
    command: Command = command_class(name=name, summary=info.summary)
    return command

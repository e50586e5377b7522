"""Any command that is not ours runs ``virsh -c URI ...`` (as tdvirsh did); ``tdxctl virsh
ARGS...`` reaches virsh's own commands that ours shadow (``tdxctl virsh list``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Collection, Sequence

from tdx_provider.connection import DEFAULT_URI
from tdx_provider.tdxctl.base import VirshMissingError

VIRSH_COMMAND = "virsh"


def run_virsh(uri: str, args: Sequence[str]) -> int:
    """``virsh -c URI ARGS...`` as an argv (never through a shell); its exit code."""
    sys.stdout.flush()
    try:
        return subprocess.run(["virsh", "-c", uri, *args], check=False).returncode
    except FileNotFoundError:
        raise VirshMissingError(
            "virsh is not installed (it comes with libvirt-clients)") from None


def take_uri(tokens: Sequence[str], uri: str = DEFAULT_URI) -> tuple[str, list[str]]:
    """Pull ``--uri X`` / ``--uri=X`` out of ``tokens``: (the last URI given, the rest)."""
    rest: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--uri" and index + 1 < len(tokens):
            uri = tokens[index + 1]
            index += 2
            continue
        if token.startswith("--uri="):
            uri = token.partition("=")[2]
        else:
            rest.append(token)
        index += 1
    return uri, rest


def passthrough(argv: Sequence[str], ours: Collection[str]) -> tuple[str, list[str]] | None:
    """(uri, virsh args) when the command is not one of ``ours``, else None (argparse
    decides)."""
    head = list(argv)
    index = 0
    while index < len(head) and head[index].startswith("-"):
        index += 2 if head[index] == "--uri" else 1
    if index >= len(head) or head[index] in ours:
        return None
    uri, before = take_uri(head[:index])
    if before:  # options other than --uri before a foreign command: let argparse complain
        return None
    command = head[index]
    uri, after = take_uri(head[index + 1:], uri)
    return uri, after if command == VIRSH_COMMAND else [command, *after]

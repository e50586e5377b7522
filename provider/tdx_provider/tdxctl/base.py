"""The shared core of ``tdxctl`` commands: the :class:`Command` base, the exceptions a command
raises and the exit codes they map to, the common options and argument types, and output.

A command parses, calls the engine and prints; everything else is here once. As in pip's
``cli/base_command.py``, one wrapper (:func:`run_guarded`) turns what a command raises into a
``tdxctl: ...`` line and a named exit code, so no command prints a traceback or picks a number.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import libvirt

from tdx_provider import validation
from tdx_provider.connection import DEFAULT_URI
from tdx_provider.errors import InputError, TdxError
from tdx_provider.tdxctl import tables

PROG = "tdxctl"


class ExitCode(enum.IntEnum):
    """What ``tdxctl`` exits with (``virsh`` passthrough: virsh's own code)."""

    OK = 0
    FAILED = 1  # the command ran and failed, or the host is not ready (host-check)
    USAGE = 2  # bad options: nothing was touched
    NO_VIRSH = 127  # passthrough without virsh installed (a shell's "command not found")
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class CommandError(Exception):
    """A command cannot go on: each message is one ``tdxctl: ...`` line on stderr."""

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class UsageError(CommandError):
    """Options that do not go together (argparse cannot say so itself)."""

    exit_code = ExitCode.USAGE


class VirshMissingError(CommandError):
    """The passthrough needs virsh."""

    exit_code = ExitCode.NO_VIRSH


def fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def warn(message: str) -> None:
    fail(f"warning: {message}")


def run_guarded(action: Callable[[], int]) -> int:
    """``action()``, with what it raises mapped to a message on stderr and an exit code."""
    try:
        return int(action())
    except CommandError as exc:
        for message in exc.messages:
            fail(message)
        return int(exc.exit_code)
    except (TdxError, libvirt.libvirtError) as exc:
        fail(str(exc))
        return int(ExitCode.FAILED)
    except KeyboardInterrupt:
        fail("interrupted")
        return int(ExitCode.INTERRUPTED)


class Command:
    """One ``tdxctl`` command: its options, the checks argparse cannot make, and its run.

    ``common_options``: the command takes ``--uri`` (after its name too) and ``--json``."""

    common_options: ClassVar[bool] = True

    def __init__(self, name: str, summary: str) -> None:
        self.name = name
        self.summary = summary

    def setup(self, parser: argparse.ArgumentParser) -> None:
        """All options of the command, common ones first (as ``--help`` lists them)."""
        if self.common_options:
            parser.add_argument("--uri", default=argparse.SUPPRESS,
                                help=f"libvirt connection URI (default {DEFAULT_URI})")
            parser.add_argument("--json", action="store_true",
                                help="print a JSON list of objects")
        self.add_options(parser)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The command's own options."""

    def check(self, args: argparse.Namespace) -> None:
        """Raise :class:`UsageError` for options that do not go together."""

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError

    def main(self, args: argparse.Namespace) -> int:
        """Check the options and the URI (usage errors), then run, all through the wrapper."""
        return run_guarded(lambda: self._checked_run(args))

    def _checked_run(self, args: argparse.Namespace) -> int:
        self.check(args)
        try:
            validation.uri("--uri", args.uri)
        except InputError as exc:
            raise UsageError(str(exc)) from exc
        return self.run(args)


# --- argument types --------------------------------------------------------------------------


def root_directory(text: str) -> Path:
    """``--root DIR``: an existing directory."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return path


def add_root_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--root", type=root_directory, default=Path("/"), metavar="DIR",
                        help=help_text)


OWNER_METAVAR = "PROJECT[/STACK[/RESOURCE]]"


# --- output ----------------------------------------------------------------------------------


def plain(item: Any) -> dict[str, Any]:
    """A row as a dict: an engine dataclass by its fields, in order; a mapping as it is."""
    if is_dataclass(item) and not isinstance(item, type):
        return asdict(item)
    return dict(item)


def print_json(items: Sequence[Any]) -> None:
    print(tables.to_json([plain(item) for item in items]))


def emit(items: Sequence[Any], columns: Sequence[tables.Column], as_json: bool,
         sizes: Sequence[str] = ()) -> None:
    """The rows as JSON, or as a table with the ``sizes`` columns in binary units."""
    if as_json:
        print_json(items)
        return
    rows = [plain(item) for item in items]
    shown = [{**row, **{key: tables.size(row.get(key)) for key in sizes}} for row in rows]
    print(tables.render(shown, columns))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"

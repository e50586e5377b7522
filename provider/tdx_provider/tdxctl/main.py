"""``tdxctl``: answers an operator needs about a pulumi-tdx host, between stack runs.

Each command is one module in :mod:`tdx_provider.tdxctl.commands` that parses, calls the engine
and prints; the behaviour is the engine's, shared with the provider:

- ``list``: :mod:`tdx_provider.guest.inventory` (our owner tag, IP, SSH host port, vsock CID);
- ``pool-info``: :mod:`tdx_provider.storage.inventory` (kinds from the ledger, backing
  volumes, users from :mod:`~tdx_provider.storage.disk_users`);
- ``pool-cleanup``: :mod:`tdx_provider.storage.cleanup` (orphans, under the pool lock);
- ``delete``: :mod:`tdx_provider.guest.teardown` (ACPI, bounded wait, force, undefine, in
  parallel; the overlays are released in the ledger);
- ``host-check``: :mod:`tdx_provider.host.report`, the checks preview runs for a TD;
- ``measure``: :mod:`tdx_provider.host.expected_mrtd`, the MRTD the TD preview shows;
- ``render``: :mod:`tdx_provider.resources.trust_domain_render`, the preview checks and render of a
  TrustDomain.

Any other command runs ``virsh -c URI ...`` (:mod:`~tdx_provider.tdxctl.commands.virsh`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tdx_provider import __version__
from tdx_provider.connection import DEFAULT_URI
from tdx_provider.tdxctl.base import PROG, Command, ExitCode, run_guarded
from tdx_provider.tdxctl.commands import COMMANDS, create_command
from tdx_provider.tdxctl.commands.virsh import VIRSH_COMMAND, passthrough, run_virsh


def build_parser(tokens: Sequence[str] = ()) -> tuple[argparse.ArgumentParser,
                                                      dict[str, Command]]:
    """The parser, with the options of each command named in ``tokens`` (the one argparse
    will pick is among them; the others are listed by their summary only, never imported)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate a pulumi-tdx host: list, inspect and clean up what the provider "
                    "created, and check TDX readiness.",
        epilog=f"Any other command (or `{VIRSH_COMMAND} ARGS...`) runs `virsh -c URI ARGS...`.",
    )
    parser.add_argument("--uri", default=DEFAULT_URI,
                        help=f"libvirt connection URI (default {DEFAULT_URI})")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    named = set(tokens)
    loaded: dict[str, Command] = {}
    for name, info in COMMANDS.items():
        sub = subparsers.add_parser(name, help=info.summary)
        if name in named:
            loaded[name] = create_command(name)
            loaded[name].setup(sub)
    return parser, loaded


def main(argv: list[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    virsh = passthrough(tokens, COMMANDS)
    if virsh is not None:
        return run_guarded(lambda: run_virsh(*virsh))
    parser, loaded = build_parser(tokens)
    try:
        args = parser.parse_args(tokens)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    if args.command is None:
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    return loaded[args.command].main(args)


if __name__ == "__main__":
    sys.exit(main())

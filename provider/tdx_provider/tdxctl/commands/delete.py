"""``tdxctl delete DOMAIN... | --all``: graceful teardown of our domains, in parallel
(:mod:`tdx_provider.guest.teardown`); their overlays stay, released for ``pool-cleanup``."""

from __future__ import annotations

import argparse

from tdx_provider import validation
from tdx_provider.connection import connect
from tdx_provider.errors import InputError
from tdx_provider.guest import teardown
from tdx_provider.tdxctl import tables
from tdx_provider.tdxctl.base import (
    OWNER_METAVAR,
    PROG,
    Command,
    CommandError,
    ExitCode,
    UsageError,
    emit,
    print_json,
)

PLAN_COLUMNS: tuple[tables.Column, ...] = (
    ("name", "NAME"), ("result", "RESULT"), ("timeout", "ACPI TIMEOUT"), ("owner", "OWNER"),
)


def _timeout(text: str) -> int:
    try:
        return validation.integer("--timeout", int(text), minimum=0, maximum=3600)
    except (ValueError, InputError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds from 0 to 3600") from exc


class DeleteCommand(Command):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("domains", nargs="*", metavar="DOMAIN")
        parser.add_argument("--all", action="store_true", help="every domain of ours")
        parser.add_argument("--owner", metavar=OWNER_METAVAR,
                            help="with --all: only domains of this owner")
        parser.add_argument("--force", action="store_true",
                            help="also delete named domains that pulumi-tdx did not create")
        parser.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                            help="ACPI wait before forcing off (default: the domain's own "
                                 f"shutdown timeout, else {teardown.DEFAULT_SHUTDOWN_TIMEOUT})")
        parser.add_argument("--dry-run", action="store_true",
                            help="print what would be deleted; change nothing")

    def check(self, args: argparse.Namespace) -> None:
        if bool(args.domains) == bool(args.all):
            raise UsageError("delete: name one or more domains, or give --all (not both)")

    def run(self, args: argparse.Namespace) -> int:
        if args.owner is not None and not args.all:
            raise UsageError("--owner narrows --all; name the domains or add --all")
        with connect(args.uri) as conn:
            chosen, problems = teardown.select_for_delete(
                conn, args.uri, names=args.domains, every=args.all, owner=args.owner,
                force=args.force, timeout=args.timeout)
        if problems:
            raise CommandError(*problems, "nothing was deleted")
        if not chosen:
            print("no domains of ours to delete"
                  + (f" for owner {args.owner}" if args.owner else ""))
            return ExitCode.OK
        if args.dry_run:
            planned = [{"name": d.name, "owner": str(d.owner) if d.owner else None,
                        "timeout": d.timeout, "result": "would delete"} for d in chosen]
            emit(planned, PLAN_COLUMNS, args.json)
            return ExitCode.OK
        announce = None if args.json else _announce
        rows = teardown.teardown_in_parallel(args.uri, chosen, on_done=announce)
        if args.json:
            print_json(rows)
        elif any(doomed.overlay for doomed in chosen):
            print(f"overlays stay in their pools, released by their stacks; `{PROG} pool-cleanup` "
                  "removes them")
        return ExitCode.FAILED if any(row.result == "failed" for row in rows) else ExitCode.OK


def _announce(row: teardown.TeardownRow) -> None:
    print(describe_teardown(row), flush=True)


def describe_teardown(row: teardown.TeardownRow) -> str:
    """One line on how the teardown of a domain went, and why a disk was not released."""
    return _describe_outcome(row) + _describe_kept(row)


def _describe_outcome(row: teardown.TeardownRow) -> str:
    name = row.name
    if row.result == "graceful":
        return f"{name}: stopped by ACPI after {row.seconds:.1f} s, undefined"
    if row.result == "forced":
        return (f"{name}: no ACPI shutdown within {row.timeout} s, forced off, undefined "
                f"({row.seconds:.1f} s)")
    if row.result == "undefined":
        return f"{name}: was not running, undefined"
    if row.result == "gone":
        return f"{name}: already gone"
    return f"{name}: FAILED: {row.error}"


def _describe_kept(row: teardown.TeardownRow) -> str:
    kept = (("overlay", row.overlay_kept), ("seed", row.seed_kept))
    return "".join(f"; its {what} is not released: {why} (it stays declared by its stack)"
                   for what, why in kept if why)

"""``tdxctl pool-cleanup [POOL]``: remove our orphaned overlays and seeds
(:mod:`tdx_provider.storage.cleanup` decides which)."""

from __future__ import annotations

import argparse

from tdx_provider.connection import connect
from tdx_provider.storage import cleanup
from tdx_provider.tdxctl import tables
from tdx_provider.tdxctl.base import OWNER_METAVAR, Command, ExitCode, emit, plural, print_json

CLEANUP_COLUMNS: tuple[tables.Column, ...] = (
    ("action", "ACTION"), ("pool", "POOL"), ("volume", "VOLUME"), ("owner", "OWNER"),
    ("reason", "REASON"),
)


class PoolCleanupCommand(Command):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("pool", nargs="?", metavar="POOL",
                            help="a pool name (default: every running pool)")
        parser.add_argument("--dry-run", action="store_true",
                            help="print what would be removed; change nothing")
        parser.add_argument("--owner", metavar=OWNER_METAVAR,
                            help="that stack is gone: its overlays no domain uses are orphans "
                                 "too")

    def run(self, args: argparse.Namespace) -> int:
        with connect(args.uri) as conn:
            rows = cleanup.cleanup_pools(conn, args.pool, args.dry_run, args.owner)
        code = ExitCode.FAILED if any(r.action == cleanup.FAILED for r in rows) else ExitCode.OK
        if args.json:
            print_json(rows)
            return code
        if rows:
            explained = any(row.reason for row in rows)
            emit(rows, [c for c in CLEANUP_COLUMNS if explained or c[0] != "reason"], False)
        where = f"pool {args.pool}" if args.pool else "all running pools"
        if args.dry_run:
            count = sum(row.action == cleanup.WOULD_REMOVE for row in rows)
            print(f"{plural(count, 'orphaned overlay')} would be removed from {where} "
                  "(dry run: nothing changed)")
        else:
            count = sum(row.action == cleanup.REMOVED for row in rows)
            print(f"{plural(count, 'orphaned overlay')} removed from {where}")
        return code

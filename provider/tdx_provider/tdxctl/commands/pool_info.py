"""``tdxctl pool-info [POOL]``: pool state and sizes, and each volume's kind, backing volume,
users and owner."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from tdx_provider.connection import connect
from tdx_provider.storage import inventory
from tdx_provider.tdxctl import tables
from tdx_provider.tdxctl.base import PROG, Command, ExitCode, emit, warn

VOLUME_COLUMNS: tuple[tables.Column, ...] = (
    ("name", "NAME"), ("kind", "KIND"), ("capacity", "CAPACITY"),
    ("allocation", "ALLOCATION"), ("backing", "BACKING"), ("used_by", "USED BY"),
    ("owner", "OWNER"),
)
POOL_FIELDS: tuple[tables.Column, ...] = (
    ("name", "Pool"), ("state", "State"), ("path", "Path"), ("capacity", "Capacity"),
    ("allocation", "Allocation"), ("available", "Available"),
)
SIZES = ("capacity", "allocation", "available")


class PoolInfoCommand(Command):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("pool", nargs="?", metavar="POOL",
                            help="a pool name (default: every pool)")

    def run(self, args: argparse.Namespace) -> int:
        reports = []
        with connect(args.uri) as conn:
            for pool in inventory.select_pools(conn, args.pool):
                reports.append(inventory.pool_report(conn, pool))
                for warning in reports[-1].warnings:  # as they come, before any failure
                    warn(warning)
        if args.json:
            print(tables.to_json([_json_row(report) for report in reports]))
            return ExitCode.OK
        for index, report in enumerate(reports):
            if index:
                print()
            print_pool(report)
        if not reports:
            print("(no storage pools)")
        return ExitCode.OK


def _json_row(report: inventory.PoolReport) -> dict[str, object]:
    return {key: value for key, value in asdict(report).items() if key != "warnings"}


def print_pool(report: inventory.PoolReport) -> None:
    """The pool's fields, one a line, then its volumes as a table."""
    width = max(len(label) for _key, label in POOL_FIELDS) + 2
    for key, label in POOL_FIELDS:
        value = getattr(report, key)
        shown = tables.size(value) if key in SIZES else value
        print(f"{label + ':':<{width}}{tables.cell(shown)}")
    print()
    if report.volumes is None:
        print(f"(pool is {report.state}: volumes are not listed; "
              f"`{PROG} pool-start {report.name}` starts it)")
    elif not report.volumes:
        print("(no volumes)")
    else:
        emit(report.volumes, VOLUME_COLUMNS, False, sizes=("capacity", "allocation"))

"""``tdxctl list``: every domain on the host; ours show their owner, disks and live ports."""

from __future__ import annotations

import argparse

from tdx_provider.connection import connect
from tdx_provider.guest import inventory
from tdx_provider.tdxctl import tables
from tdx_provider.tdxctl.base import Command, ExitCode, emit

LIST_COLUMNS: tuple[tables.Column, ...] = (
    ("name", "NAME"), ("state", "STATE"), ("ip", "IP"), ("ssh_port", "SSH PORT"),
    ("cid", "VSOCK CID"), ("overlay", "OVERLAY"), ("seed", "SEED"), ("owner", "OWNER"),
)


class ListCommand(Command):
    def run(self, args: argparse.Namespace) -> int:
        with connect(args.uri) as conn:
            rows = inventory.list_domains(conn)
        emit(rows, LIST_COLUMNS, args.json)
        return ExitCode.OK

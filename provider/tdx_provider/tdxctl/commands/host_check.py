"""``tdxctl host-check``: can this host run TDX trust domains? Exit status 0 only if so."""

from __future__ import annotations

import argparse

from tdx_provider.host.report import host_report
from tdx_provider.tdxctl import tables
from tdx_provider.tdxctl.base import Command, ExitCode, add_root_option, emit, print_json

HOST_COLUMNS: tuple[tables.Column, ...] = (
    ("status", "STATUS"), ("name", "CHECK"), ("needed", "NEEDED"), ("reason", "REASON"),
)


class HostCheckCommand(Command):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        add_root_option(parser, "read /sys, /proc, /dev and /usr under DIR instead of / "
                                "(fixture trees, chroots)")

    def run(self, args: argparse.Namespace) -> int:
        report = host_report(args.uri, args.root)
        rows = [{"name": c.name, "status": c.status, "required": c.required,
                 "needed": "required" if c.required else "optional", "reason": c.reason}
                for c in report.checks]
        if args.json:
            print_json([{k: v for k, v in row.items() if k != "needed"} for row in rows])
        else:
            emit(rows, HOST_COLUMNS, False)
            print()
            if report.tdx_ready:
                print("TDX trust domains can run on this host")
            else:
                blocking = ", ".join(check.name for check in report.failures())
                print(f"TDX trust domains cannot run on this host (blocked by: {blocking})")
        return ExitCode.OK if report.tdx_ready else ExitCode.FAILED

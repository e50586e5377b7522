"""``tdxctl measure``: the expected MRTD of a trust domain, as the TrustDomain preview shows it.

The page-add order comes from ``--page-add-order``, else from ``--qemu-version``, else from the
QEMU version libvirt reports at ``--uri`` (the host that will run the TD); the computation is
:func:`tdx_provider.host.expected_mrtd.measure_firmware`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from tdx_provider import validation
from tdx_provider.connection import DEFAULT_URI
from tdx_provider.errors import InputError
from tdx_provider.host import measure
from tdx_provider.host.expected_mrtd import FirmwareMeasurement, measure_firmware
from tdx_provider.tdxctl.base import Command, ExitCode


def _existing_file(text: str) -> str:
    try:
        return validation.absolute_path("file", os.path.abspath(text), must_exist=True)
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from exc


def _memory(text: str) -> int:
    try:
        return validation.integer("--memory-mib", int(text), minimum=64)
    except (ValueError, InputError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: MiB, at least 64") from exc


class MeasureCommand(Command):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--firmware", required=True, type=_existing_file, metavar="FILE",
                            help="the TDVF image (TrustDomain firmware)")
        parser.add_argument("--kernel", type=_existing_file, metavar="FILE",
                            help="direct-boot kernel (accepted; RTMRs are not computed)")
        parser.add_argument("--initrd", type=_existing_file, metavar="FILE",
                            help="direct-boot initrd (accepted; RTMRs are not computed)")
        parser.add_argument("--cmdline", metavar="TEXT",
                            help="kernel command line (accepted; RTMRs are not computed)")
        parser.add_argument("--memory-mib", type=_memory, metavar="MIB",
                            help="TD memory (MRTD does not depend on it)")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--qemu-version", metavar="X.Y.Z",
                            help="QEMU of the host that will run the TD (default: ask libvirt "
                                 f"at --uri, default {DEFAULT_URI})")
        source.add_argument("--page-add-order", choices=measure.PAGE_ORDERS,
                            help="override the order derived from the QEMU version")

    def run(self, args: argparse.Namespace) -> int:
        result = measure_firmware(args.firmware, args.uri, page_add_order=args.page_add_order,
                                  qemu_version=args.qemu_version)
        print(json.dumps(asdict(result), indent=2) if args.json else render(result))
        return ExitCode.OK


def render(result: FirmwareMeasurement) -> str:
    """The measurement as labelled lines."""
    qemu = f"QEMU {result.qemu_version}, " if result.qemu_version else ""
    rows = [
        ("firmware", result.firmware),
        ("sections", f"{result.sections} ({result.pages} pages added, "
                     f"{result.measured_pages} measured by content)"),
        ("page add order", f"{result.page_add_order} ({qemu}from {result.order_from})"),
        ("MRTD", result.mrtd),
        ("RTMRs", result.note),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

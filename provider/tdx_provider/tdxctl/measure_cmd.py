"""``tdxctl measure``: the expected MRTD of a trust domain, as the TrustDomain preview shows it.

The page-add order comes from ``--page-add-order``, else from ``--qemu-version``, else from the
QEMU version libvirt reports at ``--uri`` (the host that will run the TD).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from tdx_provider import validation
from tdx_provider.connection import DEFAULT_URI, connect
from tdx_provider.errors import InputError
from tdx_provider.host import measure

RTMR_NOTE = ("not computed: RTMR[0] depends on QEMU's ACPI tables, the TD HOB and "
             "the firmware's variables, RTMR[1] on how QEMU patches the kernel's setup header, "
             "RTMR[2] on the guest kernel's EFI stub (see docs/attestation.md)")


@dataclass(frozen=True)
class Result:
    firmware: str
    mrtd: str
    page_add_order: str
    order_from: str
    qemu_version: str | None
    sections: int
    pages: int
    measured_pages: int
    rtmrs: None
    note: str


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


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "measure", parents=parents,
        help="expected MRTD of a trust domain from its firmware (as the preview shows it)")
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
                        help="QEMU of the host that will run the TD (default: ask libvirt at "
                             f"--uri, default {DEFAULT_URI})")
    source.add_argument("--page-add-order", choices=measure.PAGE_ORDERS,
                        help="override the order derived from the QEMU version")
    parser.set_defaults(handler=cmd_measure)


def _order(args: argparse.Namespace) -> tuple[measure.PageOrder, str, str | None]:
    if args.page_add_order:
        return measure.page_order(args.page_add_order), "--page-add-order", None
    if args.qemu_version:
        version = measure.parse_qemu_version(args.qemu_version)
        return measure.page_order_for_qemu(version), "--qemu-version", \
            measure.format_version(version)
    with connect(args.uri) as conn:
        version = measure.qemu_version_from_libvirt(conn.getVersion())
    return measure.page_order_for_qemu(version), f"libvirt at {args.uri}", \
        measure.format_version(version)


def measure_firmware(args: argparse.Namespace) -> Result:
    order, order_from, version = _order(args)
    try:
        tdvf = measure.parse_tdvf(measure.read_image(args.firmware))
    except measure.MeasureError as exc:
        raise measure.MeasureError(f"{args.firmware}: {exc}") from None
    return Result(
        firmware=args.firmware, mrtd=measure.mrtd(tdvf, order).hex(),
        page_add_order=order.value, order_from=order_from, qemu_version=version,
        sections=len(tdvf.sections), pages=tdvf.pages, measured_pages=tdvf.extended_pages,
        rtmrs=None, note=RTMR_NOTE,
    )


def render(result: Result) -> str:
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


def cmd_measure(args: argparse.Namespace) -> int:
    result = measure_firmware(args)
    print(json.dumps(asdict(result), indent=2) if args.json else render(result))
    return 0

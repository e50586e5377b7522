"""The expected MRTD of a firmware file for a host, and where its page-add order came from.

``tdxctl measure`` prints it; the TrustDomain preview computes the same value
(:func:`measure.expected_mrtd`). The order comes from an explicit override, else from a QEMU
version, else from the QEMU that libvirt at a URI reports (the host that will run the TD).
"""

from __future__ import annotations

from dataclasses import dataclass

from tdx_provider.connection import connect
from tdx_provider.host import measure

RTMR_NOTE = ("not computed: RTMR[0] depends on QEMU's ACPI tables, the TD HOB and "
             "the firmware's variables, RTMR[1] on how QEMU patches the kernel's setup header, "
             "RTMR[2] on the guest kernel's EFI stub (see docs/attestation.md)")


@dataclass(frozen=True)
class FirmwareMeasurement:
    """MRTD of ``firmware`` and how it was computed (``order_from``: which input decided)."""

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


def page_order_from(uri: str, page_add_order: str | None, qemu_version: str | None
                    ) -> tuple[measure.PageOrder, str, str | None]:
    """(order, what decided it, the QEMU version it follows or None)."""
    if page_add_order:
        return measure.page_order(page_add_order), "--page-add-order", None
    if qemu_version:
        version = measure.parse_qemu_version(qemu_version)
        return measure.page_order_for_qemu(version), "--qemu-version", \
            measure.format_version(version)
    with connect(uri) as conn:
        version = measure.qemu_version_from_libvirt(conn.getVersion())
    return measure.page_order_for_qemu(version), f"libvirt at {uri}", \
        measure.format_version(version)


def measure_firmware(firmware: str, uri: str, *, page_add_order: str | None = None,
                     qemu_version: str | None = None) -> FirmwareMeasurement:
    """The MRTD of the TDVF at ``firmware``; a failure to parse it names the file."""
    order, order_from, version = page_order_from(uri, page_add_order, qemu_version)
    try:
        tdvf = measure.parse_tdvf(measure.read_image(firmware))
    except measure.MeasureError as exc:
        raise measure.MeasureError(f"{firmware}: {exc}") from None
    return FirmwareMeasurement(
        firmware=firmware, mrtd=measure.mrtd(tdvf, order).hex(),
        page_add_order=order.value, order_from=order_from, qemu_version=version,
        sections=len(tdvf.sections), pages=tdvf.pages, measured_pages=tdvf.extended_pages,
        rtmrs=None, note=RTMR_NOTE,
    )

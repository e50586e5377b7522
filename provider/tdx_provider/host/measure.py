"""Expected TDX measurements, computed offline: MRTD from a TDVF (OVMF for TDX) image.

The TDX module builds MRTD while the VMM adds the trust domain's initial memory: every
``TDH.MEM.PAGE.ADD`` extends it with a 128-byte buffer naming the page's GPA, and every
``TDH.MR.EXTEND`` with a 128-byte buffer naming a 256-byte chunk's GPA followed by that chunk.
QEMU adds what the firmware's TDVF metadata lists. We replay exactly that; see
docs/attestation.md for the sources of every byte and what is deliberately not computed.

Anything in the image that QEMU would refuse, or whose measurement we cannot replay exactly,
raises :class:`MeasureError`: a wrong expected value is worse than none.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tdx_provider.errors import TdxError

PAGE_SIZE = 0x1000
EXTEND_CHUNK = 0x100  # TDH.MR.EXTEND measures 256 bytes per call
MAX_IMAGE_BYTES = 64 << 20  # TDVF images are a few MiB; refuse to read anything absurd

# OVMF's GUIDed table sits at the end of the image: its footer GUID starts 48 bytes before the
# end, preceded by the table's total length (u16). Entries run backwards from there, each laid
# out as: data, u16 length of the whole entry, GUID (QEMU hw/i386/pc_sysfw_ovmf.c).
OVMF_TABLE_FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d")
FOOTER_FROM_END = 48
# The entry's data is a u32: the metadata's distance from the end of the image.
TDX_METADATA_OFFSET_GUID = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
ENTRY_TRAILER = 2 + 16  # u16 length + GUID

TDVF_SIGNATURE = b"TDVF"
TDVF_VERSION = 1
DESCRIPTOR = struct.Struct("<4sIII")  # Signature, Length, Version, NumberOfSectionEntries
SECTION = struct.Struct("<IIQQII")  # DataOffset, RawDataSize, MemoryAddress, MemoryDataSize,
#                                     Type, Attributes (TDVF design guide, TDX metadata)

ATTR_MR_EXTEND = 1 << 0
ATTR_PAGE_AUG = 1 << 1

PAGE_ADD_TAG = b"MEM.PAGE.ADD"
MR_EXTEND_TAG = b"MR.EXTEND"
BUFFER_BYTES = 128
GPA_OFFSET = 16  # the GPA (u64, little endian) follows the tag at byte 16 of the buffer


class MeasureError(TdxError):
    """The image cannot be measured exactly (not a TDVF, malformed, or unsupported)."""


class SectionType(enum.IntEnum):
    BFV = 0  # boot firmware volume: code, copied from the image
    CFV = 1  # configuration firmware volume (variables), copied from the image
    TD_HOB = 2  # QEMU writes the hand-off block here; not in the image
    TEMP_MEM = 3  # zeroed working memory; not in the image


class PageOrder(enum.StrEnum):
    """How the PAGE.ADDs and MR.EXTENDs of one section interleave (see page_order_for_qemu)."""

    SINGLE_PASS = "single-pass"  # per page: PAGE.ADD, then its 16 MR.EXTENDs
    TWO_PASS = "two-pass"  # per section: every PAGE.ADD, then every MR.EXTEND


PAGE_ORDERS = tuple(order.value for order in PageOrder)


@dataclass(frozen=True)
class Section:
    index: int
    data_offset: int
    raw_size: int
    address: int
    size: int
    type: SectionType
    attributes: int

    @property
    def pages(self) -> int:
        return self.size // PAGE_SIZE

    @property
    def extended(self) -> bool:
        return bool(self.attributes & ATTR_MR_EXTEND)

    @property
    def end(self) -> int:
        return self.address + self.size


@dataclass(frozen=True)
class Tdvf:
    image: bytes
    metadata_offset: int
    sections: tuple[Section, ...]

    @property
    def pages(self) -> int:
        return sum(s.pages for s in self.sections)

    @property
    def extended_pages(self) -> int:
        return sum(s.pages for s in self.sections if s.extended)


# --- parsing ---------------------------------------------------------------------------------


def _u16(image: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", image, offset)[0])


def _guid(image: bytes, offset: int) -> uuid.UUID:
    return uuid.UUID(bytes_le=image[offset:offset + 16])


def ovmf_table(image: bytes) -> Iterator[tuple[uuid.UUID, bytes]]:
    """(GUID, data) of each entry of OVMF's GUIDed table, from the footer backwards."""
    if len(image) < PAGE_SIZE:
        raise MeasureError(f"image is {len(image)} bytes: too small to be a TDVF firmware")
    footer = len(image) - FOOTER_FROM_END
    if _guid(image, footer) != OVMF_TABLE_FOOTER_GUID:
        raise MeasureError(
            f"no OVMF GUIDed table (footer GUID {OVMF_TABLE_FOOTER_GUID} is not "
            f"{FOOTER_FROM_END} bytes before the end): not an OVMF/TDVF image")
    foot = footer - 2
    remaining = _u16(image, foot) - ENTRY_TRAILER
    if remaining < 0 or remaining > foot:
        raise MeasureError(f"OVMF GUIDed table has an invalid length ({remaining + ENTRY_TRAILER})")
    while remaining >= ENTRY_TRAILER:
        guid = _guid(image, foot - 16)
        length = _u16(image, foot - ENTRY_TRAILER)
        if length < ENTRY_TRAILER or length > remaining:
            raise MeasureError(f"OVMF GUIDed table entry {guid} has an invalid length ({length})")
        yield guid, image[foot - length:foot - ENTRY_TRAILER]
        foot -= length
        remaining -= length


def _metadata_offset(image: bytes) -> int:
    for guid, data in ovmf_table(image):
        if guid == TDX_METADATA_OFFSET_GUID:
            if len(data) < 4:
                raise MeasureError(f"TDX metadata offset entry holds {len(data)} bytes, not 4")
            distance = int(struct.unpack_from("<I", data)[0])
            if not DESCRIPTOR.size <= distance <= len(image):
                raise MeasureError(f"TDX metadata offset {distance:#x} lies outside the image")
            return len(image) - distance
    raise MeasureError(f"no TDX metadata (GUIDed table entry {TDX_METADATA_OFFSET_GUID}): "
                       "an OVMF image built without TDX support, not a TDVF")


def _section(index: int, fields: tuple[int, ...], image_size: int) -> Section:
    data_offset, raw_size, address, size, kind, attributes = fields
    where = f"TDVF section {index}"
    try:
        section_type = SectionType(kind)
    except ValueError:
        raise MeasureError(f"{where} has unknown type {kind} (QEMU refuses the image)") from None
    section = Section(index, data_offset, raw_size, address, size, section_type, attributes)
    if address % PAGE_SIZE or size % PAGE_SIZE or size == 0:
        raise MeasureError(f"{where} ({section_type.name}) is not whole pages: "
                           f"MemoryAddress {address:#x}, MemoryDataSize {size:#x}")
    if raw_size > size:
        raise MeasureError(f"{where}: RawDataSize {raw_size:#x} exceeds MemoryDataSize {size:#x}")
    if attributes & ~(ATTR_MR_EXTEND | ATTR_PAGE_AUG):
        raise MeasureError(f"{where} has unknown attributes {attributes:#x}")
    if attributes & ATTR_PAGE_AUG:
        # The TDVF guide says such pages are accepted by the guest later, not PAGE.ADDed, but
        # upstream QEMU ignores the attribute and adds every section: no single answer.
        raise MeasureError(f"{where} has the PAGE.AUG attribute, whose handling differs "
                           "between VMMs; its MRTD contribution cannot be stated")
    if section_type in (SectionType.BFV, SectionType.CFV):
        if raw_size == 0:
            raise MeasureError(f"{where} ({section_type.name}) has no data (RawDataSize 0)")
        if data_offset + raw_size > image_size:
            raise MeasureError(f"{where} ({section_type.name}): data {data_offset:#x}+"
                               f"{raw_size:#x} runs past the end of the image ({image_size:#x})")
        if section.extended and raw_size != size:
            # QEMU copies MemoryDataSize bytes from DataOffset: past RawDataSize that is
            # whatever follows in the image, which the metadata does not vouch for.
            raise MeasureError(f"{where} is measured (MR.EXTEND) but RawDataSize {raw_size:#x} "
                               f"differs from MemoryDataSize {size:#x}")
    else:
        if raw_size != 0:
            raise MeasureError(f"{where} ({section_type.name}) must not carry data "
                               f"(RawDataSize {raw_size:#x})")
        if section.extended:
            raise MeasureError(f"{where} ({section_type.name}) has MR.EXTEND, but its content "
                               "is made by the VMM at launch, not read from the image")
    return section


def _check_no_overlap(sections: tuple[Section, ...]) -> None:
    ordered = sorted(sections, key=lambda s: s.address)
    for first, second in itertools.pairwise(ordered):
        if second.address < first.end:
            raise MeasureError(
                f"TDVF sections {first.index} and {second.index} overlap at GPA "
                f"{second.address:#x}: the TDX module refuses to add a page twice")


def parse_tdvf(image: bytes) -> Tdvf:
    """The TDVF metadata of ``image``, checked as QEMU checks it (and a little more)."""
    start = _metadata_offset(image)
    if start + DESCRIPTOR.size > len(image):
        raise MeasureError("TDVF metadata descriptor runs past the end of the image")
    signature, length, version, count = DESCRIPTOR.unpack_from(image, start)
    if signature != TDVF_SIGNATURE:
        raise MeasureError(f"TDVF metadata signature is {signature!r}, not {TDVF_SIGNATURE!r}")
    if version != TDVF_VERSION:
        raise MeasureError(f"TDVF metadata version {version} (only {TDVF_VERSION} is defined)")
    if count < 2:
        raise MeasureError(f"TDVF metadata lists {count} sections (QEMU requires at least 2)")
    if length != DESCRIPTOR.size + count * SECTION.size:
        raise MeasureError(f"TDVF metadata length {length} does not match its {count} sections")
    if start + length > len(image):
        raise MeasureError("TDVF metadata runs past the end of the image (truncated?)")
    sections = tuple(
        _section(i, SECTION.unpack_from(image, start + DESCRIPTOR.size + i * SECTION.size),
                 len(image))
        for i in range(count))
    if not any(s.type is SectionType.TD_HOB for s in sections):
        raise MeasureError("TDVF metadata has no TD_HOB section (QEMU refuses the image)")
    _check_no_overlap(sections)
    return Tdvf(bytes(image), start, sections)


# --- the replay ------------------------------------------------------------------------------


def _buffer(tag: bytes, gpa: int) -> bytes:
    buf = bytearray(BUFFER_BYTES)
    buf[:len(tag)] = tag
    struct.pack_into("<Q", buf, GPA_OFFSET, gpa)
    return bytes(buf)


def _page_add(gpa: int) -> bytes:
    return _buffer(PAGE_ADD_TAG, gpa)


def _extends(image: bytes, section: Section, page: int) -> bytes:
    """The 16 MR.EXTEND inputs of one page: buffer + 256 bytes of content, each."""
    gpa = section.address + page * PAGE_SIZE
    data = section.data_offset + page * PAGE_SIZE
    return b"".join(
        _buffer(MR_EXTEND_TAG, gpa + chunk) + image[data + chunk:data + chunk + EXTEND_CHUNK]
        for chunk in range(0, PAGE_SIZE, EXTEND_CHUNK))


def mrtd(tdvf: Tdvf, order: PageOrder) -> bytes:
    """MRTD (48 bytes) after QEMU adds ``tdvf``'s sections in metadata order."""
    digest = hashlib.sha384()
    for section in tdvf.sections:
        pages = range(section.pages)
        gpas = (section.address + page * PAGE_SIZE for page in pages)
        if not section.extended:
            digest.update(b"".join(_page_add(gpa) for gpa in gpas))
        elif order is PageOrder.TWO_PASS:
            digest.update(b"".join(_page_add(gpa) for gpa in gpas))
            for page in pages:
                digest.update(_extends(tdvf.image, section, page))
        else:
            for page, gpa in zip(pages, gpas, strict=True):
                digest.update(_page_add(gpa))
                digest.update(_extends(tdvf.image, section, page))
    return digest.digest()


# --- which order, and reading files ----------------------------------------------------------

Version = tuple[int, int, int]
TWO_PASS_QEMU = ((8, 2, 0), (9, 0, 0))  # [from, to)


def page_order_for_qemu(version: Version) -> PageOrder:
    """The order the host's QEMU/KVM pair uses. QEMU 8.2.x with TDX exists only as Intel's
    tdx-qemu-upstream-v5 (8.2.50) and Canonical's tdx-noble 8.2.2, both two-pass; the forks
    before them, later ones (9.x) and upstream QEMU (>= 10.1, with upstream KVM) are
    single-pass. docs/attestation.md lists the evidence."""
    low, high = TWO_PASS_QEMU
    return PageOrder.TWO_PASS if low <= version < high else PageOrder.SINGLE_PASS


def qemu_version_from_libvirt(number: int) -> Version:
    """libvirt's ``getVersion()`` encodes major * 1,000,000 + minor * 1,000 + micro."""
    return number // 1_000_000, number // 1_000 % 1_000, number % 1_000


def parse_qemu_version(text: str) -> Version:
    """``"8.2.2"``, ``"11.1"``, ``"8.2.2+ds-0ubuntu1"`` -> (major, minor, micro)."""
    core = text.strip().split("+")[0].split("-")[0].split("~")[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise MeasureError(f"QEMU version {text!r} is not MAJOR.MINOR[.MICRO]")
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2]


def format_version(version: Version) -> str:
    return ".".join(str(v) for v in version)


def page_order(value: str) -> PageOrder:
    try:
        return PageOrder(value)
    except ValueError:
        raise MeasureError(f"page order {value!r} is not one of {', '.join(PAGE_ORDERS)}") from None


def read_image(path: str) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_IMAGE_BYTES:
            raise MeasureError(f"{size} bytes: too large to be a TDVF firmware")
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise MeasureError(f"cannot read it: {exc.strerror or exc}") from exc


def host_page_order(conn: Any, override: str | None = None) -> PageOrder:
    """``override`` if given, else the order of the QEMU behind the libvirt connection."""
    if override:
        return page_order(override)
    return page_order_for_qemu(qemu_version_from_libvirt(conn.getVersion()))


def expected_mrtd(conn: Any, firmware: str, override: str | None = None) -> str:
    """MRTD (lowercase hex) of a trust domain built from the local file ``firmware`` by the
    QEMU behind ``conn`` (or in the ``override`` order)."""
    return mrtd_of_file(firmware, host_page_order(conn, override))


def mrtd_of_file(path: str, order: PageOrder) -> str:
    """MRTD of the firmware at ``path``, lowercase hex; MeasureError names the file."""
    try:
        return mrtd(parse_tdvf(read_image(path)), order).hex()
    except MeasureError as exc:
        raise MeasureError(f"{path}: {exc}") from None

"""MRTD replay on a TDVF image this test lays out byte by byte.

The expectations are derived here, independently of tdx_provider.measure: the test writes out
the exact byte stream the TDX module hashes (TDX module ABI spec: TDH.MEM.PAGE.ADD and
TDH.MR.EXTEND) and takes one SHA-384 of it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import pytest

from tdx_provider import measure
from tdx_provider.measure import MeasureError, PageOrder

FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
TDX_OFFSET_GUID = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2").bytes_le
OTHER_GUID = uuid.UUID("7255371f-3a3b-4b04-927b-1da6efa8d454").bytes_le  # SEV's, ignored
IMAGE_SIZE = 64 * 1024
BFV, CFV, TD_HOB, TEMP_MEM = 0, 1, 2, 3
MR_EXTEND, PAGE_AUG = 1, 2


def le(value: int, width: int) -> bytes:
    return value.to_bytes(width, "little")


@dataclass
class Sec:
    data_offset: int
    raw_size: int
    address: int
    size: int
    kind: int
    attributes: int

    def entry(self) -> bytes:
        return (le(self.data_offset, 4) + le(self.raw_size, 4) + le(self.address, 8)
                + le(self.size, 8) + le(self.kind, 4) + le(self.attributes, 4))


@dataclass
class Layout:
    """A TDVF image: two firmware volumes with patterned content, a TD HOB and temp memory,
    metadata at 0x8000, and OVMF's GUIDed table at the very end."""

    sections: list[Sec] = field(default_factory=lambda: [
        Sec(0x2000, 0x2000, 0xFFFF_E000, 0x2000, BFV, MR_EXTEND),  # code: 2 measured pages
        Sec(0x1000, 0x1000, 0xFFFF_D000, 0x1000, CFV, 0),  # variables: added only
        Sec(0, 0, 0x0080_9000, 0x2000, TD_HOB, 0),
        Sec(0, 0, 0x0080_0000, 0x3000, TEMP_MEM, 0),
    ])
    metadata_at: int = 0x8000
    signature: bytes = b"TDVF"
    version: int = 1
    length_delta: int = 0
    include_tdx_entry: bool = True

    def build(self) -> bytes:
        image = bytearray(IMAGE_SIZE)
        for offset in range(0x1000, 0x4000):  # content: every byte differs from its neighbours
            image[offset] = (offset * 7 + offset // 251) & 0xFF
        count = len(self.sections)
        descriptor = (self.signature + le(16 + 32 * count + self.length_delta, 4)
                      + le(self.version, 4) + le(count, 4))
        metadata = descriptor + b"".join(s.entry() for s in self.sections)
        image[self.metadata_at:self.metadata_at + len(metadata)] = metadata
        entries = [b"\xAA" * 8 + le(8 + 18, 2) + OTHER_GUID]
        if self.include_tdx_entry:
            entries.append(le(IMAGE_SIZE - self.metadata_at, 4) + le(4 + 18, 2) + TDX_OFFSET_GUID)
        table = b"".join(entries)
        tail = table + le(len(table) + 18, 2) + FOOTER_GUID + b"\x90" * 32
        image[IMAGE_SIZE - len(tail):] = tail
        return bytes(image)


def page_add(gpa: int) -> bytes:
    return b"MEM.PAGE.ADD" + bytes(4) + le(gpa, 8) + bytes(104)


def mr_extend(gpa: int, chunk: bytes) -> bytes:
    assert len(chunk) == 256
    return b"MR.EXTEND" + bytes(7) + le(gpa, 8) + bytes(104) + chunk


def expected(image: bytes, sections: list[Sec], two_pass: bool) -> str:
    stream = b""
    for s in sections:
        adds = [page_add(s.address + p * 4096) for p in range(s.size // 4096)]
        extends = [
            b"".join(mr_extend(s.address + p * 4096 + c,
                               image[s.data_offset + p * 4096 + c:s.data_offset + p * 4096 + c
                                     + 256])
                     for c in range(0, 4096, 256))
            if s.attributes & MR_EXTEND else b""
            for p in range(s.size // 4096)
        ]
        if two_pass:
            stream += b"".join(adds) + b"".join(extends)
        else:
            stream += b"".join(a + e for a, e in zip(adds, extends, strict=True))
    return hashlib.sha384(stream).hexdigest()


def compute(image: bytes, order: PageOrder) -> str:
    return measure.mrtd(measure.parse_tdvf(image), order).hex()


# --- the replay ------------------------------------------------------------------------------


def test_metadata_is_read_as_laid_out() -> None:
    layout = Layout()
    tdvf = measure.parse_tdvf(layout.build())
    assert tdvf.metadata_offset == layout.metadata_at
    assert [(s.data_offset, s.raw_size, s.address, s.size, s.type, s.attributes)
            for s in tdvf.sections] == [
        (s.data_offset, s.raw_size, s.address, s.size, s.kind, s.attributes)
        for s in layout.sections]
    assert (tdvf.pages, tdvf.extended_pages) == (2 + 1 + 2 + 3, 2)


@pytest.mark.parametrize("order", list(PageOrder))
def test_mrtd_is_the_sha384_of_the_replayed_adds_and_extends(order: PageOrder) -> None:
    layout = Layout()
    image = layout.build()
    assert compute(image, order) == expected(image, layout.sections,
                                             two_pass=order is PageOrder.TWO_PASS)


def test_the_two_page_orders_give_different_mrtds() -> None:
    image = Layout().build()
    assert compute(image, PageOrder.SINGLE_PASS) != compute(image, PageOrder.TWO_PASS)


def test_a_byte_of_measured_code_changes_mrtd_but_a_byte_of_the_variable_store_does_not() -> None:
    image = Layout().build()
    base = compute(image, PageOrder.SINGLE_PASS)
    code = bytearray(image)
    code[0x3FFF] ^= 1  # last byte of the BFV (MR.EXTEND)
    variables = bytearray(image)
    variables[0x1800] ^= 1  # inside the CFV (added, not extended)
    assert compute(bytes(code), PageOrder.SINGLE_PASS) != base
    assert compute(bytes(variables), PageOrder.SINGLE_PASS) == base


def test_sections_are_replayed_in_metadata_order() -> None:
    layout = Layout()
    swapped = Layout(sections=[layout.sections[2], *layout.sections[:2], layout.sections[3]])
    image = swapped.build()
    assert compute(image, PageOrder.SINGLE_PASS) == expected(image, swapped.sections, False)
    assert compute(image, PageOrder.SINGLE_PASS) != compute(layout.build(), PageOrder.SINGLE_PASS)


# --- malformed images: a clear error, never a value ------------------------------------------


def _replace(index: int, **changes: int) -> Layout:
    layout = Layout()
    section = layout.sections[index]
    layout.sections[index] = Sec(**{**vars(section), **changes})
    return layout


MALFORMED = {
    "no GUIDed table": (lambda: bytes(IMAGE_SIZE), "no OVMF GUIDed table"),
    "no TDX metadata entry": (lambda: Layout(include_tdx_entry=False).build(),
                              "no TDX metadata"),
    "truncated": (lambda: Layout().build()[:IMAGE_SIZE - 4096], "no OVMF GUIDed table"),
    "tiny": (lambda: b"\0" * 100, "too small"),
    "bad signature": (lambda: Layout(signature=b"TDVX").build(), "signature"),
    "bad version": (lambda: Layout(version=2).build(), "version 2"),
    "length mismatch": (lambda: Layout(length_delta=32).build(), "length"),
    "overlapping sections": (lambda: _replace(3, address=0x0080_A000).build(), "overlap"),
    "unaligned address": (lambda: _replace(2, address=0x0080_9800).build(), "whole pages"),
    "unknown type": (lambda: _replace(3, kind=7).build(), "unknown type 7"),
    "PAGE.AUG": (lambda: _replace(3, attributes=PAGE_AUG).build(), "PAGE.AUG"),
    "extend past raw data": (lambda: _replace(0, raw_size=0x1000).build(),
                             "differs from MemoryDataSize"),
    "data past the end": (lambda: _replace(0, data_offset=IMAGE_SIZE - 0x1000).build(),
                          "past the end"),
    "HOB with data": (lambda: _replace(2, raw_size=0x1000, data_offset=0x1000).build(),
                      "must not carry data"),
    "extended HOB": (lambda: _replace(2, attributes=MR_EXTEND).build(), "made by the VMM"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_images_raise_a_clear_error(case: str) -> None:
    make, message = MALFORMED[case]
    with pytest.raises(MeasureError, match=message):
        measure.parse_tdvf(make())


def test_an_image_without_a_td_hob_is_refused() -> None:
    layout = Layout()
    layout.sections = [layout.sections[0], layout.sections[1], layout.sections[3]]
    with pytest.raises(MeasureError, match="TD_HOB"):
        measure.parse_tdvf(layout.build())


def test_a_file_error_names_the_file(tmp_path: object) -> None:
    path = f"{tmp_path}/missing.fd"
    with pytest.raises(MeasureError, match="missing.fd: cannot read"):
        measure.mrtd_of_file(path, PageOrder.SINGLE_PASS)


# --- which order for which QEMU --------------------------------------------------------------


@pytest.mark.parametrize(("version", "order"), [
    ((8, 2, 2), PageOrder.TWO_PASS), ((8, 2, 50), PageOrder.TWO_PASS),
    ((8, 1, 0), PageOrder.SINGLE_PASS), ((9, 0, 0), PageOrder.SINGLE_PASS),
    ((10, 1, 0), PageOrder.SINGLE_PASS), ((11, 1, 3), PageOrder.SINGLE_PASS),
])
def test_page_order_follows_the_qemu_version(version: measure.Version, order: PageOrder) -> None:
    assert measure.page_order_for_qemu(version) is order


def test_qemu_versions_from_libvirt_and_from_text() -> None:
    assert measure.qemu_version_from_libvirt(11_001_003) == (11, 1, 3)
    assert measure.qemu_version_from_libvirt(8_002_002) == (8, 2, 2)
    assert measure.parse_qemu_version("8.2.2+ds-0ubuntu1") == (8, 2, 2)
    assert measure.parse_qemu_version("11.1") == (11, 1, 0)
    with pytest.raises(MeasureError, match="MAJOR.MINOR"):
        measure.parse_qemu_version("latest")
    with pytest.raises(MeasureError, match="not one of"):
        measure.page_order("interleaved")

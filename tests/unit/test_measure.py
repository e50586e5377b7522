"""MRTD replay on a TDVF image the test lays out byte by byte (tests/support/tdvf.py).

The expectations are derived independently of tdx_provider.host.measure: tests/support/tdvf.py
writes out the exact byte stream the TDX module hashes and takes one SHA-384 of it.
"""

from __future__ import annotations

import re

import pytest

from tdx_provider.host import measure
from tdx_provider.host.measure import MeasureError, PageOrder
from tests.support.tdvf import (
    IMAGE_SIZE,
    MR_EXTEND,
    PAGE_AUG,
    Layout,
    Sec,
    expected,
    four_mib_tdvf,
)


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


def test_a_4_mib_tdvf_shaped_like_edk2s_replays_like_the_derivation() -> None:
    layout = four_mib_tdvf()
    image = layout.build()
    tdvf = measure.parse_tdvf(image)
    assert (len(tdvf.sections), tdvf.pages, tdvf.extended_pages) == (6, 1050, 892)
    for order in PageOrder:
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
    with pytest.raises(MeasureError, match=re.escape(message)):
        measure.parse_tdvf(make())


def test_an_image_without_a_td_hob_is_refused() -> None:
    layout = Layout()
    layout.sections = [layout.sections[0], layout.sections[1], layout.sections[3]]
    with pytest.raises(MeasureError, match="TD_HOB"):
        measure.parse_tdvf(layout.build())


def test_a_file_error_names_the_file(tmp_path: object) -> None:
    path = f"{tmp_path}/missing.fd"
    with pytest.raises(MeasureError, match=r"missing\.fd: cannot read"):
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
    with pytest.raises(MeasureError, match=r"MAJOR\.MINOR"):
        measure.parse_qemu_version("latest")
    with pytest.raises(MeasureError, match="not one of"):
        measure.page_order("interleaved")

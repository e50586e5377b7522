"""MRTD of a real TDVF: Debian sid's ``ovmf-inteltdx`` (OVMF.inteltdx.ms.fd).

The image comes from the upstream (sid) root that scripts/env.sh names in
``$PULUMI_TDX_UPSTREAM_ROOT``. Without it the test fails in CI and is skipped elsewhere.
"""

from __future__ import annotations

import struct

import pytest

from tdx_provider.host import measure
from tdx_provider.host.measure import PageOrder, SectionType
from tests.support.hosts import upstream_root
from tests.support.tdvf import Sec, expected

IMAGE = "usr/share/ovmf/OVMF.inteltdx.ms.fd"


@pytest.fixture(scope="module")
def image() -> bytes:
    path = upstream_root() / IMAGE  # the upstream host's root, built by `make setup`
    if not path.is_file():
        pytest.fail(f"{path} does not exist: run `make setup` (scripts/setup-upstream-host.sh "
                    "installs ovmf-inteltdx in the upstream host's root)")
    return path.read_bytes()


def _metadata_as_written(image: bytes, offset: int) -> list[tuple[int, ...]]:
    """The section entries read straight from the image at the parser's metadata offset."""
    signature, length, version, count = struct.unpack_from("<4sIII", image, offset)
    assert (signature, version, length) == (b"TDVF", 1, 16 + 32 * count)
    return [struct.unpack_from("<IIQQII", image, offset + 16 + 32 * i) for i in range(count)]


def test_sections_and_page_counts_are_what_its_metadata_says(image: bytes) -> None:
    tdvf = measure.parse_tdvf(image)
    written = _metadata_as_written(image, tdvf.metadata_offset)
    assert [(s.data_offset, s.raw_size, s.address, s.size, int(s.type), s.attributes)
            for s in tdvf.sections] == [tuple(entry) for entry in written]
    assert tdvf.pages == sum(entry[3] // 4096 for entry in written)
    # edk2's TDVF: one measured BFV (code), one CFV (variables), the rest need no image data.
    assert [s.type for s in tdvf.sections if s.extended] == [SectionType.BFV]
    assert {SectionType.BFV, SectionType.CFV, SectionType.TD_HOB} <= {
        s.type for s in tdvf.sections}
    bfv = next(s for s in tdvf.sections if s.type is SectionType.BFV)
    assert tdvf.extended_pages == bfv.pages == bfv.raw_size // 4096
    # The BFV ends at 4 GiB, where the reset vector must be.
    assert bfv.end == 1 << 32


def test_mrtd_is_deterministic_and_depends_on_the_page_order(image: bytes) -> None:
    tdvf = measure.parse_tdvf(image)
    single = measure.mrtd(tdvf, PageOrder.SINGLE_PASS)
    assert single == measure.mrtd(measure.parse_tdvf(bytes(image)), PageOrder.SINGLE_PASS)
    two = measure.mrtd(tdvf, PageOrder.TWO_PASS)
    assert len(single) == len(two) == 48
    assert single != two


@pytest.mark.parametrize("order", list(PageOrder))
def test_mrtd_matches_the_independent_derivation_over_its_own_metadata(
        image: bytes, order: PageOrder) -> None:
    tdvf = measure.parse_tdvf(image)
    sections = [Sec(*entry) for entry in _metadata_as_written(image, tdvf.metadata_offset)]
    assert measure.mrtd(tdvf, order).hex() == expected(image, sections,
                                                      two_pass=order is PageOrder.TWO_PASS)

"""A TDVF image laid out byte by byte, and its MRTD derived independently of
tdx_provider.host.measure: the exact byte stream the TDX module hashes (TDX module ABI spec:
TDH.MEM.PAGE.ADD and TDH.MR.EXTEND), written out here and hashed once with SHA-384."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

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
    image_size: int = IMAGE_SIZE
    content: tuple[int, int] = (0x1000, 0x4000)  # [start, end) of the patterned bytes

    def build(self) -> bytes:
        image = bytearray(self.image_size)
        for offset in range(*self.content):  # every byte differs from its neighbours
            image[offset] = (offset * 7 + offset // 251) & 0xFF
        count = len(self.sections)
        descriptor = (self.signature + le(16 + 32 * count + self.length_delta, 4)
                      + le(self.version, 4) + le(count, 4))
        metadata = descriptor + b"".join(s.entry() for s in self.sections)
        image[self.metadata_at:self.metadata_at + len(metadata)] = metadata
        entries = [b"\xAA" * 8 + le(8 + 18, 2) + OTHER_GUID]
        if self.include_tdx_entry:
            entries.append(le(self.image_size - self.metadata_at, 4) + le(4 + 18, 2)
                           + TDX_OFFSET_GUID)
        table = b"".join(entries)
        tail = table + le(len(table) + 18, 2) + FOOTER_GUID + b"\x90" * 32
        image[self.image_size - len(tail):] = tail
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


def four_mib_tdvf() -> Layout:
    """A 4 MiB TDVF shaped like edk2's (Debian's OVMF.inteltdx.fd): a 3.5 MiB measured BFV
    ending at 4 GiB, a 528 KiB CFV, temporary memory and a TD HOB."""
    return Layout(
        sections=[
            Sec(0x84000, 0x37C000, 0xFFC8_4000, 0x37C000, BFV, MR_EXTEND),
            Sec(0, 0x84000, 0xFFC0_0000, 0x84000, CFV, 0),
            Sec(0, 0, 0x0081_0000, 0x10000, TEMP_MEM, 0),
            Sec(0, 0, 0x0080_B000, 0x2000, TEMP_MEM, 0),
            Sec(0, 0, 0x0080_9000, 0x2000, TD_HOB, 0),
            Sec(0, 0, 0x0080_0000, 0x6000, TEMP_MEM, 0),
        ],
        metadata_at=0x3F_F000, image_size=4 << 20, content=(0x84000, 0x3F_0000))

"""The NoCloud seed as an ISO 9660 image with volume label ``cidata`` (built with pycdlib).

Files carry Rock Ridge names (what Linux and cloud-init read: ``user-data``), Joliet names (for
guests that read Joliet) and short ISO 9660 names. The image is built in memory: a seed is a
few KiB, padded by ISO 9660's own structures to a few dozen.
"""

from __future__ import annotations

import io

import pycdlib

VOLUME_LABEL = "cidata"
# Level 1 ISO 9660 names (8.3, upper case) of each seed file; guests read the Rock Ridge names.
ISO_NAMES = {"user-data": "USERDATA.;1", "meta-data": "METADATA.;1",
             "network-config": "NETCFG.;1"}


def build(files: dict[str, bytes]) -> bytes:
    """An ISO 9660 image (Rock Ridge 1.09 and Joliet) labelled ``cidata`` holding ``files``."""
    unknown = sorted(set(files) - set(ISO_NAMES))
    if unknown:
        raise ValueError(f"not a NoCloud seed file: {unknown[0]!r}")
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    try:
        for name, data in files.items():
            iso.add_fp(io.BytesIO(data), len(data), f"/{ISO_NAMES[name]}", rr_name=name,
                       joliet_path=f"/{name}")
        out = io.BytesIO()
        iso.write_fp(out)
    finally:
        iso.close()
    return out.getvalue()


def read(image: bytes, *, joliet: bool = False) -> dict[str, bytes]:
    """The files of a seed image by their Rock Ridge names (``joliet``: by their Joliet names)."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    try:
        kind = "joliet_path" if joliet else "rr_path"
        files = {}
        for child in iso.list_children(**{kind: "/"}):
            if child.is_dot() or child.is_dotdot() or child.is_dir():
                continue
            name = (iso.full_path_from_dirrecord(child, rockridge=not joliet)
                    .rsplit("/", 1)[-1])
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, **{kind: f"/{name}"})
            files[name] = out.getvalue()
        return files
    finally:
        iso.close()


def label(image: bytes) -> str:
    """The ISO 9660 volume identifier (what ``blkid`` shows as LABEL)."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    try:
        return iso.pvd.volume_identifier.decode().rstrip()
    finally:
        iso.close()

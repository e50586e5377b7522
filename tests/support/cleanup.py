"""Remove libvirt objects a previous (killed) test run left behind, by name prefix."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import libvirt


def remove_prefixed(conn: libvirt.virConnect, prefix: str) -> None:
    """Destroy and undefine domains, delete volumes and pools whose names start with ``prefix``.

    Volumes are removed from pools of that prefix only: tests never put volumes elsewhere.
    """
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(prefix):
            with contextlib.suppress(libvirt.libvirtError):
                if dom.isActive():
                    dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    for pool in conn.listAllStoragePools(0):
        if not pool.name().startswith(prefix):
            continue
        with contextlib.suppress(libvirt.libvirtError):
            if not pool.isActive():
                pool.create(0)
            pool.refresh(0)
            for vol in pool.listAllVolumes(0):
                with contextlib.suppress(libvirt.libvirtError):
                    vol.delete(0)
        path = None
        with contextlib.suppress(libvirt.libvirtError):
            from lxml import etree

            path = etree.fromstring(pool.XMLDesc(0)).findtext("target/path")
        with contextlib.suppress(libvirt.libvirtError):
            pool.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            pool.undefine()
        if path and Path(path).name.startswith(prefix):
            shutil.rmtree(path, ignore_errors=True)

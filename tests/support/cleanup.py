"""Remove libvirt objects a previous (killed) test run left behind.

Tests destroy without ceremony: these helpers never wait for a guest and ignore errors from
objects that disappear while they work.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import libvirt
from lxml import etree


def remove_domain(dom: libvirt.virDomain) -> None:
    """Destroy (if running) and undefine, NVRAM included."""
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def remove_pool(pool: libvirt.virStoragePool) -> str | None:
    """Delete every volume of the pool, stop and undefine it; return its target path."""
    with contextlib.suppress(libvirt.libvirtError):
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        for vol in pool.listAllVolumes(0):
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
    path = None
    with contextlib.suppress(libvirt.libvirtError):
        path = etree.fromstring(pool.XMLDesc(0)).findtext("target/path")
    with contextlib.suppress(libvirt.libvirtError):
        pool.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        pool.undefine()
    return path


def remove_prefixed(conn: libvirt.virConnect, prefix: str) -> None:
    """Remove domains and pools (with their volumes) whose names start with ``prefix``, and a
    pool's directory when its name also starts with ``prefix``.

    Volumes are removed from pools of that prefix only: tests never put volumes elsewhere.
    """
    remove_matching(conn, lambda name: name.startswith(prefix))


def remove_stale(conn: libvirt.virConnect, base: str) -> None:
    """Remove what ended runs left under ``base`` (see :mod:`tests.support.runs`); objects of
    runs that are still going are left alone."""
    from tests.support.runs import is_stale

    remove_matching(conn, lambda name: is_stale(name, base))


def remove_matching(conn: libvirt.virConnect, matches: Callable[[str], bool]) -> None:
    """Remove domains and pools (with their volumes) whose names match, and a pool's
    directory when its own name matches too."""
    for dom in conn.listAllDomains(0):
        if matches(dom.name()):
            remove_domain(dom)
    for pool in conn.listAllStoragePools(0):
        if not matches(pool.name()):
            continue
        path = remove_pool(pool)
        if path and matches(Path(path).name):
            shutil.rmtree(path, ignore_errors=True)


def remove_all(conn: libvirt.virConnect) -> None:
    """Remove every domain and pool (with volumes) of a connection that belongs to a test
    alone, such as a private libvirtd. Directories are left to the test's own tmp cleanup."""
    for dom in conn.listAllDomains(0):
        remove_domain(dom)
    for pool in conn.listAllStoragePools(0):
        remove_pool(pool)

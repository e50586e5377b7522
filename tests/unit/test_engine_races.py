"""Concurrency rules of the engine, without libvirt: pool mutations are serialised per pool
(never across pools, never for the whole provider), and scans over all domains tolerate a
domain that disappears while they look (another thread or stack undefining it)."""

from __future__ import annotations

import threading
import time

import libvirt
import pytest

from tdx_provider import volume
from tdx_provider.connection import pool_lock

URI = "qemu:///system"


def acquired_within(key: tuple[str, str], seconds: float) -> bool:
    done = threading.Event()

    def take() -> None:
        with pool_lock(*key):
            done.set()

    threading.Thread(target=take, daemon=True).start()
    return done.wait(seconds)


def test_one_pools_lock_does_not_hold_up_another_pool() -> None:
    with pool_lock(URI, "pool-a"):
        assert acquired_within((URI, "pool-b"), 1.0)
        assert acquired_within(("qemu+ssh://elsewhere/system", "pool-a"), 1.0)


def test_the_same_pool_is_serialised_across_threads() -> None:
    with pool_lock(URI, "pool-a"):
        assert not acquired_within((URI, "pool-a"), 0.2)
    assert acquired_within((URI, "pool-a"), 1.0)


def test_the_lock_is_reentrant_within_a_thread() -> None:
    with pool_lock(URI, "pool-a"), pool_lock(URI, "pool-a"):
        pass


def test_many_threads_on_one_pool_never_overlap() -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with pool_lock(URI, "pool-c"):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1


class _Gone(libvirt.libvirtError):
    def __init__(self) -> None:
        Exception.__init__(self, "Domain not found: no domain with matching name")

    def get_error_code(self) -> int:
        return libvirt.VIR_ERR_NO_DOMAIN


class _Domain:
    def __init__(self, name: str, disk: str | None) -> None:
        self._name, self._disk = name, disk

    def name(self) -> str:
        return self._name

    def XMLDesc(self, _flags: int = 0) -> str:
        if self._disk is None:
            raise _Gone()
        return (f"<domain><name>{self._name}</name><devices><disk type='file' device='disk'>"
                f"<source file='{self._disk}'/></disk></devices></domain>")


class _Conn:
    def __init__(self, *domains: _Domain) -> None:
        self.domains = domains

    def listAllDomains(self, _flags: int = 0) -> list[_Domain]:
        return list(self.domains)


def test_domains_using_skips_a_domain_undefined_while_it_looks() -> None:
    conn = _Conn(_Domain("vanishing", None), _Domain("user", "/pool/disk"),
                 _Domain("other", "/pool/else"))
    users = volume.domains_using(conn, "/pool/disk")  # type: ignore[arg-type]
    assert [d.name() for d in users] == ["user"]


def test_domains_using_still_raises_other_libvirt_errors() -> None:
    class Broken(_Domain):
        def XMLDesc(self, _flags: int = 0) -> str:
            raise libvirt.libvirtError("connection reset")

    with pytest.raises(libvirt.libvirtError):
        volume.domains_using(_Conn(Broken("x", "/d")), "/d")  # type: ignore[arg-type]

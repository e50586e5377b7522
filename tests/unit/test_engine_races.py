"""Concurrency rules of the engine, without libvirt: scans over all domains tolerate a domain
that disappears while they look (another thread or stack undefining it), and only libvirt's
transient refusals are retried. (Pool exclusion needs libvirt: tests/libvirt/test_exclusion.py.)"""

from __future__ import annotations

import libvirt
import pytest

from tdx_provider import retry, volume


class _Refused(libvirt.libvirtError):
    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)

    def get_error_code(self) -> int:
        return libvirt.VIR_ERR_INTERNAL_ERROR


def test_transient_refusals_are_retried_until_they_pass() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _Refused("internal error: pool 'p' has asynchronous jobs running.")
        return "done"

    assert retry.transient(flaky, seconds=5) == "done"
    assert len(calls) == 3


def test_other_errors_and_refusals_past_the_bound_reach_the_caller() -> None:
    def broken() -> None:
        raise _Refused("cannot open directory '/nowhere'")

    with pytest.raises(libvirt.libvirtError, match="cannot open"):
        retry.transient(broken, seconds=5)

    def busy() -> None:
        raise _Refused("volume 'v' is still being allocated.")

    with pytest.raises(libvirt.libvirtError, match="still being allocated"):
        retry.transient(busy, seconds=0.2)


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

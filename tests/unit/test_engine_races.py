"""Concurrency rules of the engine, without libvirt: only libvirt's transient refusals are
retried. (Pool exclusion and the scan of domains need libvirt: tests/libvirt/test_exclusion.py,
tests/libvirt/test_disk_users.py.)"""

from __future__ import annotations

import libvirt
import pytest

from tdx_provider import retry


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


def test_a_deadline_bounds_waits_and_is_per_thread() -> None:
    import threading

    from tdx_provider import cancellation
    from tdx_provider.errors import TimedOutError

    assert cancellation.remaining(5.0) == 5.0
    with cancellation.deadline(0.5, "create of X"):
        assert 0 < cancellation.remaining(5.0) <= 0.5
        seen: list[float] = []
        other = threading.Thread(target=lambda: seen.append(cancellation.remaining(5.0)))
        other.start()
        other.join()
        assert seen == [5.0]  # another thread's work has no deadline of ours
        cancellation.check()
    with cancellation.deadline(1e-9, "create of X"), pytest.raises(TimedOutError):
        cancellation.check()
    cancellation.check()  # the deadline ended with its block

"""Failures reach the user as one line of ours: resource, what failed, why, what to do; and
check failures name a property the engine can show."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import libvirt
import pytest

from tdx_provider.checking import Checker
from tdx_provider.dynamic._common import EngineProvider, ProviderError
from tdx_provider.errors import ConflictError, InputError, LibvirtOperationError
from tdx_provider.failures import failure_line
from tdx_provider.resources.base import Resource
from tdx_provider.specs import TRUST_DOMAIN

PROPS = {"owner": {"project": "p", "stack": "s", "resource": "disk"}, "uri": "qemu:///system"}


def test_input_error_names_resource_operation_field_and_next_step() -> None:
    line = failure_line("Overlay", PROPS, "create", InputError("capacity", "is too small"))
    assert line == ("Overlay 'disk': create failed: capacity: is too small; change capacity in "
                    "the program and run again")


def test_engine_advice_after_a_semicolon_is_kept_and_not_doubled() -> None:
    exc = ConflictError("volume 'x' already exists; choose another name or remove it")
    line = failure_line("Overlay", PROPS, "create", exc)
    assert line == ("Overlay 'disk': create failed: volume 'x' already exists; choose another "
                    "name or remove it")


def test_libvirt_failure_says_where_to_look() -> None:
    line = failure_line("Pool", PROPS, "delete", libvirt.libvirtError("internal error: boom\n"))
    assert line == ("Pool 'disk': delete failed: libvirt: internal error: boom; check libvirtd "
                    "at qemu:///system (`tdxctl --uri qemu:///system list`) and run again")


def test_a_multi_line_message_becomes_one_line() -> None:
    line = failure_line("Pool", PROPS, "read", LibvirtOperationError("a\n  b"))
    assert "\n" not in line and line.startswith("Pool 'disk': refresh failed: a b; ")


class _FailingEngine(Resource):
    spec = TRUST_DOMAIN

    def begin(self, operation: str, props: dict[str, Any]) -> None:
        pass

    def create(self, props: dict[str, Any]) -> Any:
        raise LibvirtOperationError("cannot start 'td': no memory")


class _Failing(EngineProvider):
    resource = "TrustDomain"
    engine = _FailingEngine()  # type: ignore[assignment]


def _as_the_server_formats_it(call: Any) -> str:
    """What Pulumi's dynamic-provider server sends: ``traceback.format_exc()``."""
    try:
        call()
    except Exception:
        return traceback.format_exc()
    raise AssertionError("no exception")


def test_the_server_prints_our_line_and_nothing_before_it() -> None:
    text = _as_the_server_formats_it(lambda: _Failing().create(PROPS))
    assert text.splitlines() == [
        "pulumi-tdx: TrustDomain 'disk': create failed: cannot start 'td': no memory; check "
        "libvirtd at qemu:///system (`tdxctl --uri qemu:///system list`) and run again"
    ]
    assert not hasattr(sys, "tracebacklimit")  # restored once formatted


def test_other_exceptions_keep_their_traceback() -> None:
    _as_the_server_formats_it(lambda: _Failing().create(PROPS))
    text = _as_the_server_formats_it(lambda: {}["missing"])
    assert text.startswith("Traceback (most recent call last):")


def test_provider_error_is_raised_without_engine_chaining() -> None:
    with pytest.raises(ProviderError) as info:
        _Failing().create(PROPS)
    assert info.value.__suppress_context__
    str(info.value)


def test_a_list_item_failure_names_the_top_level_input_and_the_item() -> None:
    checker = Checker({"gpus": ["0000:3b:00.0", "0000:99:00.0"], "qgs": {"path": "x"}})
    checker.fail("gpus[1]", "no PCI device 0000:99:00.0")
    checker.fail("qgs.path", "must be absolute")
    assert [(f.property, f.reason) for f in checker.failures] == [
        ("gpus", "gpus[1]: no PCI device 0000:99:00.0"),
        ("qgs", "qgs.path: must be absolute"),
    ]
    assert not checker.known("gpus") and not checker.known("qgs")

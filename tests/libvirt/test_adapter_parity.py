"""The same cases through both adapters give the same answers: the dynamic providers (plain
dicts) and the native provider (property values, camelCase) over one engine. Check failures
(property and reason), checked inputs and diffs (changes, replaces, delete-before-replace) must
agree; only the names differ in case. Against a real libvirtd: checks may ask it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pulumi.provider.experimental import provider as p

from tdx_provider.checking import UNKNOWN
from tdx_provider.dynamic._common import to_engine, to_pulumi
from tdx_provider.dynamic.base_image import BaseImageProvider
from tdx_provider.dynamic.cloud_init_seed import CloudInitSeedProvider
from tdx_provider.dynamic.overlay import OverlayProvider
from tdx_provider.dynamic.pool import PoolProvider
from tdx_provider.dynamic.trust_domain import TrustDomainProvider
from tdx_provider.native.provider import TdxProvider, camel_reason
from tdx_provider.native.values import from_plain, to_plain
from tdx_provider.specs import SPECS
from tdx_provider.specs.fields import snake

pytestmark = pytest.mark.libvirt
DYNAMIC = {"Pool": PoolProvider, "BaseImage": BaseImageProvider, "Overlay": OverlayProvider,
           "CloudInitSeed": CloudInitSeedProvider, "TrustDomain": TrustDomainProvider}
OWNER = {"project": "tests", "stack": "parity", "resource": "r"}

CHECK_CASES: list[tuple[str, dict[str, Any]]] = [
    ("Pool", {"name": "ptdx-parity", "path": "relative/dir"}),
    ("Pool", {"path": "/var/tmp/ptdx-parity"}),
    ("Pool", {"name": "bad name!", "path": "/var/tmp/ptdx-parity", "autostart": "yes"}),
    ("BaseImage", {"pool": "ptdx-parity-none", "source": "/nonexistent/base.qcow2",
                   "sha256": "xyz", "format": "vmdk", "name": "b"}),
    ("Overlay", {"pool": "ptdx-parity-none", "base_image": "/var/tmp/none/base",
                 "capacity": 0, "name": "o"}),
    ("Overlay", {"pool": UNKNOWN, "base_image": UNKNOWN, "name": "o"}),
    ("TrustDomain", {"overlay": "relative.qcow2", "memory_mib": 32, "vcpus": 0, "name": "t",
                     "gpus": ["zz"], "domain_type": "xen", "tdx": False, "vsock": False,
                     "network": None}),
    ("TrustDomain", {"overlay": UNKNOWN, "memory_mib": 256, "vcpus": 1, "name": "t",
                     "tdx": False, "domain_type": "qemu", "vsock": False, "network": None}),
    ("CloudInitSeed", {"pool": "ptdx-parity-none", "hostname": "-bad-", "name": "s",
                       "users": [{"name": "Bad User"}]}),
]


def urn(kind: str) -> str:
    return f"urn:pulumi:{OWNER['stack']}::{OWNER['project']}::tdx:index:{kind}::{OWNER['resource']}"


def native_check(kind: str, news: dict[str, Any]) -> p.CheckResponse:
    request = p.CheckRequest(urn(kind), {}, from_plain(news, SPECS[kind]), b"")
    return asyncio.run(TdxProvider().check(request))


@pytest.mark.parametrize(("kind", "news"), CHECK_CASES,
                         ids=[f"{k}-{i}" for i, (k, _) in enumerate(CHECK_CASES)])
def test_check_gives_the_same_failures_and_inputs(kind: str, news: dict[str, Any],
                                                  qemu_uri: str) -> None:
    news = {**news, "uri": qemu_uri}
    dynamic = DYNAMIC[kind]().check({}, to_pulumi({**news, "owner": OWNER}))
    native = native_check(kind, news)
    # the same failures; the native one names the property path as the schema does
    assert sorted((snake(f.property), f.reason) for f in native.failures or []) == sorted(
        (f.property, camel_reason(f.reason)) for f in dynamic.failures)
    assert native.inputs is not None
    assert to_plain(native.inputs, SPECS[kind]).values == to_engine(dynamic.inputs)


POOL_STATE = {"name": "ptdx-parity", "path": "/var/tmp/ptdx-parity", "autostart": True,
              "shared": False, "owner": OWNER, "uuid": "u", "state": "running", "capacity": 1,
              "allocation": 1, "available": 1, "adopted": False}
TD_STATE = {"overlay": "/var/tmp/d.qcow2", "memory_mib": 256, "vcpus": 1, "name": "t",
            "tdx": False, "domain_type": "qemu", "shutdown_timeout": 60, "autostart": False,
            "owner": OWNER, "auto_named": False, "uuid": "u", "state": "running"}
DIFF_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Pool", POOL_STATE, {}),
    ("Pool", POOL_STATE, {"autostart": False}),
    ("Pool", POOL_STATE, {"path": "/var/tmp/ptdx-parity-2"}),
    ("TrustDomain", TD_STATE, {"memory_mib": 512, "shutdown_timeout": 5}),
    ("TrustDomain", TD_STATE, {"overlay": UNKNOWN}),
    ("TrustDomain", {**TD_STATE, "auto_named": True}, {"vcpus": 2}),
]


@pytest.mark.parametrize(("kind", "olds", "change"), DIFF_CASES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(DIFF_CASES)])
def test_diff_gives_the_same_changes_and_replaces(kind: str, olds: dict[str, Any],
                                                  change: dict[str, Any], qemu_uri: str) -> None:
    olds = {**olds, "uri": qemu_uri}
    news = {k: v for k, v in {**olds, **change}.items() if k in {f.name for f in
                                                                 SPECS[kind].inputs}}
    dynamic = DYNAMIC[kind]().diff("id", to_pulumi(olds), to_pulumi(news))
    spec = SPECS[kind]
    request = p.DiffRequest(urn(kind), "id", from_plain(olds, spec), from_plain(news, spec), [])
    native = asyncio.run(TdxProvider().diff(request))
    assert bool(native.changes) == bool(dynamic.changes)
    assert sorted(snake(r) for r in native.replaces) == sorted(dynamic.replaces or [])
    assert native.delete_before_replace == bool(dynamic.delete_before_replace)
    if native.changes:
        assert {snake(k) for k in native.detailed_diff} == set(change)

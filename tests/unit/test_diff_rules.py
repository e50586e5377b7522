"""Diff and replacement rules of the four providers (what `pulumi preview` will show)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime.rpc import UNKNOWN

from tdx_provider.dynamic.base_image import BaseImageProvider
from tdx_provider.dynamic.overlay import OverlayProvider
from tdx_provider.dynamic.pool import PoolProvider
from tdx_provider.dynamic.trust_domain import TrustDomainProvider

OWNER = {"project": "p", "stack": "s", "resource": "r"}


def td_outputs(**overrides: Any) -> dict[str, Any]:
    """Old outputs of a running trust domain as they sit in state."""
    outs: dict[str, Any] = {
        "uri": "qemu:///system", "name": "td-a1b2c3d4", "auto_named": True,
        "overlay": "/pool/disk", "memory_mib": 2048, "vcpus": 2, "tdx": True,
        "firmware": "/fw", "kernel": None, "initrd": None, "cmdline": None, "gpus": [],
        "gpu_setup_command": None, "dma_entry_limit": 0x200000, "ssh_host_port": 0,
        "ssh_bind_address": "127.0.0.1", "network": None, "vsock": True, "cid": 3, "qgs": None,
        "domain_type": "kvm", "template": None, "console_log": None, "shutdown_timeout": 60,
        "autostart": False, "owner": OWNER, "uuid": "u", "state": "running",
        "ssh_port": 40022, "ip": None, "__provider": "x",
    }
    outs.update(overrides)
    return outs


def td_inputs(**overrides: Any) -> dict[str, Any]:
    """New checked inputs matching td_outputs (cid None: auto)."""
    news = {k: v for k, v in td_outputs().items() if k not in ("uuid", "state", "ssh_port", "ip")}
    news.update({"cid": None, "uuid": None, "state": None, "ssh_port": None, "ip": None})
    news.update(overrides)
    return news


def test_trust_domain_without_changes_reports_no_changes() -> None:
    result = TrustDomainProvider().diff("id", td_outputs(), td_inputs())
    assert result.changes is False
    assert not result.replaces


@pytest.mark.parametrize("key", ["autostart", "shutdown_timeout"])
def test_trust_domain_autostart_and_timeout_update_in_place(key: str) -> None:
    value = True if key == "autostart" else 5
    result = TrustDomainProvider().diff("id", td_outputs(), td_inputs(**{key: value}))
    assert result.changes is True
    assert result.replaces == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("memory_mib", 4096), ("vcpus", 4), ("tdx", False), ("kernel", "/k"), ("cid", 9),
     ("ssh_host_port", 2222), ("network", "default"), ("domain_type", "qemu")],
)
def test_trust_domain_other_inputs_replace_exactly_that_key(key: str, value: Any) -> None:
    result = TrustDomainProvider().diff("id", td_outputs(), td_inputs(**{key: value}))
    assert result.changes is True
    assert result.replaces == [key]


def test_memory_drift_read_back_by_refresh_shows_as_replacement() -> None:
    # refresh stored the live value (edited out of band); the program still says 2048
    result = TrustDomainProvider().diff("id", td_outputs(memory_mib=1024), td_inputs())
    assert result.replaces == ["memory_mib"]


def test_auto_cid_matches_whatever_libvirt_assigned() -> None:
    result = TrustDomainProvider().diff("id", td_outputs(cid=42), td_inputs(cid=None))
    assert result.changes is False


def test_fixed_name_replacement_deletes_first() -> None:
    olds = td_outputs(name="td1", auto_named=False)
    news = td_inputs(name="td1", auto_named=False, memory_mib=4096, overlay="/pool/other")
    assert TrustDomainProvider().diff("id", olds, news).delete_before_replace is True


def test_gpu_domain_replacement_deletes_first() -> None:
    olds = td_outputs(gpus=["0000:3b:00.0"])
    news = td_inputs(gpus=["0000:3b:00.0"], memory_mib=4096, overlay="/pool/other")
    assert TrustDomainProvider().diff("id", olds, news).delete_before_replace is True


def test_auto_named_domain_on_the_same_disk_deletes_first() -> None:
    # QEMU locks the image: the new guest could not start while the old one holds the overlay
    result = TrustDomainProvider().diff("id", td_outputs(), td_inputs(memory_mib=4096))
    assert result.delete_before_replace is True


def test_auto_named_domain_on_a_new_disk_is_created_before_the_old_is_deleted() -> None:
    result = TrustDomainProvider().diff("id", td_outputs(), td_inputs(overlay="/pool/new"))
    assert result.replaces == ["overlay"]
    assert result.delete_before_replace is False


def test_unknown_overlay_during_preview_is_a_replacement() -> None:
    result = TrustDomainProvider().diff("id", td_outputs(), td_inputs(overlay=UNKNOWN))
    assert result.replaces == ["overlay"]


def test_stopped_domain_is_updated_to_start_it_again() -> None:
    result = TrustDomainProvider().diff("id", td_outputs(state="shutoff"), td_inputs())
    assert result.changes is True
    assert result.replaces == []


def pool_outputs(**overrides: Any) -> dict[str, Any]:
    outs = {"uri": "qemu:///system", "name": "p1", "path": "/pools/p1", "autostart": True,
            "uuid": "u", "state": "running", "capacity": 1, "allocation": 1, "available": 1,
            "adopted": False}
    outs.update(overrides)
    return outs


def test_pool_autostart_updates_and_path_replaces_deleting_first() -> None:
    provider = PoolProvider()
    news = {k: v for k, v in pool_outputs().items()}
    assert provider.diff("p1", pool_outputs(), news).changes is False
    assert provider.diff("p1", pool_outputs(), {**news, "autostart": False}).replaces == []
    moved = provider.diff("p1", pool_outputs(), {**news, "path": "/pools/elsewhere"})
    assert moved.replaces == ["path"]
    assert moved.delete_before_replace is True


def base_outputs(**overrides: Any) -> dict[str, Any]:
    outs = {"uri": "qemu:///system", "pool": "p1", "name": "base", "auto_named": False,
            "source": "/img.qcow2", "sha256": "a" * 64, "format": "qcow2", "owner": OWNER,
            "path": "/pools/p1/base", "key": "/pools/p1/base", "capacity": 1, "allocation": 1}
    outs.update(overrides)
    return outs


def test_base_image_unpinned_digest_and_format_are_not_changes() -> None:
    news = base_outputs(sha256=None, format=None)
    assert BaseImageProvider().diff("k", base_outputs(), news).changes is False


@pytest.mark.parametrize(
    ("key", "value"),
    [("source", "/other.qcow2"), ("sha256", "b" * 64), ("name", "base2"), ("pool", "p2"),
     ("format", "raw")],
)
def test_base_image_identity_changes_replace(key: str, value: Any) -> None:
    result = BaseImageProvider().diff("k", base_outputs(), base_outputs(**{key: value}))
    assert result.replaces == [key]
    assert result.delete_before_replace is True  # the name is fixed by the user


def overlay_outputs(**overrides: Any) -> dict[str, Any]:
    outs = {"uri": "qemu:///system", "pool": "p1", "name": "disk-1234abcd", "auto_named": True,
            "base_image": "/pools/p1/base", "capacity": 1 << 30, "owner": OWNER,
            "path": "/pools/p1/disk", "key": "/pools/p1/disk", "backing_path": "/pools/p1/base"}
    outs.update(overrides)
    return outs


def test_overlay_default_capacity_is_not_a_change() -> None:
    result = OverlayProvider().diff("k", overlay_outputs(), overlay_outputs(capacity=None))
    assert result.changes is False


def test_overlay_growth_is_an_in_place_update() -> None:
    result = OverlayProvider().diff("k", overlay_outputs(), overlay_outputs(capacity=2 << 30))
    assert result.changes is True
    assert result.replaces == []


def test_overlay_shrink_is_refused_at_preview_naming_capacity() -> None:
    with pytest.raises(Exception, match=r"^Overlay '\w+': diff failed: capacity: shrinking .* "
                       r"would lose data; grow it, or replace it by changing its name$"):
        OverlayProvider().diff("k", overlay_outputs(), overlay_outputs(capacity=1 << 20))


def test_overlay_new_base_replaces_creating_first_when_auto_named() -> None:
    result = OverlayProvider().diff("k", overlay_outputs(), overlay_outputs(base_image="/b2"))
    assert result.replaces == ["base_image"]
    assert result.delete_before_replace is False

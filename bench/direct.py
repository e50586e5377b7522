"""Our provider without Pulumi: the dynamic-provider adapters called in this process, exactly as
the dynamic-provider server calls them (check, then create; delete with the outputs), with the
props dicts our SDK builds. This is "our time" per phase, next to the floor's."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi.log

from pulumi_tdx.base_image import BaseImageArgs
from pulumi_tdx.overlay import OverlayArgs
from pulumi_tdx.pool import PoolArgs
from pulumi_tdx.trust_domain import TrustDomainArgs
from tdx_provider.dynamic.base_image import BaseImageProvider
from tdx_provider.dynamic.overlay import OverlayProvider
from tdx_provider.dynamic.pool import PoolProvider
from tdx_provider.dynamic.trust_domain import TrustDomainProvider

from .common import CMDLINE, DOMAIN_TYPE, MEMORY_MIB, SHUTDOWN_TIMEOUT, URI, VCPUS, TestGuest
from .layout import Layout
from .teardown import GuestTeardown, parse_reports

_log_lock = threading.Lock()
_captured: list[str] = []


@contextlib.contextmanager
def captured_provider_log() -> Iterator[list[str]]:
    """Collect what the adapters send to ``pulumi.log.info`` (outside an engine it would go to
    stderr). The delete adapter reports how long the ACPI shutdown took there."""
    original = pulumi.log.info

    def capture(msg: str, *_args: Any, **_kwargs: Any) -> None:
        with _log_lock:
            _captured.append(msg)

    pulumi.log.info = capture  # type: ignore[assignment]
    try:
        yield _captured
    finally:
        pulumi.log.info = original  # type: ignore[assignment]


def _owner(resource: str) -> dict[str, str]:
    return {"project": "ptdx-bench", "stack": "direct", "resource": resource}


def _check_create(provider: Any, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    checked = provider.check({}, props)
    if checked.failures:
        raise RuntimeError(f"check failed: {[(f.property, f.reason) for f in checked.failures]}")
    result = provider.create(checked.inputs)
    return result.id, result.outs


class ProviderDriver:
    kind = "provider"

    def __init__(self, layout: Layout, guest: TestGuest, source: Path | None = None) -> None:
        self.layout = layout
        self.guest = guest
        self.source = source or guest.base_image
        self._state: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _keep(self, key: str, value: tuple[str, dict[str, Any]]) -> None:
        with self._lock:
            self._state[key] = value

    def _get(self, key: str) -> tuple[str, dict[str, Any]]:
        with self._lock:
            return self._state[key]

    def create_pool(self) -> None:
        props = {**vars(PoolArgs(name=self.layout.pool, path=self.layout.pool_path,
                                 autostart=False, uri=URI)),
                 "uuid": None, "state": None, "capacity": None, "allocation": None,
                 "available": None, "adopted": None}
        self._keep("pool", _check_create(PoolProvider(), props))

    def import_base(self) -> None:
        props = {**vars(BaseImageArgs(pool=self.layout.pool, source=str(self.source),
                                      name=self.layout.base, uri=URI)),
                 "owner": _owner("base"), "path": None, "key": None, "capacity": None,
                 "allocation": None}
        self._keep("base", _check_create(BaseImageProvider(), props))

    def create_overlay(self, i: int) -> None:
        base_path = self._get("base")[1]["path"]
        props = {**vars(OverlayArgs(pool=self.layout.pool, base_image=base_path,
                                    name=self.layout.overlay(i), uri=URI)),
                 "owner": _owner(f"disk-{i}"), "path": None, "key": None, "backing_path": None}
        self._keep(f"disk-{i}", _check_create(OverlayProvider(), props))

    def create_domain(self, i: int) -> None:
        overlay = self._get(f"disk-{i}")[1]["path"]
        args = TrustDomainArgs(
            overlay=overlay, memory_mib=MEMORY_MIB, vcpus=VCPUS, name=self.layout.domain(i),
            tdx=False, domain_type=DOMAIN_TYPE, kernel=str(self.guest.kernel),
            initrd=str(self.guest.initrd), cmdline=CMDLINE, network=None, vsock=False,
            console_log=str(self.layout.console(i)), shutdown_timeout=SHUTDOWN_TIMEOUT, uri=URI,
        )
        props = {**vars(args), "owner": _owner(f"td-{i}"), "uuid": None, "state": None,
                 "ssh_port": None, "ip": None}
        self._keep(f"td-{i}", _check_create(TrustDomainProvider(), props))

    def delete_domain(self, i: int) -> GuestTeardown:
        id_, outs = self._get(f"td-{i}")
        record = GuestTeardown(self.layout.domain(i))
        record.requested = time.monotonic()
        TrustDomainProvider().delete(id_, outs)
        record.returned = time.monotonic()
        with _log_lock:
            reports = parse_reports("\n".join(_captured))
        if record.name in reports:
            record.reported, record.graceful = reports[record.name]
        return record

    def delete_overlay(self, i: int) -> None:
        OverlayProvider().delete(*self._get(f"disk-{i}"))

    def delete_base(self) -> None:
        BaseImageProvider().delete(*self._get("base"))

    def delete_pool(self) -> None:
        PoolProvider().delete(*self._get("pool"))

    def close(self) -> None:
        with _log_lock:
            _captured.clear()

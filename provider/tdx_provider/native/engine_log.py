"""Messages to the Pulumi engine's log, shown under the resource they concern.

The engine passes its address on the plugin's command line; the channel opens on the first
message (most runs send none).
"""

from __future__ import annotations

import contextlib
from typing import Any


class EngineLog:
    def __init__(self, address: str | None) -> None:
        self.address = address
        self._stub: Any = None

    async def _log(self, severity: int, message: str, urn: str) -> None:
        if not self.address:
            return
        import grpc.aio
        from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

        if self._stub is None:
            self._stub = engine_pb2_grpc.EngineStub(grpc.aio.insecure_channel(self.address))
        request = engine_pb2.LogRequest(severity=severity, message=message, urn=urn)  # type: ignore[arg-type]
        # a message the engine can no longer take is no failure of the operation
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self._stub.Log(request)

    async def info(self, message: str, urn: str) -> None:
        await self._log(1, message, urn)

    async def warning(self, message: str, urn: str) -> None:
        await self._log(2, message, urn)

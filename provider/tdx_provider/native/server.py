"""The full gRPC servicer: Pulumi's experimental provider server over :class:`TdxProvider`.

Pulumi's server wraps a handler's exception with its traceback; a
:class:`~tdx_provider.native.provider.UserError` is answered with its one line instead, so a
user sees what to change and not our frames.
"""

from __future__ import annotations

from typing import Any

import grpc
from pulumi.provider.experimental.server import ProviderServicer

from tdx_provider import __version__
from tdx_provider.native.provider import TdxProvider, UserError

# Handlers whose UserError is the user's answer.
_ONE_LINE = ("CheckConfig", "Configure", "Check", "Diff", "Create", "Read", "Update", "Delete")


def _one_line(method: Any) -> Any:
    async def handler(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except Exception as exc:
            # The server re-raised it as Exception("<message>:\n<traceback>") inside `except`.
            cause = exc if isinstance(exc, UserError) else exc.__context__
            if isinstance(cause, UserError):
                await context.abort(grpc.StatusCode.UNKNOWN, str(cause))
            raise

    handler.__name__ = method.__name__
    return handler


TdxServicer = type("TdxServicer", (ProviderServicer,),
                   {name: _one_line(getattr(ProviderServicer, name)) for name in _ONE_LINE})


class _Capture:
    """Stands in for a server to take the handler Pulumi's generated code registers."""

    handler: Any = None

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        (self.handler,) = handlers


def generic_handler(engine_address: str | None) -> Any:
    """The ResourceProvider service of a new :class:`TdxProvider`, as one generic handler."""
    from pulumi.runtime.proto import provider_pb2_grpc

    servicer = TdxServicer([], __version__, TdxProvider(engine_address),
                           engine_address=engine_address or "")
    capture = _Capture()
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, capture)
    return capture.handler

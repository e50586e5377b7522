"""``pulumi-resource-tdx``: the plugin process Pulumi starts (found on PATH).

Pulumi runs it with the engine's address as an argument and reads the port it listens on from
the first line of stdout. Start-up is a fixed cost of every Pulumi command, so this module
imports only grpc: GetSchema and GetPluginInfo are answered from a file and a constant,
Handshake (the CLI's first call, which Pulumi's experimental provider server does not implement)
is refused as that server would refuse it, and the Pulumi SDK, the engine's controllers and
libvirt are imported in a background thread as soon as the port is out (:mod:`.server`), so
that import overlaps the engine's own start-up instead of delaying the first real call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from typing import Any

SERVICE = "/pulumirpc.ResourceProvider/"
# Pulumi's own limits (pulumi.runtime._grpc_settings), without importing the SDK for them.
_OPTIONS = [("grpc.max_receive_message_length", 400 * 1024 * 1024),
            ("grpc.server_max_unrequested_time_in_server", 30 * 60)]


def _string_message(text: str) -> bytes:
    """A protobuf message whose field 1 is ``text`` (GetSchemaResponse, PluginInfo)."""
    data = text.encode()
    size, varint = len(data), bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        varint.append(byte | (0x80 if size else 0))
        if not size:
            break
    return b"\x0a" + bytes(varint) + data


async def _schema(_request: bytes, _context: Any) -> bytes:
    from tdx_provider.native import schema

    return _string_message(schema.text())


async def _handshake(_request: bytes, context: Any) -> bytes:
    """What the full servicer answers too (its generated base class): not implemented, so the
    engine configures the provider the older way (CheckConfig, Configure)."""
    import grpc

    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
    raise AssertionError("abort raises")


def _prewarm() -> None:
    """Import the full server and the resource controllers (libvirt, lxml, Jinja2 with them)
    off the critical path, so the first Check does not pay for them (a failure shows at the
    first real call)."""
    with contextlib.suppress(Exception):
        import tdx_provider.native.server
        import tdx_provider.resources  # noqa: F401


async def _plugin_info(_request: bytes, _context: Any) -> bytes:
    from tdx_provider import __version__

    return _string_message(__version__)


def _handlers(engine_address: str | None) -> Any:
    import grpc

    class Handlers(grpc.GenericRpcHandler):
        """The two start-up calls inline; every other call through the full servicer."""

        def __init__(self) -> None:
            self.fast = {f"{SERVICE}GetSchema": grpc.unary_unary_rpc_method_handler(_schema),
                         f"{SERVICE}GetPluginInfo":
                         grpc.unary_unary_rpc_method_handler(_plugin_info),
                         f"{SERVICE}Handshake": grpc.unary_unary_rpc_method_handler(_handshake)}
            self.full: Any = None

        def service(self, details: Any) -> Any:
            if details.method in self.fast:
                return self.fast[details.method]
            if self.full is None:
                from tdx_provider.native.server import generic_handler

                self.full = generic_handler(engine_address)
            return self.full.service(details)

    return Handlers()


async def serve(engine_address: str | None) -> None:
    import grpc.aio

    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers((_handlers(engine_address),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    threading.Thread(target=_prewarm, name="prewarm", daemon=True).start()
    try:
        await server.wait_for_termination()
    finally:  # stopped here, on the loop, not by the server's __del__ after the loop closed
        await server.stop(None)


def main() -> None:
    """Entry point: ``pulumi-resource-tdx [flags] <engine address>``."""
    # libvirt forks children (ssh for qemu+ssh://) from threads while grpc runs: grpc's fork
    # handlers must stay out of them (set before grpc is imported).
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    positional = [a for a in sys.argv[1:] if not a.startswith("-")]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(positional[0] if positional else None))


if __name__ == "__main__":
    main()

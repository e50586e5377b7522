"""The native provider: Pulumi's provider protocol over the engine's resource controllers.

Every method translates and decides nothing: the request's property values become the
engine's plain snake_case dicts (:mod:`.values`), the controller of the URN's type does the
work in a worker thread (libvirt calls block; the asyncio loop keeps serving other requests),
and the answer goes back camelCase with secrets marked. Engine failures (our errors, libvirt's,
files and URLs) become one line that names the resource, the operation and the field
(:class:`UserError`); a bug of ours keeps its traceback.

The engine needs two things a Pulumi program does not say: the owner tag, which we derive from
the URN (project, stack, resource name), and the ``uri`` of resources that set none, which is
the provider's (``tdx:uri`` config or an explicit provider's ``uri``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue

from tdx_provider.checking import UNKNOWN
from tdx_provider.defaults import URI as DEFAULT_URI
from tdx_provider.native import schema
from tdx_provider.native.engine_log import EngineLog
from tdx_provider.native.values import Plain, from_plain, to_plain
from tdx_provider.specs.fields import camel

T = TypeVar("T")

# Worker threads for blocking engine calls: at least what `pulumi up --parallel` asks for (a
# TrustDomain delete may wait a minute for an ACPI shutdown, and must not hold others back).
WORKERS = int(os.environ.get("PULUMI_TDX_NATIVE_WORKERS", "256"))

_Kind = p.PropertyDiffKind
# Seconds a delete needs after its ACPI wait (force off, undefine): kept from customTimeouts.
DELETE_MARGIN = 3


class UserError(Exception):
    """A failure the user can act on: its message is the whole answer, one line."""


def owner_from_urn(urn: str) -> dict[str, str]:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> the owner tag the engine marks
    libvirt objects with (the dynamic SDK passes the same three values)."""
    head, project, _type, *name = urn.split("::")
    return {"project": project, "stack": head.split(":", 2)[-1], "resource": "::".join(name)}


def _type_name(urn: str) -> str:
    """The spec name of a URN's resource type: ``...::tdx:index:Pool::p`` -> ``Pool``."""
    return urn.split("::")[2].rsplit("$", 1)[-1].rsplit(":", 1)[-1]


class TdxProvider(p.Provider):
    """One provider instance (one plugin process): one libvirt host by default."""

    def __init__(self, engine_address: str | None = None) -> None:
        self.uri = DEFAULT_URI
        self.cancelled = False
        self.log = EngineLog(engine_address)
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="tdx")

    # -- plumbing ---------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.cancelled:
            raise UserError("tdx: the operation was cancelled before it started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _resource(self, urn: str) -> tuple[Any, Any]:
        """(spec, controller) of the URN's resource type."""
        from tdx_provider.resources import RESOURCES
        from tdx_provider.specs import SPECS

        name = _type_name(urn)
        if name not in SPECS or name not in RESOURCES:
            raise UserError(f"tdx: unknown resource type in {urn!r}")
        return SPECS[name], RESOURCES[name]

    async def _call(self, controller: Any, props: dict[str, Any], operation: str,
                    *args: Any, timeout: float | None = None) -> Any:
        """``controller.<operation>(*args)`` off the loop, within ``timeout`` seconds when
        given (``customTimeouts``); failures a user can cause or meet (our engine's errors,
        libvirt's, files and URLs) come back as one line."""
        import libvirt

        from tdx_provider import cancellation
        from tdx_provider.errors import TdxError
        from tdx_provider.failures import failure_line

        def run() -> Any:
            with cancellation.deadline(timeout, f"{operation} of {controller.spec.name}"):
                controller.begin(operation, props)
                return getattr(controller, operation)(*args)

        try:
            return await self._run(run)
        except (TdxError, libvirt.libvirtError, OSError) as exc:
            raise UserError(failure_line(controller.spec.name, props, operation, exc)) from None

    def _plain(self, urn: str, spec: Any, props: dict[str, PropertyValue]) -> Plain:
        """Wire properties as the engine wants them: owner from the URN, the provider's uri."""
        plain = to_plain(props, spec)
        plain.values["owner"] = owner_from_urn(urn)
        if plain.values.get("uri") is None and "uri" in {f.name for f in spec.fields}:
            plain.values["uri"] = self.uri
        derived = {f.name for f in spec.fields
                   if f.secret_when and plain.values.get(f.secret_when) is not None}
        return Plain(plain.values, plain.secret | derived)

    # -- schema and configuration ------------------------------------------------------------
    async def get_schema(self, request: p.GetSchemaRequest) -> p.GetSchemaResponse:
        return p.GetSchemaResponse(schema=schema.text())

    async def check_config(self, request: p.CheckRequest) -> p.CheckResponse:
        from tdx_provider import validation
        from tdx_provider.errors import InputError

        failures = []
        uri = request.new_inputs.get("uri")
        if uri is not None and uri.value is not None:
            try:
                validation.uri("uri", uri.value)
            except InputError as exc:
                failures.append(p.CheckFailure("uri", exc.reason))
        return p.CheckResponse(inputs=request.new_inputs, failures=failures)

    async def configure(self, request: p.ConfigureRequest) -> p.ConfigureResponse:
        uri = request.args.get("uri")
        if uri is not None and isinstance(uri.value, str) and uri.value:
            self.uri = uri.value
        elif request.variables.get("tdx:uri"):
            self.uri = request.variables["tdx:uri"]
        # Create and Update answer previews (outputs not known yet are unknown, which YAML
        # needs: a missing output is null to it); ids stand for resources.
        return p.ConfigureResponse(accept_secrets=True, supports_preview=True,
                                   accept_resources=False, accept_outputs=False)

    # -- resources --------------------------------------------------------------------------
    async def check(self, request: p.CheckRequest) -> p.CheckResponse:
        spec, controller = self._resource(request.urn)
        olds = self._plain(request.urn, spec, request.old_inputs) if request.old_inputs else None
        news = self._plain(request.urn, spec, request.new_inputs)
        checked = await self._call(controller, news.values, "check",
                                   olds.values if olds else {}, news.values)
        for warning in checked.warnings:
            await self.log.warning(warning, request.urn)
        names = {f.name: f.wire for f in spec.fields}
        failures = [p.CheckFailure(names.get(f.property, f.property), camel_reason(f.reason))
                    for f in checked.failures]
        return p.CheckResponse(inputs=from_plain(checked.inputs, spec, news.secret),
                               failures=failures)

    async def diff(self, request: p.DiffRequest) -> p.DiffResponse:
        spec, controller = self._resource(request.urn)
        olds = self._plain(request.urn, spec, request.old_state).values
        news = self._plain(request.urn, spec, request.new_inputs).values
        diff = await self._call(controller, news, "diff", olds, news)
        if not diff.changes:
            return p.DiffResponse(changes=False)
        names = {f.name: f.wire for f in spec.fields}
        detailed: dict[str, p.PropertyDiff] = {}
        for key in diff.changed:
            replace = key in diff.replaces
            if olds.get(key) is None:
                kind = _Kind.ADD_REPLACE if replace else _Kind.ADD
            elif news.get(key) is None:
                kind = _Kind.DELETE_REPLACE if replace else _Kind.DELETE
            else:
                kind = _Kind.UPDATE_REPLACE if replace else _Kind.UPDATE
            detailed[names.get(key, key)] = p.PropertyDiff(kind, input_diff=True)
        return p.DiffResponse(
            changes=True, replaces=[names.get(k, k) for k in diff.replaces],
            diffs=list(detailed), detailed_diff=detailed,
            delete_before_replace=bool(diff.delete_before_replace))

    async def create(self, request: p.CreateRequest) -> p.CreateResponse:
        spec, controller = self._resource(request.urn)
        props = self._plain(request.urn, spec, request.properties)
        if request.preview:  # what only create reports is not known yet: unknown, not null
            unknown = {f.name: UNKNOWN for f in spec.outputs
                       if not f.input and props.values.get(f.name) is None}
            return p.CreateResponse("", from_plain({**props.values, **unknown}, spec,
                                                     props.secret))
        state = await self._call(controller, props.values, "create", props.values,
                                 timeout=request.timeout or None)
        outputs = {**props.values, **state.outputs}
        return p.CreateResponse(state.id, from_plain(outputs, spec, props.secret))

    async def read(self, request: p.ReadRequest) -> p.ReadResponse:
        """Refresh, or ``pulumi import`` (the ID alone: owner and uri come from the URN and
        the provider). The inputs returned are what the program should say for what is there
        now: the old inputs with what the engine read, so a drift shows as a diff of inputs
        and an imported resource previews with no change."""
        spec, controller = self._resource(request.urn)
        old_inputs = self._plain(request.urn, spec, request.inputs)
        props = self._plain(request.urn, spec, {**request.inputs, **request.properties})
        state = await self._call(controller, props.values, "read", request.resource_id,
                                 props.values)
        if state is None:
            return p.ReadResponse()  # gone: the engine drops it from state
        outputs = {**props.values, **state.outputs}
        if not request.properties and not request.inputs:  # an import: check's defaults too
            outputs = {**{f.name: f.default for f in spec.inputs
                          if f.has_default and not f.sdk_default}, **outputs}
        names = {f.name for f in spec.inputs}
        inputs = {**old_inputs.values,
                  **{k: v for k, v in state.outputs.items() if k in names}}
        return p.ReadResponse(state.id, from_plain(outputs, spec, props.secret),
                              from_plain(inputs, spec, props.secret))

    async def update(self, request: p.UpdateRequest) -> p.UpdateResponse:
        spec, controller = self._resource(request.urn)
        olds = self._plain(request.urn, spec, request.olds)
        news = self._plain(request.urn, spec, request.news)
        if request.preview:  # the outputs an update leaves are the old ones, until it runs
            return p.UpdateResponse(from_plain({**olds.values, **news.values}, spec,
                                               news.secret))
        outputs = await self._call(controller, news.values, "update", request.resource_id,
                                   olds.values, news.values, timeout=request.timeout or None)
        return p.UpdateResponse(from_plain({**news.values, **outputs}, spec, news.secret))

    async def delete(self, request: p.DeleteRequest) -> None:
        spec, controller = self._resource(request.urn)
        props = self._plain(request.urn, spec, request.properties)
        if request.timeout and props.values.get("shutdown_timeout") is not None:
            # customTimeouts.delete bounds the ACPI wait, so the delete ends (forced off)
            # within it instead of overrunning it
            bound = max(0, int(request.timeout) - DELETE_MARGIN)
            props.values["shutdown_timeout"] = min(props.values["shutdown_timeout"], bound)
        line = await self._call(controller, props.values, "delete", request.resource_id,
                                props.values)
        if line:
            await self.log.info(line, request.urn)

    async def cancel(self) -> None:
        """The engine is stopping (Ctrl-C): calls not started yet are refused, and running
        ones end their waits now, the way a timeout would end them (see
        :mod:`tdx_provider.cancellation`: a delete still completes, forced)."""
        from tdx_provider import cancellation

        self.cancelled = True
        cancellation.request()


def camel_reason(reason: str) -> str:
    """``memory_mib: is more than...`` -> ``memoryMib: is more than...``: the property path a
    failure starts with, in the schema's names (``qgs.vsock_cid`` -> ``qgs.vsockCid``)."""
    path, sep, rest = reason.partition(": ")
    if not sep or not re.fullmatch(r"[a-z0-9_.\[\]]+", path):
        return reason
    return re.sub(r"[a-z0-9_]+", lambda m: camel(m.group(0)), path) + sep + rest

"""The dynamic adapter: Pulumi's ``ResourceProvider`` methods translated to the engine's
resource controllers (unknown values, check failures, diff results, one-line errors)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN as WIRE_UNKNOWN

from tdx_provider.checking import UNKNOWN

if TYPE_CHECKING:
    from tdx_provider.resources.base import Resource


def to_engine(value: Any) -> Any:
    """Pulumi's unknowns (``Unknown`` objects at preview, the wire sentinel) become the
    engine's; numbers that are whole (the wire carries doubles) become ints."""
    if isinstance(value, Unknown) or (isinstance(value, str) and value == WIRE_UNKNOWN):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [to_engine(v) for v in value]
    if isinstance(value, dict):
        return {k: to_engine(v) for k, v in value.items()}
    return value


def to_pulumi(value: Any) -> Any:
    """The engine's unknowns become the wire sentinel (serialised back as "unknown")."""
    if value is UNKNOWN:
        return WIRE_UNKNOWN
    if isinstance(value, list):
        return [to_pulumi(v) for v in value]
    if isinstance(value, dict):
        return {k: to_pulumi(v) for k, v in value.items()}
    return value


class EngineProvider(ResourceProvider):
    """A dynamic provider over one engine resource. Subclasses name it in :attr:`resource`
    (their module and class names are pickled into users' state: never move or rename them).
    The engine is imported at the first call: a program that imports the SDK loads no libvirt."""

    resource: ClassVar[str]

    @property
    def engine(self) -> Resource:
        from tdx_provider.resources import RESOURCES

        return RESOURCES[self.resource]

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        checked = self._call("check", news, lambda: self.engine.check(to_engine(olds),
                                                                      to_engine(news)))
        failures = [CheckFailure(f.property, f.reason) for f in checked.failures]
        return CheckResult(to_pulumi(checked.inputs), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        diff = self._call("diff", news, lambda: self.engine.diff(to_engine(olds),
                                                                 to_engine(news)))
        if not diff.changes:
            return DiffResult(changes=False, replaces=[])
        return DiffResult(changes=True, replaces=list(diff.replaces),
                          delete_before_replace=diff.delete_before_replace)

    def create(self, props: dict[str, Any]) -> CreateResult:
        state = self._call("create", props, lambda: self.engine.create(to_engine(props)))
        return CreateResult(state.id, state.outputs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        state = self._call("read", props, lambda: self.engine.read(id_, to_engine(props)))
        return ReadResult(None, {}) if state is None else ReadResult(state.id, state.outputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outputs = self._call("update", news, lambda: self.engine.update(
            id_, to_engine(olds), to_engine(news)))
        return UpdateResult(outputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        line = self._call("delete", props, lambda: self.engine.delete(id_, to_engine(props)))
        if line:
            import pulumi

            pulumi.log.info(line)

    def _call(self, operation: str, props: dict[str, Any], action: Any) -> Any:
        """Run an engine call; failures a user can cause or meet (our engine's errors,
        libvirt's, files and URLs) leave as one line of ours."""
        import libvirt  # at call time: the SDK imports this module and knows nothing of libvirt

        from tdx_provider.errors import TdxError
        from tdx_provider.failures import failure_line

        props = to_engine(props)
        try:
            self.engine.begin(operation, props)
            return action()
        except (TdxError, libvirt.libvirtError, OSError) as exc:
            raise ProviderError(failure_line(self.engine.spec.name, props, operation,
                                             exc)) from None


class ProviderError(Exception):
    """What the engine shows the user: one line of ours, without a traceback.

    Pulumi's dynamic-provider server answers every exception with ``traceback.format_exc()``,
    which honours ``sys.tracebacklimit``: with 0 it prints no frames and no "Traceback" header,
    only ``<type>: <message>``. So the limit is 0 from the moment we raise a ProviderError until
    the server formats it (``str()`` is the last thing formatting does, after the frames were
    skipped); other exceptions, such as a bug of ours, keep their traceback. (The native
    provider needs no such trick: it answers with the message alone.)
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._quiet = _QuietTracebacks.enter()

    def __str__(self) -> str:
        if self._quiet:
            self._quiet = False
            _QuietTracebacks.leave()
        return str(self.args[0])


# Shown as the type before our message: "pulumi-tdx: Pool 'pool': create failed: ...".
ProviderError.__module__ = "builtins"
ProviderError.__qualname__ = "pulumi-tdx"


class _QuietTracebacks:
    """``sys.tracebacklimit = 0`` while at least one ProviderError awaits formatting (the
    server runs 4 calls at once); the previous value comes back after the last one."""

    _lock = threading.Lock()
    _count = 0
    _saved: Any = None

    @classmethod
    def enter(cls) -> bool:
        with cls._lock:
            if cls._count == 0:
                cls._saved = getattr(sys, "tracebacklimit", _UNSET)
                sys.tracebacklimit = 0
            cls._count += 1
        return True

    @classmethod
    def leave(cls) -> None:
        with cls._lock:
            cls._count -= 1
            if cls._count == 0:
                if cls._saved is _UNSET:
                    del sys.tracebacklimit
                else:
                    sys.tracebacklimit = cls._saved


_UNSET = object()

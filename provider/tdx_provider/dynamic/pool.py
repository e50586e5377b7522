"""Pool: a libvirt ``dir`` storage pool."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from ._common import Checker, adapter, diff, owner_of

REPLACE_KEYS = ("name", "path", "uri")
UPDATE_KEYS = ("autostart", "shared")


def _outputs(props: dict[str, Any], info: Any, adopted: bool) -> dict[str, Any]:
    return {
        **props,
        "name": info.name,
        "path": info.path,
        "uuid": info.uuid,
        "state": info.state,
        "autostart": info.autostart,
        "capacity": info.capacity,
        "allocation": info.allocation,
        "available": info.available,
        "adopted": adopted,
    }


class PoolProvider(ResourceProvider):
    @adapter
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from tdx_provider import validation

        checker = Checker(news)
        checker.inputs.setdefault("autostart", True)
        checker.inputs["shared"] = checker.inputs.get("shared") or False
        checker.field("uri", validation.uri)
        checker.field("name", validation.name)
        checker.field(
            "path", lambda f, v: validation.absolute_path(f, v, must_exist=False)
        )
        checker.field("autostart", validation.boolean)
        checker.field("shared", validation.boolean)
        return CheckResult(checker.inputs, checker.failures)

    @adapter
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The pool name is always given by the user: a replacement must delete first.
        # Stacks made before `shared` existed have no such output: it was False.
        olds = {**olds, "shared": bool(olds.get("shared"))}
        if news.get("shared") is None:
            news = {**news, "shared": False}
        return diff(olds, news, replace_keys=REPLACE_KEYS, update_keys=UPDATE_KEYS,
                    delete_before_replace=True)

    @adapter
    def create(self, props: dict[str, Any]) -> CreateResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import pool

        with connect(props["uri"]) as conn:
            owner = owner_of(props) if props.get("owner") else None
            info, adopted = pool.ensure(conn, props["name"], props["path"], props["autostart"],
                                        owner=owner)
        return CreateResult(info.name, _outputs(props, info, adopted))

    @adapter
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import pool

        with connect(props["uri"]) as conn:
            info = pool.read(conn, id_)
        if info is None:
            return ReadResult(None, {})
        return ReadResult(id_, _outputs(props, info, bool(props.get("adopted"))))

    @adapter
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import pool

        with connect(news["uri"]) as conn:
            info = pool.set_autostart(conn, id_, news["autostart"])
        return UpdateResult(_outputs(news, info, bool(olds.get("adopted"))))

    @adapter
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from tdx_provider.connection import connect
        from tdx_provider.storage import pool

        with connect(props["uri"]) as conn:
            # A pool that existed before this stack adopted it stays defined, and so does one
            # marked `shared` (other stacks adopt it): it outlives this stack.
            keep = bool(props.get("adopted")) or bool(props.get("shared"))
            pool.delete(conn, id_, undefine=not keep)


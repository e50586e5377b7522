"""Pool: define, build, start and adopt ``dir`` pools; keep shared and adopted ones on delete."""

from __future__ import annotations

from typing import Any

from tdx_provider.connection import connect
from tdx_provider.specs import POOL
from tdx_provider.storage import pool

from .base import Resource, State, owner_of


def _outputs(props: dict[str, Any], info: Any, adopted: bool) -> dict[str, Any]:
    return {**props, "name": info.name, "path": info.path, "uuid": info.uuid,
            "state": info.state, "autostart": info.autostart, "capacity": info.capacity,
            "allocation": info.allocation, "available": info.available, "adopted": adopted}


class PoolResource(Resource):
    spec = POOL
    auto_named = False  # the pool name is always given: a replacement deletes first

    def create(self, props: dict[str, Any]) -> State:
        with connect(props["uri"]) as conn:
            owner = owner_of(props) if props.get("owner") else None
            info, adopted = pool.ensure(conn, props["name"], props["path"], props["autostart"],
                                        owner=owner)
        return State(info.name, _outputs(props, info, adopted))

    def read(self, id_: str, props: dict[str, Any]) -> State | None:
        with connect(props["uri"]) as conn:
            info = pool.read(conn, id_)
        if info is None:
            return None
        # imported (no inputs yet): what it is now is what the program should say
        defaults = {"name": info.name, "path": info.path, "autostart": info.autostart,
                    "shared": False}
        props = {**defaults, **props}
        return State(id_, _outputs(props, info, bool(props.get("adopted"))))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        with connect(news["uri"]) as conn:
            info = pool.set_autostart(conn, id_, news["autostart"])
        return _outputs(news, info, bool(olds.get("adopted")))

    def delete(self, id_: str, props: dict[str, Any]) -> str | None:
        # A pool that existed before this stack adopted it stays defined, and so does one
        # marked `shared` (other stacks adopt it): it outlives this stack.
        keep = bool(props.get("adopted")) or bool(props.get("shared"))
        with connect(props["uri"]) as conn:
            pool.delete(conn, id_, undefine=not keep)
        return None


POOL_RESOURCE = PoolResource()

"""CloudInitSeed: build the NoCloud ISO in process and stream it into a pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdx_provider.checking import UNKNOWN, Checker
from tdx_provider.connection import connect
from tdx_provider.guest import cloud_init, seed_image
from tdx_provider.specs import CLOUD_INIT_SEED
from tdx_provider.specs.cloud_init_seed import CONTENT_KEYS
from tdx_provider.storage import seed_volume

from . import volumes
from .base import Resource, State, owner_of


def _outputs(props: dict[str, Any], info: Any, sha256: str) -> dict[str, Any]:
    return {**props, "name": info.name, "pool": info.pool, "path": info.path, "key": info.key,
            "capacity": info.capacity, "sha256": sha256}


class CloudInitSeedResource(Resource):
    spec = CLOUD_INIT_SEED

    def check_more(self, olds: dict[str, Any], checker: Checker, *, readiness: bool,
                   root: Path) -> None:
        """The instance-id (and, once the pool exists, the path) become known inputs, so a
        TrustDomain's diff shows a seed change."""
        inputs = checker.inputs
        if checker.known("user_data", "users", "ssh_authorized_keys"):
            checker.run("user_data", lambda: cloud_init.check_combination(
                inputs.get("user_data"), inputs["users"], inputs["ssh_authorized_keys"]))
        inputs["instance_id"] = _instance_id(checker)
        volumes.fill_path(checker)

    def create(self, props: dict[str, Any]) -> State:
        files = cloud_init.render(cloud_init.seed_from(props))
        image = seed_image.build(files.files)
        with connect(props["uri"]) as conn:
            info, sha256 = seed_volume.create(conn, props["pool"], props["name"], image,
                                              owner_of(props))
        return State(info.key, {**_outputs(props, info, sha256),
                                "instance_id": files.instance_id})

    def read(self, id_: str, props: dict[str, Any]) -> State | None:
        found = volumes.read(id_, props, reclaim=True)
        if found is None:
            return None
        props, info = found
        return State(info.key, _outputs(props, info, props.get("sha256") or ""))

    def delete(self, id_: str, props: dict[str, Any]) -> str | None:
        volumes.delete(props)
        return None


def _instance_id(checker: Checker) -> Any:
    if checker.failures:
        return None
    if not checker.known(*CONTENT_KEYS):
        return UNKNOWN
    return cloud_init.instance_id(cloud_init.seed_from(checker.inputs))


CLOUD_INIT_SEED_RESOURCE = CloudInitSeedResource()

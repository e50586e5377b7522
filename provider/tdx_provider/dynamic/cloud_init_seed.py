"""CloudInitSeed: a NoCloud ``cidata`` volume (user-data, meta-data, network-config) in a pool."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider

from ._common import Checker, adapter, auto_name, diff, owner_of

# What the seed says: any change is a new seed (a new instance-id), so a new volume.
CONTENT_KEYS = ("hostname", "users", "ssh_authorized_keys", "user_data", "network_config")
REPLACE_KEYS = ("uri", "pool", "name", *CONTENT_KEYS)


def _outputs(props: dict[str, Any], info: Any, sha256: str) -> dict[str, Any]:
    return {**props, "name": info.name, "pool": info.pool, "path": info.path, "key": info.key,
            "capacity": info.capacity, "sha256": sha256}


def check_seed(olds: dict[str, Any], news: dict[str, Any]) -> Checker:
    """Preview's checks: each failure names its field; the instance-id (and, once the pool
    exists, the path) become known inputs, so a TrustDomain's diff shows a seed change."""
    from tdx_provider import validation
    from tdx_provider.guest import cloud_init

    checker = Checker(news)
    resource = (news.get("owner") or {}).get("resource", "seed")
    checker.inputs["name"], checker.inputs["auto_named"] = auto_name(resource, olds, news)
    for key in ("users", "ssh_authorized_keys"):
        if checker.inputs.get(key) is None:
            checker.inputs[key] = []
    checker.field("uri", validation.uri)
    checker.field("pool", validation.name)
    checker.field("name", validation.name)
    checker.field("hostname", cloud_init.hostname, optional=True)
    checker.field("users", cloud_init.users)
    checker.field("ssh_authorized_keys", cloud_init.ssh_public_keys)
    checker.field("user_data", cloud_init.user_data, optional=True)
    checker.field("network_config", cloud_init.network_config, optional=True)
    inputs = checker.inputs
    if checker.known("user_data", "users", "ssh_authorized_keys"):
        checker.run("user_data", lambda: cloud_init.check_combination(
            inputs.get("user_data"), inputs["users"], inputs["ssh_authorized_keys"]))
    inputs["instance_id"] = _instance_id(checker)
    if checker.known("uri", "pool", "name") and not checker.failures:
        _path_of(inputs)
    return checker


def _instance_id(checker: Checker) -> Any:
    from pulumi.runtime.rpc import UNKNOWN

    from tdx_provider.guest import cloud_init

    if checker.failures:
        return None
    if not checker.known(*CONTENT_KEYS):
        return UNKNOWN
    return cloud_init.instance_id(cloud_init.seed_from(checker.inputs))


def _path_of(inputs: dict[str, Any]) -> None:
    """The seed's path at preview once its pool exists (see ``overlay._path_of``)."""
    from tdx_provider.connection import connect
    from tdx_provider.storage import volume

    try:
        with connect(inputs["uri"]) as conn:
            inputs["path"] = volume.expected_path(conn, inputs["pool"], inputs["name"])
    except Exception:  # only a preview nicety: the path is then unknown until create
        inputs["path"] = None


class CloudInitSeedProvider(ResourceProvider):
    @adapter
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        checker = check_seed(olds, news)
        return CheckResult(checker.inputs, checker.failures)

    @adapter
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff(olds, news, replace_keys=REPLACE_KEYS,
                    delete_before_replace=not news.get("auto_named"))

    @adapter
    def create(self, props: dict[str, Any]) -> CreateResult:
        from tdx_provider.connection import connect
        from tdx_provider.guest import cloud_init, seed_image
        from tdx_provider.storage import seed_volume

        files = cloud_init.render(cloud_init.seed_from(props))
        image = seed_image.build(files.files)
        with connect(props["uri"]) as conn:
            info, sha256 = seed_volume.create(conn, props["pool"], props["name"], image,
                                              owner_of(props))
        outs = _outputs(props, info, sha256)
        outs["instance_id"] = files.instance_id
        return CreateResult(info.key, outs)

    @adapter
    def read(self, _id: str, props: dict[str, Any]) -> ReadResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            info = volume.read(conn, props["pool"], props["name"])
            if info is not None:  # the stack still declares it: an operator's release ends
                volume.reclaim(conn, props["pool"], props["name"], owner_of(props))
        if info is None:
            return ReadResult(None, {})
        return ReadResult(info.key, _outputs(props, info, props.get("sha256") or ""))

    @adapter
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            volume.delete(conn, props["pool"], props["name"])

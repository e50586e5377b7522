"""cloud-init NoCloud seed content: checked inputs in, the seed's files out.

A seed holds ``user-data`` (cloud-config, or the user's own user-data), ``meta-data``
(``instance-id``, ``local-hostname``) and, when declared, ``network-config``. The instance-id is
a digest of everything else the seed says, so a changed seed is a new instance to cloud-init,
which then applies it again on the next boot; an unchanged seed keeps its instance-id.

Every check raises :class:`InputError` naming the field (and the item, ``users[1].name``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from tdx_provider.errors import InputError

CLOUD_CONFIG_HEADER = "#cloud-config"
# User-data cloud-init acts on: its documented headers (anything else is ignored by the guest).
USER_DATA_HEADERS = (CLOUD_CONFIG_HEADER, "#!", "#include", "#cloud-boothook", "#part-handler",
                     "#cloud-config-archive", "## template: jinja", "Content-Type:")
INSTANCE_ID_PREFIX = "iid-ptdx-"
MAX_HOSTNAME = 253
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# useradd's portable names (what cloud-init passes on), at most 32 characters.
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?")
USER_KEYS = frozenset({"name", "ssh_authorized_keys", "sudo", "groups", "shell"})
NETWORK_VERSIONS = (1, 2)
SUDO_ALL = "ALL=(ALL) NOPASSWD:ALL"
# One key per line in the rendered YAML: long RSA keys must not be folded.
YAML_WIDTH = 1 << 16


@dataclass(frozen=True)
class User:
    name: str
    ssh_authorized_keys: tuple[str, ...] = ()
    sudo: bool = False
    groups: tuple[str, ...] = ()
    shell: str | None = None


@dataclass(frozen=True)
class Seed:
    """What a seed declares (checked)."""

    hostname: str | None = None
    users: tuple[User, ...] = ()
    ssh_authorized_keys: tuple[str, ...] = ()
    user_data: str | None = None
    network_config: dict[str, Any] | str | None = None  # a mapping, or YAML text as given


@dataclass(frozen=True)
class SeedFiles:
    """The files of a NoCloud seed, by their names on the ``cidata`` volume."""

    instance_id: str
    files: dict[str, bytes] = field(default_factory=dict)


# --- checks ---------------------------------------------------------------------------------


def hostname(field_name: str, value: Any) -> str:
    """An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, each
    1-63 characters, 253 in all."""
    if not isinstance(value, str):
        raise InputError(field_name, f"must be a string (got {type(value).__name__})")
    if not value or len(value) > MAX_HOSTNAME:
        raise InputError(field_name, f"{value!r} is not a host name: 1 to {MAX_HOSTNAME} "
                         "characters")
    for label in value.split("."):
        if not _LABEL.fullmatch(label):
            raise InputError(field_name, f"{value!r} is not a host name (RFC 1123): label "
                             f"{label!r} must be 1-63 letters, digits or inner hyphens")
    return value


def ssh_public_key(field_name: str, value: Any) -> str:
    """One OpenSSH public key line (``TYPE BASE64 [COMMENT]``), parsed by ``cryptography``;
    returned stripped."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    if not isinstance(value, str):
        raise InputError(field_name, f"must be a string (got {type(value).__name__})")
    text = value.strip()
    if not text or "\n" in text or "\r" in text:
        raise InputError(field_name, "must be one OpenSSH public key line (TYPE BASE64 "
                         "[COMMENT]), e.g. the content of ~/.ssh/id_ed25519.pub")
    try:
        load_ssh_public_key(text.encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise InputError(field_name, f"{shown!r} is not an OpenSSH public key: {exc}") from exc
    return text


def ssh_public_keys(field_name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise InputError(field_name, "must be a list of OpenSSH public key lines")
    return [ssh_public_key(f"{field_name}[{index}]", key) for index, key in enumerate(value)]


def _user(field_name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(field_name, "must be an object with name, ssh_authorized_keys, sudo, "
                         "groups, shell")
    unknown = sorted(set(value) - USER_KEYS)
    if unknown:
        raise InputError(f"{field_name}.{unknown[0]}", f"is not a user field (known: "
                         f"{', '.join(sorted(USER_KEYS))})")
    name = value.get("name")
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InputError(f"{field_name}.name", f"{name!r} is not a user name (lowercase letters, "
                         "digits, '_' and '-', starting with a letter or '_', at most 32)")
    user: dict[str, Any] = {"name": name}
    keys = value.get("ssh_authorized_keys")
    user["ssh_authorized_keys"] = ssh_public_keys(f"{field_name}.ssh_authorized_keys",
                                                  keys) if keys is not None else []
    sudo = value.get("sudo", False)
    if not isinstance(sudo, bool):
        raise InputError(f"{field_name}.sudo", f"must be true or false (got {sudo!r})")
    user["sudo"] = sudo
    groups = value.get("groups") or []
    if not isinstance(groups, list | tuple) or not all(
            isinstance(g, str) and _USER_NAME.fullmatch(g) for g in groups):
        raise InputError(f"{field_name}.groups", f"must be a list of group names (got {groups!r})")
    user["groups"] = list(groups)
    shell = value.get("shell")
    if shell is not None and (not isinstance(shell, str) or not shell.startswith("/")
                              or any(c.isspace() for c in shell)):
        raise InputError(f"{field_name}.shell", f"must be an absolute path (got {shell!r})")
    user["shell"] = shell
    return user


def users(field_name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple):
        raise InputError(field_name, "must be a list of users")
    checked = [_user(f"{field_name}[{index}]", item) for index, item in enumerate(value)]
    names = [u["name"] for u in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(field_name, f"declares {duplicates[0]!r} more than once")
    return checked


def _yaml_document(field_name: str, text: str) -> Any:
    """Parse YAML; a syntax error names the line and column (1-based, in ``text``)."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise InputError(field_name, f"is not valid YAML: {where}{problem}") from exc
    except yaml.YAMLError as exc:
        raise InputError(field_name, f"is not valid YAML: {exc}") from exc


def user_data(field_name: str, value: Any) -> str:
    """Raw user-data. ``#cloud-config`` must be a YAML mapping (errors name line and column),
    and the SSH keys it declares must parse; other kinds cloud-init knows (scripts, MIME, …)
    are passed on as they are."""
    if not isinstance(value, str):
        raise InputError(field_name, f"must be a string (got {type(value).__name__})")
    if "\x00" in value:
        raise InputError(field_name, "must not contain NUL characters")
    first = value.lstrip("\ufeff").split("\n", 1)[0].rstrip()
    if not first.startswith(USER_DATA_HEADERS):
        raise InputError(field_name, f"must start with {CLOUD_CONFIG_HEADER!r} (or another "
                         f"header cloud-init knows: {', '.join(USER_DATA_HEADERS[1:])}); its "
                         f"first line is {first[:40]!r}")
    if first != CLOUD_CONFIG_HEADER:
        return value
    document = _yaml_document(field_name, value)
    if document is None:
        return value
    if not isinstance(document, dict):
        raise InputError(field_name, f"cloud-config must be a YAML mapping, not a "
                         f"{type(document).__name__}")
    _keys_in_cloud_config(field_name, document)
    return value


def _keys_in_cloud_config(field_name: str, document: dict[str, Any]) -> None:
    """The SSH keys a cloud-config declares parse; a failure names ``field_name`` and, in its
    reason, the key's place in the document (``users[0].ssh_authorized_keys[1]``)."""
    places: list[tuple[str, Any]] = []
    if "ssh_authorized_keys" in document:
        places.append(("ssh_authorized_keys", document["ssh_authorized_keys"]))
    users_list = document.get("users") or []
    for index, user in enumerate(users_list if isinstance(users_list, list) else []):
        if isinstance(user, dict) and user.get("ssh_authorized_keys") is not None:
            places.append((f"users[{index}].ssh_authorized_keys", user["ssh_authorized_keys"]))
    for place, keys in places:
        try:
            ssh_public_keys(place, keys)
        except InputError as exc:
            raise InputError(field_name, f"cloud-config {exc.field}: {exc.reason}") from exc


def network_config(field_name: str, value: Any) -> dict[str, Any] | str:
    """cloud-init network configuration (version 1 or 2), as a mapping or as YAML text."""
    document = _yaml_document(field_name, value) if isinstance(value, str) else value
    if not isinstance(document, dict):
        raise InputError(field_name, "must be a mapping (or YAML text of one) with 'version: 2' "
                         "(or 1), e.g. {'version': 2, 'ethernets': {...}}")
    inner = document.get("network", document)
    version = inner.get("version") if isinstance(inner, dict) else None
    if version not in NETWORK_VERSIONS:
        raise InputError(field_name, f"needs 'version' 1 or 2 (got {version!r})")
    return value if isinstance(value, str) else dict(value)


def check_combination(seed_user_data: str | None, seed_users: Sequence[Any],
                      keys: Sequence[str]) -> None:
    """Raw user-data is the whole user-data: the typed user inputs cannot be merged into it."""
    if seed_user_data is None:
        return
    for name, given in (("users", seed_users), ("ssh_authorized_keys", keys)):
        if given:
            raise InputError(name, "cannot be combined with user_data, which is the whole "
                             "user-data: declare them in its cloud-config instead")


# --- rendering ------------------------------------------------------------------------------


def seed_from(inputs: Mapping[str, Any]) -> Seed:
    """The checked inputs (the resource's keys) as a :class:`Seed`."""
    network = inputs.get("network_config")
    return Seed(
        hostname=inputs.get("hostname"),
        users=tuple(User(u["name"], tuple(u.get("ssh_authorized_keys") or ()),
                         bool(u.get("sudo")), tuple(u.get("groups") or ()), u.get("shell"))
                    for u in inputs.get("users") or ()),
        ssh_authorized_keys=tuple(inputs.get("ssh_authorized_keys") or ()),
        user_data=inputs.get("user_data"),
        network_config=network,
    )


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=YAML_WIDTH)


def _user_entry(user: User) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": user.name}
    if user.ssh_authorized_keys:
        entry["ssh_authorized_keys"] = list(user.ssh_authorized_keys)
    if user.sudo:
        entry["sudo"] = SUDO_ALL
    if user.groups:
        entry["groups"] = list(user.groups)
    if user.shell:
        entry["shell"] = user.shell
    entry["lock_passwd"] = True
    return entry


def render_user_data(seed: Seed) -> str:
    if seed.user_data is not None:
        return seed.user_data
    config: dict[str, Any] = {}
    if seed.users:
        # "default" keeps the image's own user (ubuntu on Ubuntu) beside the declared ones
        config["users"] = ["default", *(_user_entry(u) for u in seed.users)]
    if seed.ssh_authorized_keys:
        config["ssh_authorized_keys"] = list(seed.ssh_authorized_keys)
    body = _dump(config) if config else ""
    return f"{CLOUD_CONFIG_HEADER}\n{body}"


def instance_id(seed: Seed) -> str:
    """A digest of what the seed declares: it changes exactly when a declared value does. It is
    taken over the declared values, not the rendered files, so that a new version of the YAML
    writer (or of our rendering) does not make every seed a new instance."""
    canonical = json.dumps({"format": 1, **asdict(seed)}, sort_keys=True)
    return INSTANCE_ID_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def render(seed: Seed) -> SeedFiles:
    iid = instance_id(seed)
    meta: dict[str, str] = {"instance-id": iid}
    if seed.hostname:
        meta["local-hostname"] = seed.hostname
    files = {"user-data": render_user_data(seed).encode(), "meta-data": _dump(meta).encode()}
    network = seed.network_config
    if network is not None:
        files["network-config"] = (_dump(network) if isinstance(network, dict)
                                   else network).encode()
    return SeedFiles(iid, files)

"""``CloudInitSeed``: a NoCloud ``cidata`` volume (user-data, meta-data, network-config)."""

from __future__ import annotations

from tdx_provider.guest import cloud_init

from .common import AUTO_NAME, AUTO_NAMED, OWNER, POOL_NAME, URI
from .fields import ANY, BOOLEAN, INTEGER, STRING, Field, ResourceSpec, array, obj, output

SEED_USER = obj(
    "SeedUser", "A user cloud-init creates on first boot (cloud-config ``users``), password "
    "locked.",
    Field("name", STRING, "Login name (lowercase letters, digits, ``_``, ``-``).",
          required=True),
    Field("ssh_authorized_keys", array(STRING), "OpenSSH public key lines (``ssh-ed25519 AAAA… "
          "comment``); each must parse.", default=[]),
    Field("sudo", BOOLEAN, "Passwordless sudo (``ALL=(ALL) NOPASSWD:ALL``).", default=False),
    Field("groups", array(STRING), "Supplementary groups.", default=[]),
    Field("shell", STRING, "Login shell (absolute path); None: the image's default."),
)

# What the seed says: any change is a new seed (a new instance-id), so a new volume.
CONTENT_KEYS = ("hostname", "users", "ssh_authorized_keys", "user_data", "network_config")

CLOUD_INIT_SEED = ResourceSpec(
    "CloudInitSeed",
    "A NoCloud seed for cloud-init: an ISO 9660 volume labelled ``cidata`` holding "
    "``user-data``, ``meta-data`` and (when declared) ``network-config``, built in process and "
    "streamed into ``pool`` through the libvirt storage API (mode 0600, recorded in the pool's "
    "ledger as kind ``seed``). Give it to ``TrustDomain(seed=…)``, which attaches it read-only "
    "on virtio. ``instance_id`` is a digest of what the seed says, so any change of its content "
    "is a new instance to cloud-init. Every input replaces the seed, and the new seed replaces "
    "the TrustDomain that uses it. The seed is readable by the host: it is no place for "
    "secrets a trust domain must keep from its host (see docs/cloud-init.md). Delete is "
    "refused while a defined domain uses it.",
    (
        POOL_NAME,
        Field("hostname", STRING, "The guest's host name (meta-data ``local-hostname``); an "
              "RFC 1123 name.", validate=cloud_init.hostname),
        Field("users", array(SEED_USER), "Users to create, each a ``SeedUser`` or a dict of its "
              "fields.", default=[], validate=cloud_init.users),
        Field("ssh_authorized_keys", array(STRING), "Public keys for the image's default user "
              "(``ubuntu`` on Ubuntu cloud images).", default=[],
              validate=cloud_init.ssh_public_keys),
        Field("user_data", STRING, "Raw user-data (``#cloud-config`` YAML, a script, MIME…) "
              "used as the whole user-data: the escape hatch for anything the typed inputs do "
              "not say. A secret in state and preview. Cannot be combined with ``users`` / "
              "``ssh_authorized_keys`` (declare those inside it).", secret=True,
              validate=cloud_init.user_data),
        Field("network_config", ANY, "cloud-init network configuration (version 2, "
              "netplan-like, or version 1), as a dict or YAML text; None: the image's default "
              "(DHCP on the first NIC).", validate=cloud_init.network_config),
        AUTO_NAME,
        URI,
        OWNER,
        AUTO_NAMED,
        output("path", STRING, "Path of the seed volume on the libvirt host.",
               always=True),
        output("key", STRING, "libvirt's key of the volume.", always=True),
        output("capacity", INTEGER, "Size of the image in bytes."),
        output("sha256", STRING, "SHA-256 of the image as uploaded."),
        output("instance_id", STRING, "meta-data ``instance-id``: ``iid-ptdx-`` and 20 hex "
               "digits of a digest of the seed's content; known at preview. A secret when "
               "``user_data`` is given (it is derived from it).", secret_when="user_data"),
    ),
    id_description="The volume's libvirt key.",
)

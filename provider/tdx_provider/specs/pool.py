"""``Pool``: a libvirt ``dir`` storage pool."""

from __future__ import annotations

from tdx_provider import validation

from .common import OWNER, URI
from .fields import BOOLEAN, INTEGER, STRING, Change, Field, ResourceSpec, output

POOL = ResourceSpec(
    "Pool",
    "A libvirt ``dir`` storage pool.\n\n"
    "Create defines, builds, starts, sets autostart and refreshes. A pool of the same name and "
    "path is adopted (and left defined on delete); another pool on the same path is an error. "
    "Delete stops and undefines; it is refused while the pool holds volumes, unless the pool is "
    "``shared`` (then it stays, for the other stacks that adopted it). Several stacks may "
    "declare one pool at once: when two create it together, one creates and the other adopts.",
    (
        Field("name", STRING, "libvirt pool name, used as-is (also the resource's id).",
              required=True, validate=validation.name),
        Field("path", STRING, "Absolute directory of the pool on the libvirt host; created "
              "when missing.", required=True,
              validate=lambda f, v: validation.absolute_path(f, v, must_exist=False)),
        Field("autostart", BOOLEAN, "Start the pool when libvirtd starts.", default=True,
              change=Change.UPDATE, validate=validation.boolean),
        Field("shared", BOOLEAN, "Other stacks adopt this pool: it outlives this stack. Delete "
              "then leaves it defined and running (like an adopted pool) instead of refusing "
              "while other stacks' volumes remain.", default=False, change=Change.UPDATE,
              validate=validation.boolean, added_later=True),
        URI,
        OWNER,
        output("uuid", STRING, "libvirt UUID of the pool.", always=True),
        output("state", STRING, "``running``, ``inactive``, ``building``, ``degraded`` or "
               "``inaccessible``.", always=True),
        output("capacity", INTEGER, "Bytes of the filesystem holding the pool."),
        output("allocation", INTEGER, "Bytes allocated in the pool."),
        output("available", INTEGER, "Bytes free in the pool."),
        output("adopted", BOOLEAN, "True when the pool existed before this stack (it is then "
               "left defined on delete)."),
    ),
    id_description="The pool's name.",
)

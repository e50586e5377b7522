"""Fields every resource shares: where it lives (``uri``), its name, whose it is."""

from __future__ import annotations

from tdx_provider import validation
from tdx_provider.connection import DEFAULT_URI

from .fields import ANY, BOOLEAN, STRING, Change, Field

URI = Field("uri", STRING, "libvirt connection URI (remote URIs such as "
            "``qemu+ssh://host/system`` work). With the native provider, the provider's "
            "``uri`` when omitted.", default=DEFAULT_URI, validate=validation.uri)
POOL_NAME = Field("pool", STRING, "Name of the pool (or pass the ``Pool`` resource).",
                  required=True, validate=validation.name)
AUTO_NAME = Field("name", STRING, "Volume name; default: resource name plus a random suffix.",
                  validate=validation.name)
# Our mark on every libvirt object: project, stack and resource of the declaring program. The
# dynamic SDK passes it as an input; the native provider derives it from the URN.
OWNER = Field("owner", ANY, "Project, stack and resource name of the declaring program.",
              change=Change.NONE, internal=True, output=False)
AUTO_NAMED = Field("auto_named", BOOLEAN, "True when the name was made by the provider.",
                   change=Change.NONE, internal=True, output=False)

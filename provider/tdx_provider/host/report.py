"""The readiness report of a host by URI, also when its libvirt cannot be reached.

``tdxctl host-check`` prints it. :func:`checks.check_host` needs a connection; an operator asks
most often exactly when there is none, so the file checks still run (on a local host) and the
connection failure is one more failed check.
"""

from __future__ import annotations

from pathlib import Path

from tdx_provider.connection import connect, is_local_uri
from tdx_provider.errors import TdxError
from tdx_provider.host import checks


def host_report(uri: str, root: Path) -> checks.HostReport:
    """:func:`checks.check_host` at ``uri`` (files under ``root``); when libvirt cannot be
    reached, the file checks and that reason."""
    local = is_local_uri(uri)
    try:
        with connect(uri) as conn:
            return checks.check_host(conn, root, local=local)
    except TdxError as exc:
        files = [run(root) for _name, run in checks.FILE_CHECKS] if local else []
        return checks.HostReport([*files, checks.Check("libvirt", "fail", str(exc))])

"""No listing of libvirt objects in two calls (count, then names) anywhere in our code.

libvirt-python's ``listVolumes``, ``listStoragePools``, ``listDefinedStoragePools``,
``listDomainsID``, ``listDefinedDomains``, ``listNetworks``, ``listDefinedNetworks``,
``listDevices`` and ``listSecrets`` first ask how many objects exist, then ask for that many. An
object created in between pushes an arbitrary existing one out of the answer: the vanished
overlay of docs/reliability.md. The ``listAll*`` calls answer in one call. The scanner walks the
AST of the package, the tests and the bench; it is tested on a snippet first, so a scanner
that finds nothing cannot pass for clean code.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("provider", "sdk", "tests", "bench", "examples")
TWO_CALL_LISTINGS = frozenset({
    "listVolumes", "listStoragePools", "listDefinedStoragePools", "listDomainsID",
    "listDefinedDomains", "listNetworks", "listDefinedNetworks", "listDevices", "listSecrets",
    "listInterfaces", "listDefinedInterfaces", "listNWFilters",
})
# Where a two-call listing is the point: the test that pins libvirt-python's behaviour.
ALLOWED = frozenset({"tests/libvirt/test_pool_listing.py"})


def two_call_listings(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in TWO_CALL_LISTINGS):
            found.append((node.lineno, node.func.attr))
    return found


def test_the_scanner_finds_two_call_listings() -> None:
    snippet = ("names = pool.listVolumes()\nall_ = pool.listAllVolumes(0)\n"
               "conn.listDefinedDomains()\n")
    assert two_call_listings(snippet) == [(1, "listVolumes"), (3, "listDefinedDomains")]


def test_no_code_of_ours_lists_in_two_calls() -> None:
    findings = []
    for top in SCANNED:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if relative in ALLOWED or "/.venv/" in f"/{relative}":
                continue
            findings += [f"{relative}:{line}: {what}"
                         for line, what in two_call_listings(path.read_text())]
    assert findings == []

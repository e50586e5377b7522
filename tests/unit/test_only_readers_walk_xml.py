"""Only the typed readers (tdx_provider.readers) walk libvirt XML (issue 19, item 3).

A module that needs a field of a libvirt document asks a reader, which declares the field once;
a ``find``/``findtext``/``xpath``/``iter`` of its own would be a second, unchecked way of reading
it. guest/xml.py may parse and edit the documents it renders and validates (RelaxNG, the
``<uuid>`` and shutdown-timeout edits), and reads their fields through the readers too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "provider" / "tdx_provider"

# Method names that walk an lxml tree, and etree functions that parse a document.
WALKS = frozenset({"find", "findall", "findtext", "xpath", "iter", "iterfind", "iterchildren",
                   "iterdescendants", "itersiblings", "getchildren", "getparent"})
PARSES = frozenset({"fromstring", "parse", "XML", "iterparse", "fromstringlist"})

ALLOWED = (
    "readers/",      # the readers themselves
    "guest/xml.py",  # parses, validates, edits and indents the documents it renders
    # dynamic/ and tdxctl/ were allowed here while issue 19 rewrote them; since the rewrite they
    # walk no XML, and the allowance has shrunk to nothing.
)


def _walks(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        if isinstance(func.value, ast.Constant):  # "text".find(...): a string, not XML
            continue
        receiver = func.value.id if isinstance(func.value, ast.Name) else ""
        if func.attr in WALKS or (receiver == "etree" and func.attr in PARSES):
            found.append((node.lineno, f"{ast.unparse(func)}(...)"))
    return found


def test_no_module_but_the_readers_walks_xml() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(ALLOWED):
            continue
        for line, call in _walks(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{relative}:{line}: {call}")
    assert not offenders, ("read libvirt XML through tdx_provider.readers (declare the field "
                           "there) instead of walking it:\n" + "\n".join(offenders))


def test_the_scan_sees_a_walk() -> None:
    """The scan is not vacuous: the calls the engine used to make are caught."""
    sample = ast.parse("doc = etree.fromstring(x)\ndoc.findtext('a/b')\nfor d in doc.iter('s'): "
                       "pass\nroot.xpath('//x')\n'abc'.find('b')\n")
    assert [line for line, _call in _walks(sample)] == [1, 2, 3, 4]

"""Plain-text tables and JSON for ``tdxctl``: the only place that knows about column widths.

Rows are dicts of plain values. In a table, a value that is not known (None, or an empty list)
shows as ``-``; in JSON it stays ``null`` / ``[]`` so that scripts can tell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

UNKNOWN = "-"
GAP = "  "

Column = tuple[str, str]  # (key in the row, header)


def cell(value: object) -> str:
    """How one value reads in a table."""
    if value is None or value == "" or value == []:
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def render(rows: Sequence[Mapping[str, object]], columns: Sequence[Column]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    table = [[header for _key, header in columns]]
    table += [[cell(row.get(key)) for key, _header in columns] for row in rows]
    widths = [max(len(line[index]) for line in table) for index in range(len(columns))]
    lines = []
    for line in table:
        padded = [text.ljust(width) for text, width in zip(line[:-1], widths, strict=False)]
        lines.append(GAP.join([*padded, line[-1]]).rstrip())
    return "\n".join(lines)


def to_json(rows: Sequence[Mapping[str, object]]) -> str:
    """A JSON list of the rows, as they are (None stays null)."""
    return json.dumps([dict(row) for row in rows], indent=2)


def size(value: object) -> str:
    """Bytes in binary units with one decimal (``1.5 GiB``); non-integers as :func:`cell`."""
    if not isinstance(value, int) or isinstance(value, bool):
        return cell(value)
    if abs(value) < 1024:
        return f"{value} B"
    amount = value / 1024
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    index = 0
    while abs(amount) >= 1024 and index < len(units) - 1:
        amount /= 1024
        index += 1
    return f"{amount:.1f} {units[index]}"

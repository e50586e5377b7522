"""Where the time of one ``pulumi`` command goes, from its ``-v=9 --logtostderr`` log.

The CLI writes one JSON object a line (``{"time": "...Z", "msg": "..."}``). The engine logs
well-known messages at each step of a command; the time between two of them is one phase
(issue 20, point 7: CLI start, language host, state and secrets, plugin lookups, program
start and imports, provider process start and imports, Check/Diff, exits). The same markers
exist for the dynamic providers (``pulumi-resource-pulumi-python``) and the native plugin
(``pulumi-resource-tdx``), so both adapters get the same breakdown.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

Match = Callable[[str], bool]


def _has(*parts: str) -> Match:
    return lambda msg: all(part in msg for part in parts)


# (phase that ends at this marker, how to recognise the marker); searched in order, each
# after the previous one. The first phase starts when the command was exec'd.
MARKERS: list[tuple[str, Match]] = [
    ("CLI start (exec to its first log line)", lambda _msg: True),
    ("language host start + About", _has("langhost[", "About() success")),
    ("stack state load + secrets manager (passphrase)", _has("*** Starting Update(")),
    ("language host again + plugin lookups (GetRequiredPlugins, GetPluginPath)",
     _has("langhost[", "].Run(")),
    ("program start + imports (to its first registration)",
     _has("registering resource: ty=pulumi:pulumi:Stack")),
    ("program: registrations up to the provider launch",
     _has("newPlugin(): Launching plugin '", "(resource)'")),
    ("provider process start + imports (to GetPluginInfo)",
     _has("Provider[", "GetPluginInfo() executing")),
    ("provider CheckConfig/DiffConfig/Configure", _has("registered default provider for ")),
    ("resources: Check/Diff (and Create/Delete when not a preview), program waits",
     _has("run_pulumi_func completed")),
    ("program exit", _has("Program exited")),
    ("provider shutdown", _has("langhost[", "Cancel() executing")),
    ("language host shutdown", _has("*** Update(", "complete ***")),
]
END_PHASE = "CLI finish (state write, summary, exit)"
PHASES = [label for label, _match in MARKERS] + [END_PHASE]
RPC = re.compile(r"Provider\[[^\]]*\]\.(Check|Diff|Create|Delete|Read|Update)\(([^,)]*)[,)]"
                 r".*?(executing|success|failed)")


def parse_time(text: str) -> float:
    """Epoch seconds of an RFC 3339 time with nanoseconds (Python keeps microseconds)."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if match is None:
        raise ValueError(f"log time {text!r} is not RFC 3339")
    whole, fraction, zone = match.groups()
    stamp = datetime.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + float(fraction or 0)


def entries(log: str) -> list[tuple[float, str]]:
    """(epoch seconds, message) of every JSON line; other lines (a plugin's raw stderr) are
    skipped."""
    found = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
            found.append((parse_time(record["time"]), str(record.get("msg", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def breakdown(log: str, exec_at: float, exited_at: float) -> dict[str, Any]:
    """Seconds per phase (None when its marker is missing; the next phase then starts at
    the last marker found), the provider RPCs, and the total."""
    lines = entries(log)
    phases: dict[str, float | None] = {}
    last, index = exec_at, 0
    for label, match in MARKERS:
        hit = next((i for i in range(index, len(lines)) if match(lines[i][1])), None)
        if hit is None:
            phases[label] = None
            continue
        phases[label] = round(lines[hit][0] - last, 3)
        last, index = lines[hit][0], hit + 1
    phases[END_PHASE] = round(exited_at - last, 3)
    return {"phases": phases, "rpcs": rpc_times(lines), "total": round(exited_at - exec_at, 3)}


def rpc_times(lines: Iterable[tuple[float, str]]) -> dict[str, Any]:
    """Per provider method: how many calls, their summed seconds, and the first call's
    seconds (a lazily importing provider pays its imports there)."""
    started: dict[tuple[str, str], float] = {}
    found: dict[str, dict[str, Any]] = {}
    for at, msg in lines:
        match = RPC.search(msg)
        if match is None:
            continue
        method, urn, what = match.groups()
        if what == "executing":
            started[(method, urn)] = at
            continue
        begun = started.pop((method, urn), None)
        if begun is None:
            continue
        entry = found.setdefault(method, {"calls": 0, "seconds": 0.0,
                                          "first": round(at - begun, 3)})
        entry["calls"] += 1
        entry["seconds"] = round(entry["seconds"] + at - begun, 3)
    return found

"""Tables and PASS/FAIL lines of the ``native`` and ``fixedcost`` sections of ``make bench``
(issue 20, points 6 and 7): parallel destroy through each adapter, the fixed cost of a command
and where it goes, and the native plugin's start-up."""

from __future__ import annotations

from typing import Any

from .report import _table
from .verbose_log import PHASES

DESTROY_RATIO_TARGET = 1.25
GETSCHEMA_TARGET_S = 0.5


def _pass(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def destroy_ratio(destroy: dict[str, Any], adapter: str) -> float | None:
    sizes = [str(n) for n in destroy["sizes"]]
    figures = destroy["median"].get(adapter) or {}
    small, large = figures.get(sizes[0]), figures.get(sizes[-1])
    return round(large / small, 2) if small and large else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The two targets these sections check, each with its figure and PASS/FAIL."""
    found: list[dict[str, Any]] = []
    destroy = results.get("native_destroy")
    if destroy and "native" in destroy["median"]:
        small, large = destroy["sizes"][0], destroy["sizes"][-1]
        ratio = destroy_ratio(destroy, "native")
        figures = destroy["median"]["native"]
        found.append({
            "target": f"native: pulumi destroy of N={large} at most {DESTROY_RATIO_TARGET}x "
                      f"N={small}",
            "measured": f"{_s(figures[str(large)])} / {_s(figures[str(small)])} = {ratio}x",
            "verdict": _pass(ratio is not None and ratio <= DESTROY_RATIO_TARGET)})
    fixed = results.get("fixed_cost")
    if fixed:
        seconds = fixed["getschema"]["median"]
        found.append({"target": f"native plugin answers GetSchema under {GETSCHEMA_TARGET_S} s "
                                "after start",
                      "measured": f"{seconds:.3f} s (median of {len(fixed['getschema']['runs'])})",
                      "verdict": _pass(seconds < GETSCHEMA_TARGET_S)})
    return found


def destroy_table(destroy: dict[str, Any]) -> str:
    sizes = [str(n) for n in destroy["sizes"]]
    rows = []
    for adapter, by_n in destroy["runs"].items():
        loads = [r["loadavg"] for runs in by_n.values() for r in runs]
        rows.append([adapter, *(destroy["median"][adapter][n] for n in sizes),
                     destroy_ratio(destroy, adapter),
                     *(" / ".join(f"{r['seconds']:.2f}" if "seconds" in r else "failed"
                                  for r in by_n[n]) for n in sizes),
                     f"{min(loads):.1f}-{max(loads):.1f}" if loads else None])
    return _table(["adapter", *(f"N={n}" for n in sizes), f"N={sizes[-1]} / N={sizes[0]}",
                   *(f"rounds N={n}" for n in sizes), "load avg"], rows)


def fixed_table(fixed: dict[str, Any]) -> str:
    summary = fixed["summary"]
    dyn, nat = summary["dynamic"], summary["native"]
    rows = [
        ["pulumi up (one guest)", dyn["up"], nat["up"], summary["floor_up"]],
        ["no-op pulumi preview", dyn["preview"], nat["preview"], None],
        ["pulumi up with -v=9", dyn["up_verbose"]["total"], nat["up_verbose"]["total"], None],
        ["no-op preview with -v=9", dyn["preview_verbose"]["total"],
         nat["preview_verbose"]["total"], None],
    ]
    return _table(["command", "dynamic providers", "native provider",
                   "floor (libvirt-python, open connection)"], rows)


def phase_table(fixed: dict[str, Any]) -> str:
    summary = fixed["summary"]
    columns = [(a, c) for c in ("preview_verbose", "up_verbose") for a in ("dynamic", "native")]
    rows = [[phase, *(summary[a][c]["phases"].get(phase) for a, c in columns)]
            for phase in PHASES]
    rows.append(["(of which: the first Check call)",
                 *(summary[a][c]["first_check"] for a, c in columns)])
    for method in ("Check", "Diff", "Create"):
        rows.append([f"(of which: {method} calls, summed)",
                     *(summary[a][c].get("rpc_seconds", {}).get(method) for a, c in columns)])
    rows.append(["total (exec to exit)", *(summary[a][c]["total"] for a, c in columns)])
    return _table(["phase", "dynamic: preview", "native: preview", "dynamic: up",
                   "native: up"], rows, digits=3)


def startup_line(fixed: dict[str, Any]) -> str:
    schema = fixed["getschema"]
    runs = ", ".join(f"{s:.3f}" for s in schema["runs"])
    return (f"native plugin (`pulumi-resource-tdx`) start to GetSchema answer: median "
            f"{schema['median']:.3f} s (runs: {runs})")


def render(results: dict[str, Any]) -> str:
    """The sections' Markdown, or "" when neither ran."""
    parts: list[str] = []
    destroy = results.get("native_destroy")
    if destroy:
        parts += [f"### pulumi destroy of N tiny guests, per adapter (median of "
                  f"{destroy['rounds']} rounds, seconds)", destroy_table(destroy)]
    fixed = results.get("fixed_cost")
    if fixed:
        parts += [f"### Fixed cost of a command, one tiny guest (median of {fixed['rounds']} "
                  "rounds, seconds)", fixed_table(fixed),
                  "### Where the time goes (`-v=9 --logtostderr` timestamps, median seconds "
                  "per phase)", phase_table(fixed),
                  "### Native plugin start-up", startup_line(fixed)]
    found = targets(results)
    if found:
        parts += ["### Native provider targets",
                  _table(["target", "measured", "verdict"],
                         [[t["target"], t["measured"], t["verdict"]] for t in found])]
    return "\n\n".join(parts) + "\n" if parts else ""

"""Turn raw benchmark results into medians, ratios, target verdicts and Markdown tables."""

from __future__ import annotations

from typing import Any

from .common import median
from .workload import DOWN_PHASES, UP_PHASES

PHASES = (*UP_PHASES, *DOWN_PHASES)
PHASE_RATIO_TARGET = 1.3
DESTROY_SLACK = 1.0
IMPORT_RATIO_TARGET = 0.8
PREVIEW_TARGET_N = 8
PREVIEW_TARGET_S = 10.0
TEARDOWN_KEYS = ("teardown_span", "slowest_guest_shutdown", "max_console_acpi_to_power_down",
                 "max_qemu_exit", "max_reported", "max_reported_minus_guest",
                 "max_off_to_undefined", "max_reported_minus_true")
MODES = ("seq", "threads")


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _med(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value)
    return _r(median(values), 4)


def _peak(runs: list[dict[str, Any]], command: str, role: str) -> float | None:
    values = [run[command]["peak_mib"].get(role) for run in runs]
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _ratio(ours: float | None, floor: float | None) -> float | None:
    return round(ours / floor, 2) if ours is not None and floor else None


def summarise_pulumi(pulumi_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the lifecycle runs through the Pulumi CLI on one host."""
    return {
        "runs": len(pulumi_runs),
        **{c: _med(pulumi_runs, c, "seconds") for c in ("up", "preview", "destroy")},
        "boot_wait": _med(pulumi_runs, "boot_wait"),
        "loadavg": _med(pulumi_runs, "loadavg"),
        "teardown": {k: _med(pulumi_runs, "teardown", k) for k in TEARDOWN_KEYS},
        "peak_mib": {c: {role: _peak(pulumi_runs, c, role)
                         for role in ("dynamic_provider", "cli", "program")}
                     for c in ("up", "preview", "destroy")},
        "leftovers": sorted({x for run in pulumi_runs for x in run.get("leftovers", [])}),
    }


def summarise_size(size: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pulumi_runs = size.get("pulumi") or []
    if pulumi_runs:
        out["pulumi"] = summarise_pulumi(pulumi_runs)
    out["pulumi_hosts"] = {name: summarise_pulumi(runs)
                           for name, runs in (size.get("pulumi_hosts") or {}).items() if runs}
    engine_runs = size.get("engine_only") or []
    if engine_runs:
        out["engine_only"] = {
            "runs": len(engine_runs),
            **{c: _med(engine_runs, c, "seconds") for c in ("up", "preview", "destroy")},
            "peak_mib": {c: _peak(engine_runs, c, "dynamic_provider")
                         for c in ("up", "preview", "destroy")},
        }
    direct: dict[str, Any] = {}
    for key, runs in (size.get("direct") or {}).items():
        if runs:
            direct[key] = {
                "runs": len(runs),
                "phases": {p: _med(runs, "phases", p) for p in PHASES},
                "up": _med(runs, "up"),
                "down": _med(runs, "down"),
                "loadavg": _med(runs, "loadavg"),
                "teardown": {k: _med(runs, "teardown", k) for k in TEARDOWN_KEYS},
            }
    out["direct"] = direct
    ratios: dict[str, Any] = {}
    for mode in MODES:
        floor, ours = direct.get(f"floor-{mode}"), direct.get(f"provider-{mode}")
        if floor and ours:
            ratios[mode] = {p: _ratio(ours["phases"][p], floor["phases"][p]) for p in PHASES}
            ratios[mode]["up"] = _ratio(ours["up"], floor["up"])
            ratios[mode]["down"] = _ratio(ours["down"], floor["down"])
    out["ratios"] = ratios
    return out


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    return {"sizes": {n: summarise_size(size) for n, size in results.get("sizes", {}).items()}}


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


def targets(results: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    sizes = summary["sizes"]
    for n, size in sizes.items():
        for mode, ratios in size.get("ratios", {}).items():
            over = {p: r for p, r in ratios.items() if r is not None and r > PHASE_RATIO_TARGET}
            found.append({
                "target": f"provider phases within {PHASE_RATIO_TARGET}x of the libvirt floor "
                          f"(N={n}, {mode})",
                "measured": f"up {ratios.get('up')}x, down {ratios.get('down')}x; over: "
                            + (", ".join(f"{p} {r}x" for p, r in over.items()) or "none"),
                "verdict": _verdict(not over),
            })
    for n, size in sizes.items():
        pulumi = size.get("pulumi")
        if not pulumi or pulumi["destroy"] is None:
            continue
        slowest = pulumi["teardown"]["slowest_guest_shutdown"]
        if slowest is None:
            continue
        limit = round(slowest + DESTROY_SLACK, 2)
        engine = (size.get("engine_only") or {}).get("destroy")
        span = pulumi["teardown"]["teardown_span"]
        found.append({
            "target": f"pulumi destroy of N={n} graceful guests ~ slowest guest shutdown + "
                      f"{DESTROY_SLACK:.0f} s",
            "measured": f"destroy {pulumi['destroy']} s vs {limit} s (slowest guest {slowest} s); "
                        f"guest teardown span {span} s; engine-only destroy {engine} s",
            "verdict": _verdict(pulumi["destroy"] <= limit),
            "guest_span_verdict": _verdict(span <= limit) if span is not None else "n/a",
        })
    imported = results.get("import")
    if imported:
        ratio = imported["ratio_provider_vs_baseline"]
        found.append({
            "target": f"image import >= {IMPORT_RATIO_TARGET}x the throughput of cp + sha256sum",
            "measured": f"BaseImage {imported['mib_per_s']['provider']} MiB/s vs "
                        f"{imported['mib_per_s']['cp_then_sha256sum']} MiB/s: {ratio}x "
                        f"(through pulumi up: {imported['ratio_pulumi_up_vs_baseline']}x)",
            "verdict": _verdict(ratio >= IMPORT_RATIO_TARGET if ratio is not None else None),
        })
    measured = results.get("measure")
    if measured:
        slowest = max(measured["median_s"].values())
        found.append({
            "target": f"MRTD of a 4 MiB TDVF under {measured['target_s']} s",
            "measured": f"{slowest} s median, slower page-add order ({measured['firmware']})",
            "verdict": _verdict(slowest < measured["target_s"]),
        })
    preview_size = sizes.get(str(PREVIEW_TARGET_N), {}).get("pulumi")
    if preview_size and preview_size["preview"] is not None:
        found.append({
            "target": f"no-op preview of the N={PREVIEW_TARGET_N} stack under "
                      f"{PREVIEW_TARGET_S:.0f} s",
            "measured": f"{preview_size['preview']} s",
            "verdict": _verdict(preview_size["preview"] < PREVIEW_TARGET_S),
        })
    return found


# --- Markdown ---------------------------------------------------------------------------------

def _f(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _table(header: list[str], rows: list[list[Any]], digits: int = 2) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_f(c, digits=digits) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def lifecycle_table(summary: dict[str, Any]) -> str:
    rows = []
    for n, size in summary["sizes"].items():
        p, e = size.get("pulumi"), size.get("engine_only")
        if not p and not e:
            continue
        p = p or {}
        e = e or {}
        rows.append([n, p.get("runs"), p.get("up"), p.get("preview"), p.get("destroy"),
                     e.get("up"), e.get("preview"), e.get("destroy"), p.get("boot_wait"),
                     p.get("loadavg")])
    return _table(["N", "runs", "up", "no-op preview", "destroy", "engine-only up",
                   "engine-only preview", "engine-only destroy", "boot (untimed)",
                   "load avg"], rows)


def hosts_table(machine: dict[str, Any]) -> str:
    hosts = machine.get("hosts") or {}
    return _table(["host", "libvirt", "QEMU", "URI"],
                  [[name, h["libvirt"], h["qemu"], f"`{h['uri']}`"] for name, h in hosts.items()])


def hosts_lifecycle_table(summary: dict[str, Any]) -> str:
    """The lifecycle on each libvirt host, side by side (median seconds)."""
    names: list[str] = []
    for size in summary["sizes"].values():
        if size.get("pulumi"):
            names = ["debian"]
            break
    for size in summary["sizes"].values():
        names += [n for n in size.get("pulumi_hosts") or {} if n not in names]
    rows = []
    for n, size in summary["sizes"].items():
        by_host = {"debian": size.get("pulumi") or {}, **(size.get("pulumi_hosts") or {})}
        row: list[Any] = [n]
        for name in names:
            p = by_host.get(name) or {}
            row += [p.get("up"), p.get("preview"), p.get("destroy")]
        rows.append(row)
    header = ["N"] + [f"{name}: {c}" for name in names for c in ("up", "no-op preview",
                                                                  "destroy")]
    return _table(header, rows) if len(names) > 1 else ""


def phase_table(summary: dict[str, Any]) -> str:
    rows = []
    for n, size in summary["sizes"].items():
        direct = size.get("direct") or {}
        for mode in MODES:
            floor, ours = direct.get(f"floor-{mode}"), direct.get(f"provider-{mode}")
            if not floor or not ours:
                continue
            ratios = size["ratios"][mode]
            label = "sequential" if mode == "seq" else f"{n} threads"
            rows.append([n, label, "floor", *[floor["phases"][p] for p in PHASES],
                         floor["up"], floor["down"], _f(floor.get("loadavg"))])
            rows.append([n, label, "ours", *[ours["phases"][p] for p in PHASES],
                         ours["up"], ours["down"], _f(ours.get("loadavg"))])
            rows.append([n, label, "ours/floor",
                         *[_f(ratios[p], "x") for p in PHASES],
                         _f(ratios["up"], "x"), _f(ratios["down"], "x"), ""])
    return _table(["N", "mode", "", *PHASES, "up total", "down total", "load avg"], rows,
                  digits=3)


def teardown_table(summary: dict[str, Any]) -> str:
    rows = []
    for n, size in summary["sizes"].items():
        paths = []
        if size.get("pulumi"):
            paths.append(("pulumi destroy", size["pulumi"]["teardown"]))
        for key, label in (("provider-seq", "ours, sequential"),
                           ("provider-threads", f"ours, {n} threads"),
                           ("floor-seq", "floor, sequential"),
                           ("floor-threads", f"floor, {n} threads")):
            if key in (size.get("direct") or {}):
                paths.append((label, size["direct"][key]["teardown"]))
        for label, t in paths:
            rows.append([n, label, t["max_console_acpi_to_power_down"], t["max_qemu_exit"],
                         t["slowest_guest_shutdown"], t["max_reported"],
                         t["max_reported_minus_guest"], t["max_off_to_undefined"],
                         t["teardown_span"]])
    return _table(["N", "path", "console: ACPI → Power down", "QEMU power-off → shut off",
                   "guest: ACPI seen → shut off", "reported by delete",
                   "reported - guest", "shut off → undefined",
                   "all guests: first ACPI → last undefine"], rows)


def import_table(imported: dict[str, Any]) -> str:
    s, r = imported["seconds"], imported["mib_per_s"]
    base = imported["cp_then_sha256sum_seconds"]

    def vs(seconds: float | None) -> str:
        return _f(round(base / seconds, 2), "x") if seconds else "-"

    rows = [
        ["cp", s["cp"], r["cp"], vs(s["cp"])],
        ["sha256sum", s["sha256sum"], r["sha256sum"], vs(s["sha256sum"])],
        ["cp, then sha256sum (baseline)", base, r["cp_then_sha256sum"], "1.00x"],
        ["plain libvirt upload stream (floor, no hash)", s["floor_upload"], r["floor_upload"],
         vs(s["floor_upload"])],
        ["BaseImage create (provider: stream + sha256 + ledger)", s["provider"], r["provider"],
         vs(s["provider"])],
        ["BaseImage create, sha256 pinned (check verifies the source first)",
         s.get("provider_pinned"), r.get("provider_pinned"), vs(s.get("provider_pinned"))],
        ["`pulumi up` of Pool + BaseImage", s["pulumi_up"], r["pulumi_up"], vs(s["pulumi_up"])],
    ]
    return _table([f"{imported['image_mib']} MiB qcow2 (random data)", "seconds", "MiB/s",
                   "throughput vs baseline"], rows)


def stall_table(stalled: dict[str, Any]) -> str:
    """One column pair per libvirt host (results before 2026-11-29 hold one host, unnamed)."""
    by_host = {"debian": stalled} if "median" in stalled else stalled
    header = ["volume delete (median of runs)"]
    for host in by_host:
        header += [f"{host}: nothing shutting down", f"{host}: another domain shutting down"]

    def row(label: str, idle: str, during: str) -> list[Any]:
        cells: list[Any] = [label]
        for result in by_host.values():
            m = result["median"]
            cells += [m.get(idle) if idle else "", m.get(during)]
        return cells

    return _table(header, [
        row("ours (`volume.delete`: which domains use it, by `disk_users`)", "ours_idle",
            "ours_during_shutdown"),
        row("plain `vol.delete(0)`", "plain_idle", "plain_during_shutdown"),
        row("a bare `listAllDomains` (what any in-use scan starts with)", "list_idle",
            "list_during_shutdown"),
        row("(that domain: QEMU power-off → shut off)", "", "qemu_exit"),
    ], digits=3)


def shared_table(shared: dict[str, Any]) -> str:
    m = shared["median"]
    return _table(["", "up", "destroy"], [
        ["stack A alone", m["a_up"], m["a_destroy"]],
        ["stack B alone", m["b_up"], m["b_destroy"]],
        ["A alone + B alone (the same work, one after the other)", m["sequential_up"],
         m["sequential_destroy"]],
        ["**two stacks, one pool**: A and B at once (wall time until both end)",
         m["both_up"], m["both_destroy"]],
    ])


def sigint_table(measured: dict[str, Any]) -> str:
    m = measured["median"]
    return _table(["no-op `pulumi preview` (median seconds)", "caller: SIGINT default",
                   "caller ignores SIGINT"], [
        ["`.venv/bin/pulumi` (resets SIGINT)", m["wrapper_interactive"],
         m["wrapper_sigint_ignored"]],
        ["the Pulumi CLI binary it runs", m["unwrapped_interactive"],
         m["unwrapped_sigint_ignored"]],
    ])


def memory_table(summary: dict[str, Any]) -> str:
    rows = []
    for n, size in summary["sizes"].items():
        p = size.get("pulumi")
        if not p:
            continue
        peak = p["peak_mib"]
        engine = (size.get("engine_only") or {}).get("peak_mib", {})
        rows.append([n, peak["up"]["dynamic_provider"], peak["preview"]["dynamic_provider"],
                     peak["destroy"]["dynamic_provider"], engine.get("up"),
                     peak["up"]["cli"], peak["up"]["program"]])
    return _table(["N", "dynamic provider: up", "preview", "destroy",
                   "engine-only provider: up", "pulumi CLI: up", "program: up"], rows)


def measure_table(measured: dict[str, Any]) -> str:
    return _table(["firmware", "page-add order", "median", "max", "runs"],
                  [[measured["firmware"], order, measured["median_s"][order],
                    measured["max_s"][order], measured["runs"]]
                   for order in measured["median_s"]], digits=4)


def targets_table(found: list[dict[str, Any]]) -> str:
    return _table(["target", "measured", "verdict"],
                  [[t["target"], t["measured"], t["verdict"]] for t in found])


def render(results: dict[str, Any]) -> str:
    summary = results["summary"]
    parts = [
        "### Libvirt hosts",
        hosts_table(results.get("machine") or {}),
        "### Lifecycle through the Pulumi CLI (median seconds)",
        lifecycle_table(summary),
        "### The same lifecycle on each libvirt host (median seconds)",
        hosts_lifecycle_table(summary),
        "### Our provider versus the libvirt floor, per phase (median seconds)",
        phase_table(summary),
        "### Teardown (seconds; per run the slowest guest, median over runs)",
        teardown_table(summary),
    ]
    if results.get("stall"):
        parts += ["### A volume delete while another domain shuts down (seconds)",
                  stall_table(results["stall"])]
    if results.get("shared"):
        shared = results["shared"]
        parts += [f"### Two stacks, one pool (median seconds; each stack: base image, "
                  f"{shared['overlays']} overlays, {shared['domains']} guests)",
                  shared_table(shared)]
    if results.get("import"):
        parts += ["### Image import", import_table(results["import"])]
    if results.get("sigint"):
        parts += ["### A caller that ignores SIGINT (docs/automation.md)",
                  sigint_table(results["sigint"])]
    if results.get("measure"):
        parts += ["### Expected MRTD (read + parse + replay, seconds)",
                  measure_table(results["measure"])]
    parts += [
        "### Peak RSS (VmHWM, MiB; max over runs)",
        memory_table(summary),
        "### Targets",
        targets_table(results["targets"]),
    ]
    # Drop sections that were not run (a heading followed by a table without rows).
    kept: list[str] = []
    for heading, body in zip(parts[::2], parts[1::2], strict=True):
        if body.count("\n") >= 2:
            kept += [heading, body]
    return "\n\n".join(kept) + "\n"

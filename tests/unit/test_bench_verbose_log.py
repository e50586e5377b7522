"""bench/verbose_log.py: the per-phase breakdown of a ``pulumi -v=9 --logtostderr`` log that
``make bench`` prints for both adapters (issue 20, point 7). The log lines are the messages
the Pulumi CLI v3.274 writes, shortened."""

from __future__ import annotations

import json

import pytest

from bench.verbose_log import END_PHASE, PHASES, breakdown, parse_time

T0 = parse_time("2026-12-02T10:00:00Z")
LOG = [
    (0.100, "OTLP receiver started on port 45649"),
    (0.140, "langhost[python].About() success"),
    (0.290, "*** Starting Update(preview=true) ***"),
    (0.310, "langhost[python].Run(pwd=/p,root=/p, program=/p, entryPoint=.) executing"),
    (0.500, "registering resource: ty=pulumi:pulumi:Stack, name=s, custom=False"),
    (0.530, "newPlugin(): Launching plugin 'tdx (resource)' from '/v/pulumi-resource-tdx'"),
    (0.780, "Provider[0x1].GetPluginInfo() executing"),
    (0.785, "registered default provider for package tdx: urn:pulumi:t::p::pulumi:providers"),
    (0.790, "Provider[0x1].Check(urn:pulumi:t::p::tdx:index:Pool::pool) executing (#olds=6)"),
    (0.900, "Provider[0x1].Check(urn:pulumi:t::p::tdx:index:Pool::pool) success: inputs=#6"),
    (0.901, "Provider[0x1].Diff(urn:pulumi:t::p::tdx:index:Pool::pool,id): executing"),
    (0.903, "Provider[0x1].Diff(urn:pulumi:t::p::tdx:index:Pool::pool,id) success: changes=1"),
    (0.910, "run_pulumi_func completed"),
    (1.000, "Program exited with no error"),
    (1.080, "langhost[python].Cancel() executing"),
    (1.085, "*** Update(preview=true) complete ***"),
]


def verbose_log(entries: list[tuple[float, str]]) -> str:
    def stamp(offset: float) -> str:
        micros = round(offset * 1_000_000)
        return f"2026-12-02T10:00:{micros // 1_000_000:02d}.{micros % 1_000_000:06d}123Z"

    lines = [json.dumps({"time": stamp(at), "level": "INFO", "msg": msg}) for at, msg in entries]
    return "\n".join(["a plugin's raw stderr line", *lines])


def test_every_phase_is_the_time_between_its_markers() -> None:
    found = breakdown(verbose_log(LOG), T0, T0 + 1.1)
    phases = found["phases"]
    assert list(phases) == PHASES
    assert phases["CLI start (exec to its first log line)"] == pytest.approx(0.1)
    assert phases["stack state load + secrets manager (passphrase)"] == pytest.approx(0.15)
    assert phases["provider process start + imports (to GetPluginInfo)"] == pytest.approx(0.25)
    assert phases["provider shutdown"] == pytest.approx(0.08)
    assert phases[END_PHASE] == pytest.approx(0.015)
    assert sum(phases.values()) == pytest.approx(found["total"]) == pytest.approx(1.1)


def test_provider_calls_are_paired_by_method_and_resource() -> None:
    rpcs = breakdown(verbose_log(LOG), T0, T0 + 1.1)["rpcs"]
    assert rpcs["Check"] == {"calls": 1, "seconds": pytest.approx(0.11),
                             "first": pytest.approx(0.11)}
    assert rpcs["Diff"]["seconds"] == pytest.approx(0.002)


def test_a_missing_marker_leaves_its_phase_empty_and_the_next_one_longer() -> None:
    without_about = [entry for entry in LOG if "About()" not in entry[1]]
    phases = breakdown(verbose_log(without_about), T0, T0 + 1.1)["phases"]
    assert phases["language host start + About"] is None
    assert phases["stack state load + secrets manager (passphrase)"] == pytest.approx(0.19)

"""tdxctl without libvirt: table formatting, the virsh passthrough split, option checks."""

from __future__ import annotations

import json

import pytest

from tdx_provider.guest.teardown import TeardownRow
from tdx_provider.metadata import Owner, owner_matches
from tdx_provider.tdxctl import tables
from tdx_provider.tdxctl.commands import COMMANDS, virsh
from tdx_provider.tdxctl.commands.delete import describe_teardown
from tdx_provider.tdxctl.main import main

# --- tables ----------------------------------------------------------------------------------


def test_table_pads_columns_to_the_widest_cell_and_not_the_last_one() -> None:
    rows = [{"name": "a-long-name", "port": 2222, "owner": "p/s/r"},
            {"name": "b", "port": None, "owner": None}]
    text = tables.render(rows, [("name", "NAME"), ("port", "SSH PORT"), ("owner", "OWNER")])
    assert text.splitlines() == [
        "NAME         SSH PORT  OWNER",
        "a-long-name  2222      p/s/r",
        "b            -         -",
    ]


def test_unknown_values_show_as_a_dash_in_tables_and_null_in_json() -> None:
    assert [tables.cell(v) for v in (None, "", [], ["a", "b"], True, 0)] == [
        "-", "-", "-", "a,b", "yes", "0"]
    assert json.loads(tables.to_json([{"ip": None, "used_by": []}])) == [
        {"ip": None, "used_by": []}]


@pytest.mark.parametrize(("value", "shown"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (64 * 1024**2, "64.0 MiB"),
    (int(1.5 * 1024**3), "1.5 GiB"), (3 * 1024**5, "3.0 PiB"), (None, "-"),
])
def test_sizes_read_in_binary_units(value: int | None, shown: str) -> None:
    assert tables.size(value) == shown


# --- virsh passthrough -----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["list"], ["--uri", "test:///default", "pool-info", "p"], ["delete", "--all"], [],
    ["--help"], ["--version"], ["-x", "dominfo"],
])
def test_our_commands_and_options_go_to_argparse(argv: list[str]) -> None:
    assert virsh.passthrough(argv, COMMANDS) is None


@pytest.mark.parametrize(("argv", "expected"), [
    (["dominfo", "vm"], ("qemu:///system", ["dominfo", "vm"])),
    (["--uri", "test:///default", "net-list", "--all"], ("test:///default", ["net-list", "--all"])),
    (["--uri=qemu+ssh://h/system", "start", "vm"], ("qemu+ssh://h/system", ["start", "vm"])),
    (["start", "vm", "--uri", "test:///default"], ("test:///default", ["start", "vm"])),
    (["virsh", "list", "--all"], ("qemu:///system", ["list", "--all"])),
])
def test_other_commands_pass_to_virsh_with_the_same_uri(
    argv: list[str], expected: tuple[str, list[str]]
) -> None:
    assert virsh.passthrough(argv, COMMANDS) == expected


def test_passthrough_runs_virsh_as_an_argv_and_returns_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []

    class Done:
        returncode = 3

    def fake_run(argv: list[str], check: bool) -> Done:
        calls.append(argv)
        return Done()

    monkeypatch.setattr(virsh.subprocess, "run", fake_run)
    assert main(["--uri", "test:///default", "domstate", "a; rm -rf /"]) == 3
    assert calls == [["virsh", "-c", "test:///default", "domstate", "a; rm -rf /"]]


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "matches"), [
    ("proj", True), ("proj/dev", True), ("proj/dev/web", True), ("proj/prod", False),
    ("pro", False), ("proj/dev/we", False),
])
def test_owner_filter_matches_whole_components(pattern: str, matches: bool) -> None:
    assert owner_matches(Owner("proj", "dev", "web"), pattern) is matches


@pytest.mark.parametrize("argv", [
    ["delete"], ["delete", "vm", "--all"], ["delete", "vm", "--owner", "p"],
    ["delete", "--all", "--timeout", "-1"], ["list", "--uri", "lxc:///"],
    ["host-check", "--root", "/nonexistent/root"], ["-x", "dominfo"],
])
def test_usage_errors_exit_2_without_touching_libvirt(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_no_command_prints_help() -> None:
    assert main([]) == 2


def test_teardown_descriptions() -> None:
    def row(result: str, **more: str) -> TeardownRow:
        return TeardownRow("vm", None, 60, result, seconds=2.14, **more)

    assert describe_teardown(row("graceful")) == "vm: stopped by ACPI after 2.1 s, undefined"
    assert describe_teardown(row("forced")).startswith(
        "vm: no ACPI shutdown within 60 s, forced off, undefined")
    assert describe_teardown(row("failed", error="boom")) == "vm: FAILED: boom"
    assert describe_teardown(row("undefined", overlay_kept="used by domain(s) other")) == (
        "vm: was not running, undefined; its overlay is not released: used by domain(s) other "
        "(it stays declared by its stack)")

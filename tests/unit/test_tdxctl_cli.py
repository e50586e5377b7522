"""tdxctl without libvirt: table formatting, the virsh passthrough split, option checks."""

from __future__ import annotations

import json

import pytest

from tdx_provider.metadata import Owner
from tdx_provider.tdxctl import cli, tables

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
    assert cli.passthrough(argv) is None


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
    assert cli.passthrough(argv) == expected


def test_passthrough_runs_virsh_as_an_argv_and_returns_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []

    class Done:
        returncode = 3

    def fake_run(argv: list[str], check: bool) -> Done:
        calls.append(argv)
        return Done()

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    assert cli.main(["--uri", "test:///default", "domstate", "a; rm -rf /"]) == 3
    assert calls == [["virsh", "-c", "test:///default", "domstate", "a; rm -rf /"]]


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "matches"), [
    ("proj", True), ("proj/dev", True), ("proj/dev/web", True), ("proj/prod", False),
    ("pro", False), ("proj/dev/we", False),
])
def test_owner_filter_matches_whole_components(pattern: str, matches: bool) -> None:
    assert cli.owner_matches(Owner("proj", "dev", "web"), pattern) is matches


@pytest.mark.parametrize("argv", [
    ["delete"], ["delete", "vm", "--all"], ["delete", "vm", "--owner", "p"],
    ["delete", "--all", "--timeout", "-1"], ["list", "--uri", "lxc:///"],
    ["host-check", "--root", "/nonexistent/root"], ["-x", "dominfo"],
])
def test_usage_errors_exit_2_without_touching_libvirt(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err


def test_no_command_prints_help() -> None:
    assert cli.main([]) == 2


def test_teardown_descriptions() -> None:
    base = {"name": "vm", "timeout": 60, "seconds": 2.14, "error": None}
    assert cli.describe_teardown({**base, "result": "graceful"}) == (
        "vm: stopped by ACPI after 2.1 s, undefined")
    assert cli.describe_teardown({**base, "result": "forced"}).startswith(
        "vm: no ACPI shutdown within 60 s, forced off, undefined")
    assert cli.describe_teardown({**base, "result": "failed", "error": "boom"}) == (
        "vm: FAILED: boom")
    assert cli.describe_teardown(
        {**base, "result": "undefined", "overlay_kept": "used by domain(s) other"}) == (
        "vm: was not running, undefined; its overlay is not released: used by domain(s) other "
        "(it stays declared by its stack)")

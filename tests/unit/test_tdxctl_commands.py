"""tdxctl's shape: a registry of small command modules over the engine, which neither parses
options nor prints."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tdx_provider.tdxctl.base import Command
from tdx_provider.tdxctl.commands import COMMANDS, create_command
from tdx_provider.tdxctl.main import main

PROVIDER = Path(__file__).resolve().parents[2] / "provider" / "tdx_provider"
ADAPTERS = ("dynamic", "native", "tdxctl")  # adapters may print and parse options
MAX_COMMAND_LINES = 150


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_registered_command_is_a_small_module_with_a_command_class(name: str) -> None:
    command = create_command(name)
    assert isinstance(command, Command) and command.name == name
    source = Path(sys.modules[COMMANDS[name].module].__file__ or "")
    assert len(source.read_text().splitlines()) <= MAX_COMMAND_LINES, source


def test_help_lists_every_registered_command_by_its_summary(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, info in COMMANDS.items():
        assert name in out and info.summary[:40] in out


def test_a_command_imports_only_its_own_module() -> None:
    code = ("import sys; from tdx_provider.tdxctl.main import main; main(['list', '--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('tdx_provider.tdxctl.commands.')"
            " or m.startswith('tdx_provider.dynamic')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == (
        "['tdx_provider.tdxctl.commands.list', 'tdx_provider.tdxctl.commands.virsh']")


def _engine_modules() -> list[Path]:
    return [path for path in sorted(PROVIDER.rglob("*.py"))
            if path.relative_to(PROVIDER).parts[0] not in ADAPTERS]


def test_engine_modules_neither_parse_options_nor_print_nor_import_tdxctl() -> None:
    offenders = []
    for path in _engine_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "argparse" or n.startswith("tdx_provider.tdxctl") for n in names):
                offenders.append(f"{path.relative_to(PROVIDER)}:{node.lineno} imports {names}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"):
                offenders.append(f"{path.relative_to(PROVIDER)}:{node.lineno} prints")
    assert offenders == []

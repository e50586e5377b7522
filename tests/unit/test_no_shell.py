"""No shell anywhere in the package: every subprocess takes an argv list.

The scanner walks the AST of every module under ``provider/`` and ``sdk/`` and reports calls
that hand a command line to a shell (``shell=`` anything but a literal False, ``os.system``,
``os.popen``, ``subprocess.getoutput``/``getstatusoutput``, the ``os.exec*``/``os.spawn*``
families with a shell as the program) and subprocess calls whose command is a string. It is
tested on snippets first, so a scanner that finds nothing cannot pass for a clean package.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = (REPO_ROOT / "provider", REPO_ROOT / "sdk")

SHELL_FUNCTIONS = {
    ("os", "system"), ("os", "popen"),
    ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"),
    ("commands", "getoutput"), ("commands", "getstatusoutput"),
}
SUBPROCESS_FUNCTIONS = {"run", "Popen", "call", "check_call", "check_output"}
ASYNC_SHELL = {("asyncio", "create_subprocess_shell")}
SHELLS = {"sh", "bash", "dash", "zsh", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _dotted(node: ast.expr) -> tuple[str, ...]:
    """``a.b.c`` as ("a", "b", "c"); () for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return ()


def _is_text(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(
        node, ast.JoinedStr | ast.BinOp
    )


def _first_word(node: ast.expr) -> str | None:
    """The program of an argv literal (``["sh", "-c", ...]`` → "sh")."""
    if isinstance(node, ast.List | ast.Tuple) and node.elts:
        first = node.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: list[Finding] = []
        # local name -> (module, function) for ``from os import system as run_it``
        self.imported: dict[str, tuple[str, str]] = {}

    def _report(self, node: ast.AST, what: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), what))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if node.module:
                self.imported[alias.asname or alias.name] = (node.module, alias.name)
        self.generic_visit(node)

    def _resolve(self, func: ast.expr) -> tuple[str, ...]:
        dotted = _dotted(func)
        if len(dotted) == 1 and dotted[0] in self.imported:
            return self.imported[dotted[0]]
        return dotted[-2:] if len(dotted) >= 2 else dotted

    def visit_Call(self, node: ast.Call) -> None:
        target = self._resolve(node.func)
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                self._report(node, "shell= is not a literal False")
        if target in SHELL_FUNCTIONS or target in ASYNC_SHELL:
            self._report(node, f"{'.'.join(target)}() runs a shell")
        if len(target) == 2 and target[0] == "os" and target[1].startswith(("exec", "spawn")):
            program = node.args[1] if len(node.args) > 1 else None
            word = _first_word(program) if program is not None else None
            if word in SHELLS:
                self._report(node, f"os.{target[1]}() starts a shell")
        if len(target) == 2 and target[0] == "subprocess" and target[1] in SUBPROCESS_FUNCTIONS:
            command = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "args"), None
            )
            if command is not None and _is_text(command):
                self._report(node, f"subprocess.{target[1]}() gets a string, not an argv list")
            if command is not None and _first_word(command) in SHELLS:
                self._report(node, f"subprocess.{target[1]}() starts a shell")
        self.generic_visit(node)


def scan_source(source: str, path: str = "<snippet>") -> list[Finding]:
    scanner = _Scanner(path)
    scanner.visit(ast.parse(source, filename=path))
    return scanner.findings


def package_files() -> list[Path]:
    return sorted(p for d in PACKAGE_DIRS for p in d.rglob("*.py"))


# --- the scanner catches what it must --------------------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        "import subprocess\nsubprocess.run('ls -l', shell=True)",
        "import subprocess\nsubprocess.Popen(['ls'], shell=True)",
        "import subprocess\nflag = True\nsubprocess.check_output(['ls'], shell=flag)",
        "import os\nos.system('reboot')",
        "import os\nos.popen('ls')",
        "import subprocess\nsubprocess.getoutput('ls')",
        "import subprocess\nsubprocess.getstatusoutput('ls')",
        "from os import system\nsystem('ls')",
        "from os import system as run_it\nrun_it('ls')",
        "from subprocess import getoutput\ngetoutput('ls')",
        "import subprocess\nsubprocess.run('ls -l')",
        "import subprocess\nname = 'x'\nsubprocess.call(f'virsh destroy {name}')",
        "import subprocess\nsubprocess.run(args='ls')",
        "import subprocess\nsubprocess.run(['sh', '-c', 'ls | wc'])",
        "import subprocess\nsubprocess.Popen(['/bin/bash', '-c', 'x'])",
        "import os\nos.execvp('sh', ['sh', '-c', 'ls'])",
        "import asyncio\nasyncio.create_subprocess_shell('ls')",
        "from subprocess import run\nrun('ls', shell=True)",
    ],
)
def test_scanner_reports_shell_use(snippet: str) -> None:
    assert scan_source(textwrap.dedent(snippet)), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "import subprocess\nsubprocess.run(['ls', '-l'], check=True)",
        "import subprocess\nsubprocess.run(['ls'], shell=False)",
        "import subprocess\ncmd = ['qemu-img', 'info']\nsubprocess.Popen(cmd, text=True)",
        "import os\nos.killpg(1, 9)",
        "import shlex\nshlex.join(['a', 'b'])",
    ],
)
def test_scanner_accepts_argv_lists(snippet: str) -> None:
    assert scan_source(snippet) == []


def test_scanner_reports_the_file_and_line() -> None:
    [finding] = scan_source("import os\n\n\nos.system('x')\n", "pkg/mod.py")
    assert str(finding) == "pkg/mod.py:4: os.system() runs a shell"


# --- the package is clean --------------------------------------------------------------------


def test_the_scan_covers_the_engine_the_adapters_and_the_sdk() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in package_files()}
    for expected in ("provider/tdx_provider/host/gpu.py",
                     "provider/tdx_provider/dynamic/trust_domain.py",
                     "sdk/python/pulumi_tdx/trust_domain.py"):
        assert expected in names


def test_no_shell_anywhere_in_the_package() -> None:
    findings = [
        f for path in package_files()
        for f in scan_source(path.read_text(), path.relative_to(REPO_ROOT).as_posix())
    ]
    assert findings == [], "\n".join(map(str, findings))


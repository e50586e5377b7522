"""The Pulumi programs the e2e tests run, kept as files under ``tests/fixtures/programs/``.

A program is a real ``__main__.py`` (linted, readable, runnable by hand with ``pulumi up`` in a
project that points at it) rather than a string inside a test; each takes what varies per run
through Pulumi config (or, where noted in the program, a JSON file beside it).
"""

from __future__ import annotations

from pathlib import Path

PROGRAMS = Path(__file__).resolve().parents[1] / "fixtures" / "programs"


def program_dir(name: str) -> Path:
    """``tests/fixtures/programs/<name>``: ``__main__.py`` and, for some, a ``Pulumi.yaml``."""
    path = PROGRAMS / name
    if not (path / "__main__.py").is_file():
        raise FileNotFoundError(f"no test program {path / '__main__.py'}")
    return path


def program(name: str) -> str:
    """The text of ``tests/fixtures/programs/<name>/__main__.py``."""
    return (program_dir(name) / "__main__.py").read_text()

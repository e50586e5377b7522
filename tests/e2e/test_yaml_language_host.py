"""The YAML language host that ``make setup`` builds (pulumi-language-yaml, issue 20 item 4)
runs a program on the real CLI with the local file backend: up, a changed config previewed as
a diff, refresh, destroy. No provider: a stack of outputs only, so this proves the language
host alone; the native provider's YAML example builds on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.stack import VENV, Stack

pytestmark = pytest.mark.e2e

PROGRAM = """
config:
  greeting:
    type: string
    default: hello
  count:
    type: integer
    default: 2
variables:
  message:
    fn::join:
      - " "
      - - ${greeting}
        - from yaml
outputs:
  message: ${message}
  count: ${count}
  stack: ${pulumi.stack}
  project: ${pulumi.project}
"""


def test_yaml_host_sits_beside_the_cli() -> None:
    """The CLI looks for its bundled language hosts beside its own resolved path and warns
    ("using pulumi-language-yaml from $PATH ...") when the one on PATH is elsewhere."""
    yaml_host = (VENV / "bin" / "pulumi-language-yaml").resolve()
    assert os.access(yaml_host, os.X_OK), f"{yaml_host}: run `make setup`"
    wrapper = (VENV / "bin" / "pulumi").read_text()
    cli = Path(next(w for w in wrapper.split() if w.endswith("/pulumi")))
    assert cli.parent == yaml_host.parent


def test_yaml_program_up_change_refresh_destroy(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(PROGRAM, runtime="yaml", project="ptdx-yaml")
    up = stack.up()
    assert "warning" not in up.output.lower(), up.output
    assert stack.outputs() == {"message": "hello from yaml", "count": 2, "stack": "test",
                               "project": "ptdx-yaml"}

    stack.run("preview", "--expect-no-changes")
    stack.config({"greeting": "goodbye"})
    preview = stack.preview(check=True).output
    assert 'message: "hello from yaml" => "goodbye from yaml"' in preview, preview
    stack.up()
    assert stack.outputs()["message"] == "goodbye from yaml"

    stack.refresh()
    destroyed = stack.destroy()
    assert "warning" not in destroyed.output.lower(), destroyed.output
    state = json.loads(stack.run("stack", "export").stdout)
    assert not state["deployment"].get("resources"), state


def test_yaml_program_error_names_the_problem(make_stack: Callable[..., Stack]) -> None:
    """A type error in the program is the YAML host's diagnostic, and nothing is deployed."""
    stack = make_stack(PROGRAM.replace("default: 2", "default: two"), runtime="yaml")
    result = stack.up(check=False)
    assert result.returncode != 0
    assert "count" in result.output and "integer" in result.output, result.output

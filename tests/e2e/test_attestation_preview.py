"""Attestation inputs through the real Pulumi CLI: bad values fail `pulumi preview`, each error
naming its property, and nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.programs import program
from tests.support.stack import Stack


def test_bad_attestation_inputs_fail_preview_naming_each_property(
    make_stack: Callable[..., Stack], work_dir: Path, e2e_id: str,
) -> None:
    (work_dir / "OVMF.fd").write_bytes(b"\0" * 16)
    stack = make_stack(program("bad_attestation_inputs"))
    stack.config({"name": e2e_id, "work": str(work_dir), "hex72": "00" * 72, "hex48": "ab" * 48})
    result = stack.preview(check=False)
    assert result.returncode != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    shown = "\n".join(errors)
    for prop, reason in [("tdx_policy", "sets bit 28"), ("mr_owner", "48 bytes"),
                         ("mr_config_id", "got 108 bytes")]:
        assert any(f"{prop}: " in line and reason in line for line in errors), shown
    # the well-formed value is not reported
    assert not any("mr_owner_config: " in line for line in errors), shown
    assert stack.resources() == []

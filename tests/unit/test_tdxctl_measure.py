"""`tdxctl measure`: the MRTD of a TDVF the test lays out (tests/support/tdvf.py), the page-add
order from an option or from libvirt (test:///default), and clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdx_provider.tdxctl.main import main as tdxctl
from tests.support.tdvf import Layout, expected


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = tdxctl(["measure", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("version", "two_pass"), [("8.2.2", True), ("11.1.3", False)])
def test_json_mrtd_follows_the_given_qemu_version(
        capsys: pytest.CaptureFixture[str], firmware: tuple[Path, Layout], version: str,
        two_pass: bool) -> None:
    path, layout = firmware
    code, out, _ = run(capsys, "--firmware", str(path), "--qemu-version", version, "--json")
    result = json.loads(out)
    assert code == 0
    assert result["mrtd"] == expected(path.read_bytes(), layout.sections, two_pass=two_pass)
    assert result["page_add_order"] == ("two-pass" if two_pass else "single-pass")
    assert (result["sections"], result["pages"], result["measured_pages"]) == (4, 8, 2)
    assert result["rtmrs"] is None


def test_text_output_names_the_order_and_where_it_came_from(
        capsys: pytest.CaptureFixture[str], firmware: tuple[Path, Layout]) -> None:
    path, layout = firmware
    code, out, _ = run(capsys, "--uri", "test:///default", "--firmware", str(path),
                       "--kernel", str(path), "--cmdline", "console=ttyS0", "--memory-mib", "2048")
    assert code == 0
    label_width = len("page add order  ")
    lines = {line[:label_width].strip(): line[label_width:] for line in out.splitlines()}
    assert lines["MRTD"] == expected(path.read_bytes(), layout.sections, two_pass=False)
    assert "single-pass" in lines["page add order"]
    assert "from libvirt at test:///default" in lines["page add order"]
    assert lines["RTMRs"].startswith("not computed")


def test_a_relative_firmware_path_is_taken_from_the_current_directory(
        capsys: pytest.CaptureFixture[str], firmware: tuple[Path, Layout],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = firmware
    monkeypatch.chdir(path.parent)
    code, out, _ = run(capsys, "--firmware", path.name, "--qemu-version", "11.1", "--json")
    assert code == 0
    assert json.loads(out)["firmware"] == str(path)


def test_page_add_order_overrides(capsys: pytest.CaptureFixture[str],
                                  firmware: tuple[Path, Layout]) -> None:
    path, layout = firmware
    code, out, _ = run(capsys, "--firmware", str(path), "--page-add-order", "two-pass", "--json")
    assert code == 0
    assert json.loads(out)["mrtd"] == expected(path.read_bytes(), layout.sections, two_pass=True)


def test_an_image_without_tdx_metadata_fails_naming_the_file(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "OVMF_CODE.fd"
    path.write_bytes(Layout(include_tdx_entry=False).build())
    code, out, err = run(capsys, "--firmware", str(path), "--qemu-version", "11.1")
    assert (code, out) == (1, "")
    assert f"{path}: no TDX metadata" in err


@pytest.mark.parametrize("argv", [
    [], ["--firmware", "/does/not/exist"], ["--firmware", "not/here.fd"],
])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = run(capsys, *argv)
    assert (code, out) == (2, "")


def test_qemu_version_and_page_order_are_exclusive(
        capsys: pytest.CaptureFixture[str], firmware: tuple[Path, Layout]) -> None:
    path, _ = firmware
    code, _, err = run(capsys, "--firmware", str(path), "--qemu-version", "8.2.2",
                       "--page-add-order", "two-pass")
    assert code == 2
    assert "not allowed with" in err


def test_a_bad_qemu_version_is_a_clear_failure(
        capsys: pytest.CaptureFixture[str], firmware: tuple[Path, Layout]) -> None:
    path, _ = firmware
    code, _, err = run(capsys, "--firmware", str(path), "--qemu-version", "latest")
    assert code == 1
    assert "MAJOR.MINOR" in err

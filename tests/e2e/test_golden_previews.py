"""Golden previews: the exact `pulumi preview --diff` text a reviewer reads for the changes that
matter (a replacement, in-place updates, a GPU change that deletes first), and a debug TD as
far as this machine can show one (see DEBUG_TD_INPUTS).

Only what genuinely varies between runs is normalised (:func:`normalise`): the run-unique name
prefix, the work directory, the repository path, the test guest's cache directory and the
libvirt-assigned domain UUID in `[id=…]`.
Everything else, including property order, markers (`+-`, `~`) and the summary, is pinned.
Regenerate after an intended change with PULUMI_TDX_UPDATE_GOLDEN=1 and review the diff; a
missing golden file fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import guest as tg
from tests.support.programs import program
from tests.support.stack import REPO_ROOT, VENV, Stack
from tests.support.tdvf import Layout

pytestmark = pytest.mark.e2e
GOLDEN = Path(__file__).parent / "golden"
FIXTURE_HOST = REPO_ROOT / "tests" / "fixtures" / "testhost.xml"
TDX_READY_ROOT = REPO_ROOT / "tests" / "fixtures" / "sysfs-tdx-ready"

# A debug TD on the test:/// fixture host (TDX-ready sysfs tree, a synthetic TDVF). No host on
# our machines lets a TD pass the preview-time TDX check (Debian's libvirt 9.0 knows no TDX, the
# upstream host's KVM says <tdx supported='no'/>, libvirt's test driver has no domain
# capabilities), so `pulumi preview` of a TD cannot succeed here: the debug TD is pinned as the
# XML `tdxctl render` prints through the very checks and rendering of preview, and its preview is
# shown to fail on nothing but the host's TDX readiness.
DEBUG_TD_INPUTS = {"name": "debug-td", "memory_mib": 4096, "vcpus": 4, "tdx": True,
                   "debug": True, "vsock": False, "network": None}


def normalise(text: str, *, prefix: str, work_dir: Path) -> str:
    text = text.replace(str(work_dir), "<work>").replace(prefix, "<prefix>")
    text = text.replace(str(REPO_ROOT), "<repo>").replace(str(tg.cache_dir()), "<guest>")
    text = re.sub(r"\[id=[0-9a-f-]{36}\]", "[id=<uuid>]", text)
    return text.rstrip() + "\n"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("PULUMI_TDX_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with PULUMI_TDX_UPDATE_GOLDEN=1 and review"
    assert text == path.read_text()


def golden_preview(stack: Stack, name: str, prefix: str, work_dir: Path, *extra: str) -> str:
    text = normalise(stack.preview(*extra).stdout, prefix=prefix, work_dir=work_dir)
    assert_golden(name, text)
    return text


@pytest.fixture
def vm_stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
             guest: tg.TestGuest) -> Stack:
    stack = make_stack(program("golden_vm"))
    stack.config({"prefix": e2e_id, "work": str(work_dir), "image": str(guest.base_image),
                  "kernel": str(guest.kernel), "initrd": str(guest.initrd),
                  "cmdline": tg.CMDLINE})
    stack.up()
    return stack


def test_previews_of_memory_autostart_and_overlay_growth(
    vm_stack: Stack, e2e_id: str, work_dir: Path
) -> None:
    disk = next(r for r in vm_stack.resources() if r["urn"].endswith("::disk"))
    size = int(disk["outputs"]["capacity"])

    vm_stack.config({"memory": 384})
    golden_preview(vm_stack, "memory-replace", e2e_id, work_dir)
    vm_stack.run("config", "rm", "memory")

    vm_stack.config({"autostart": "true"})
    golden_preview(vm_stack, "autostart-update", e2e_id, work_dir)
    vm_stack.run("config", "rm", "autostart")

    vm_stack.config({"capacity": size * 2})
    golden_preview(vm_stack, "overlay-growth-update", e2e_id, work_dir)


def test_preview_of_a_gpu_change_deletes_first(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    # The test:/// fixture host has two H100s as PCI node devices; GPU preparation at create
    # writes to a copy of the TDX-ready sysfs tree, never to this machine's /sys.
    root = work_dir / "sysfs"
    shutil.copytree(TDX_READY_ROOT, root)
    stack = make_stack(program("gpu_vm_on_fixture_host"),
                       extra_env={"PULUMI_TDX_HOST_ROOT": str(root)})
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": f"test://{FIXTURE_HOST}",
                  "gpus": "0000:3b:00.0"})
    stack.up()
    stack.config({"gpus": "0000:3b:00.0,0000:86:00.0"})
    # --show-replacement-steps: the reviewer sees that the old domain goes first
    text = golden_preview(stack, "gpus-delete-before-replace", e2e_id, work_dir,
                          "--show-replacement-steps")
    assert text.index("(delete-replaced)") < text.index("(create-replacement)")


def test_a_debug_trust_domain_as_a_reviewer_gets_it(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    firmware = work_dir / "OVMF.inteltdx.fd"
    firmware.write_bytes(Layout().build())
    uri = f"test://{FIXTURE_HOST}"
    env = {**os.environ, "PULUMI_TDX_HOST_ROOT": str(TDX_READY_ROOT)}
    inputs = work_dir / "debug-td.json"
    inputs.write_text(json.dumps({**DEBUG_TD_INPUTS, "uri": uri, "firmware": str(firmware),
                                  "overlay": str(work_dir / "td-disk.qcow2")}))
    done = subprocess.run([str(VENV / "bin" / "tdxctl"), "render", "--root", str(TDX_READY_ROOT),
                           str(inputs)], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    xml_text = normalise(done.stdout, prefix=e2e_id, work_dir=work_dir)
    assert "<policy>0x10000001</policy>" in xml_text  # DEBUG (bit 0) | SEPT_VE_DISABLE (bit 28)
    assert_golden("debug-td-render", xml_text)

    stack = make_stack(program("debug_td"),
                       extra_env={"PULUMI_TDX_HOST_ROOT": str(TDX_READY_ROOT)})
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": uri,
                  "firmware": str(firmware)})
    result = stack.preview(check=False)
    assert result.returncode != 0
    problems = re.findall(r"has a problem: (\w+):", result.output)
    assert problems == ["tdx"], result.output  # the host's readiness, nothing about the inputs

"""Golden previews: the exact `pulumi preview --diff` text a reviewer reads for the changes that
matter (a replacement, in-place updates, a GPU change that deletes first, a debug TD).

Only what genuinely varies between runs is normalised (:func:`normalise`): the run-unique name
prefix, the work directory, the repository path, the test guest's cache directory and the
libvirt-assigned domain UUID in `[id=…]`.
Everything else, including property order, markers (`+-`, `~`) and the summary, is pinned.
Regenerate after an intended change with PULUMI_TDX_UPDATE_GOLDEN=1 and review the diff; a
missing golden file fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import guest as tg
from tests.support.stack import REPO_ROOT, Stack

pytestmark = pytest.mark.e2e
GOLDEN = Path(__file__).parent / "golden"
FIXTURE_HOST = REPO_ROOT / "tests" / "fixtures" / "testhost.xml"
TDX_READY_ROOT = REPO_ROOT / "tests" / "fixtures" / "sysfs-tdx-ready"

PROGRAM = """
import pulumi
from pulumi_tdx import BaseImage, Overlay, Pool, TrustDomain

cfg = pulumi.Config()
prefix = cfg.require("prefix")
work = cfg.require("work")
pool = Pool("pool", name=prefix, path=f"{work}/pool")
base = BaseImage("base", pool=pool, name=f"{prefix}-base", source=cfg.require("image"))
disk = Overlay("disk", pool=pool, base_image=base, name=f"{prefix}-disk",
               capacity=cfg.get_int("capacity"))
td = TrustDomain("td", overlay=disk, name=f"{prefix}-td", memory_mib=cfg.get_int("memory") or 256,
                 vcpus=1, tdx=False, domain_type="qemu", vsock=False, network=None,
                 kernel=cfg.require("kernel"), initrd=cfg.require("initrd"),
                 cmdline=cfg.require("cmdline"), shutdown_timeout=10,
                 autostart=cfg.get_bool("autostart") or False)
"""

GPU_PROGRAM = """
import pulumi
from pulumi_tdx import TrustDomain

cfg = pulumi.Config()
prefix = cfg.require("prefix")
TrustDomain("gpu-td", overlay=f"{cfg.require('work')}/gpu-disk.qcow2", name=f"{prefix}-gpu",
            memory_mib=4096, vcpus=4, tdx=False, domain_type="qemu", vsock=False, network=None,
            gpus=cfg.require("gpus").split(","), uri=cfg.require("uri"))
"""

# NOTE (issue 10): `debug` is an input issue 10 adds to TrustDomain. This test fails until that
# branch is merged, and needs a host on which a TD passes the preview-time TDX check.
DEBUG_TD_PROGRAM = """
import pulumi
from pulumi_tdx import TrustDomain

cfg = pulumi.Config()
TrustDomain("debug-td", overlay=f"{cfg.require('work')}/td-disk.qcow2",
            name=f"{cfg.require('prefix')}-debug", memory_mib=4096, vcpus=4, tdx=True,
            debug=True, firmware=cfg.require("firmware"), vsock=False, network=None,
            uri=cfg.require("uri"))
"""


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
    stack = make_stack(PROGRAM)
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
    stack = make_stack(GPU_PROGRAM, extra_env={"PULUMI_TDX_HOST_ROOT": str(root)})
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": f"test://{FIXTURE_HOST}",
                  "gpus": "0000:3b:00.0"})
    stack.up()
    stack.config({"gpus": "0000:3b:00.0,0000:86:00.0"})
    # --show-replacement-steps: the reviewer sees that the old domain goes first
    text = golden_preview(stack, "gpus-delete-before-replace", e2e_id, work_dir,
                          "--show-replacement-steps")
    assert text.index("(delete-replaced)") < text.index("(create-replacement)")


def test_preview_of_a_debug_trust_domain(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    # Needs issue 10's `debug` input (see DEBUG_TD_PROGRAM); expected to fail before that merge.
    stack = make_stack(DEBUG_TD_PROGRAM,
                       extra_env={"PULUMI_TDX_HOST_ROOT": str(TDX_READY_ROOT)})
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": f"test://{FIXTURE_HOST}",
                  "firmware": str(TDX_READY_ROOT / "usr/share/ovmf/OVMF.fd")})
    text = normalise(stack.preview().stdout, prefix=e2e_id, work_dir=work_dir)
    # A debug TD can be attested as one: a reviewer must see it. No golden file is committed
    # yet (the inputs issue 10 adds are not known here): after merging, regenerate with
    # PULUMI_TDX_UPDATE_GOLDEN=1, check the text, and commit it.
    assert re.search(r"^ *\+? *debug *: true$", text, re.MULTILINE), text
    assert_golden("debug-td-create", text)

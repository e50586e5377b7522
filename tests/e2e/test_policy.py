"""Reviews that enforce: `pulumi preview --policy-pack policy` with the real CLI and the local
backend (docs/policy.md).

What previews here: regular VMs (tdx=False, TCG) on the Debian libvirtd, so the rules that read
a regular VM, a base image, a pool or a template are proven end to end, exit code included.

What cannot: no host on our machines lets a trust domain pass the preview's TDX check (see
tests/e2e/test_golden_previews.py). The engine still hands the TD's checked inputs to the policy
pack before it stops on that check, so the TD-only rules (debug, SEPT #VE, GPU CC mode, MRTD)
are proven here to reach the CLI's report with the resource, the property and the values, on the
test:/// fixture host with a TDX-ready sysfs tree and a synthetic TDVF; that such a violation
alone fails a preview rests on the enforcement level the CLI reports (`[mandatory]`) and on the
exit codes proven for the regular-VM rules. tests/unit/test_policy_rules.py covers a TD that
passes every rule.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import tdvf
from tests.support.policy import POLICY_DIR
from tests.support.programs import program
from tests.support.stack import REPO_ROOT, Result, Stack

pytestmark = pytest.mark.e2e
FIXTURE_HOST = REPO_ROOT / "tests" / "fixtures" / "testhost.xml"
TDX_READY_ROOT = REPO_ROOT / "tests" / "fixtures" / "sysfs-tdx-ready"
PACK = "tdx-trust-domains"


@dataclass(frozen=True)
class Violation:
    level: str
    policy: str
    resource: str  # "<type>: <name>" as the CLI prints it
    message: str


def violations(output: str) -> list[Violation]:
    """The policy section of a preview: per violation its level, policy, resource, and the
    message line (after the policy's description line)."""
    found = re.findall(
        r"^\s+- \[(advisory|mandatory)\]\s+(\S+)\s+\((.+?)\)\n\s+.*\n\s+(.*)$", output, re.M)
    return [Violation(*match) for match in found]


class PolicyStack:
    """A stack whose program (tests/fixtures/programs/policy_*) reads its inputs from
    options.json beside it: a change costs no `pulumi config` call."""

    def __init__(self, stack: Stack, base: dict[str, Any]) -> None:
        self.stack = stack
        self.base = base

    def preview(self, config: dict[str, Any] | None = None, **changes: Any) -> Result:
        options = {**self.base, **changes}
        (self.stack.project_dir / "options.json").write_text(json.dumps(options))
        args = ["preview", "--policy-pack", str(POLICY_DIR)]
        if config is not None:
            path = self.stack.workdir / "policy-config.json"
            path.write_text(json.dumps(config))
            args += ["--policy-pack-config", str(path)]
        return self.stack.run(*args, check=False)


ALLOW_VM = {"td-not-a-regular-vm": {"allowed_regular_vms": ["vm"]}}


@pytest.fixture
def vm_stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path) -> PolicyStack:
    image = work_dir / "image.raw"
    image.write_bytes(b"\0" * (1 << 20))
    stack = make_stack(program("policy_vm_from_options"))
    return PolicyStack(stack, {"prefix": e2e_id, "work": str(work_dir), "image": str(image),
                               "sha256": hashlib.sha256(image.read_bytes()).hexdigest()})


def assert_passes(result: Result) -> None:
    assert result.returncode == 0, result.output
    assert f"✅ {PACK}@v0.1.0" in result.output, result.output
    assert violations(result.output) == [], result.output


def assert_fails_with(result: Result, policy: str, resource: str, *texts: str) -> Violation:
    assert result.returncode != 0, result.output
    found = violations(result.output)
    assert [(v.level, v.policy) for v in found] == [("mandatory", policy)], result.output
    assert found[0].resource == resource, found
    for text in texts:
        assert text in found[0].message, found[0].message
    return found[0]


def test_regular_vm_stacks_pass_fail_and_warn_by_rule_and_config(vm_stack: PolicyStack,
                                                                 work_dir: Path) -> None:
    vm = "pulumi-python:dynamic/tdx:TrustDomain: vm"
    # compliant: a regular VM the site allows, a verified image, nothing left open
    assert_passes(vm_stack.preview(ALLOW_VM))
    # the same stack without the site's allowance: config changes the outcome
    assert_fails_with(vm_stack.preview(), "td-not-a-regular-vm", vm,
                      "TrustDomain 'vm'", ": tdx is false")
    # a base image without a checksum
    assert_fails_with(vm_stack.preview(ALLOW_VM, sha256=None), "base-image-checksum",
                      "pulumi-python:dynamic/tdx:BaseImage: base",
                      "BaseImage 'base'", ": sha256 is not set")
    # a template that opens VNC
    template = work_dir / "vnc.xml.j2"
    builtin = REPO_ROOT / "provider" / "tdx_provider" / "guest" / "templates" / "regular_vm.xml.j2"
    template.write_text(builtin.read_text().replace(
        "  </devices>", "    <graphics type='vnc' port='-1' listen='0.0.0.0'/>\n  </devices>"))
    assert_fails_with(vm_stack.preview(ALLOW_VM, vm={"template": str(template)}),
                      "domain-no-remote-console", vm, "TrustDomain 'vm'",
                      f": template '{template}'", "<graphics type='vnc'")
    # storage outside the site's pools: the pool, and each volume in it
    outside = vm_stack.preview({**ALLOW_VM,
                                "storage-in-allowed-pools": {"allowed_pools": ["tdx"]}})
    assert outside.returncode != 0, outside.output
    found = {v.resource: v for v in violations(outside.output)}
    assert {(v.level, v.policy) for v in found.values()} == {
        ("mandatory", "storage-in-allowed-pools")}
    prefix = "pulumi-python:dynamic/tdx:"
    assert sorted(found) == [f"{prefix}BaseImage: base", f"{prefix}Overlay: disk",
                             f"{prefix}Pool: pool"]
    assert "Pool 'pool'" in found[f"{prefix}Pool: pool"].message
    assert ": name '" in found[f"{prefix}Pool: pool"].message
    assert ": pool '" in found[f"{prefix}Overlay: disk"].message
    assert all("not one of the rule's allowed_pools (tdx)" in v.message for v in found.values())


def test_an_open_serial_console_warns_without_failing(vm_stack: PolicyStack,
                                                      work_dir: Path) -> None:
    kernel = vm_stack.base["image"]  # checked for existence only: nothing boots at preview
    result = vm_stack.preview(ALLOW_VM, vm={
        "kernel": kernel, "cmdline": "root=/dev/vda console=ttyS0",
        "console_log": str(work_dir / "console.log")})
    assert result.returncode == 0, result.output
    found = violations(result.output)
    assert {(v.level, v.policy) for v in found} == {("advisory", "domain-serial-console-quiet")}
    messages = " | ".join(v.message for v in found)
    assert ": console_log writes the guest's serial console" in messages
    assert ": cmdline puts the kernel console on ttyS0" in messages
    assert all("TrustDomain 'vm'" in v.message for v in found) and len(found) == 2


# --- trust domains: the preview stops on this host's TDX check, after the policy ran ---------

@pytest.fixture
def firmware_a(work_dir: Path) -> tuple[Path, str]:
    image = tdvf.Layout().build()
    path = work_dir / "OVMF.inteltdx.a.fd"
    path.write_bytes(image)
    return path, tdvf.expected(image, tdvf.Layout().sections, two_pass=False)


@pytest.fixture
def td_stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
             firmware_a: tuple[Path, str]) -> PolicyStack:
    stack = make_stack(program("policy_td_from_options"),
                       extra_env={"PULUMI_TDX_HOST_ROOT": str(TDX_READY_ROOT)})
    return PolicyStack(stack, {"prefix": e2e_id, "work": str(work_dir),
                               "uri": f"test://{FIXTURE_HOST}",
                               "firmware": str(firmware_a[0])})


def assert_only_the_host_stops_it(result: Result) -> None:
    """The preview fails on this host's TDX readiness and on nothing about the inputs."""
    assert result.returncode != 0
    assert re.findall(r"has a problem: (\w+):", result.output) and set(
        re.findall(r"has a problem: (\w+):", result.output)) == {"tdx"}, result.output


TD = "pulumi-python:dynamic/tdx:TrustDomain: td"


def td_violation(result: Result, policy: str, *texts: str) -> Violation:
    assert_only_the_host_stops_it(result)
    found = violations(result.output)
    assert [(v.level, v.policy) for v in found] == [("mandatory", policy)], result.output
    assert found[0].resource == TD and "TrustDomain 'td'" in found[0].message
    for text in texts:
        assert text in found[0].message, found[0].message
    return found[0]


def test_trust_domain_rules_report_through_the_cli(td_stack: PolicyStack,
                                                   firmware_a: tuple[Path, str]) -> None:
    pinned = {"td-expected-mrtd": {"pinned_mrtd": {"td": firmware_a[1]},
                                   "allowed_firmware": [str(firmware_a[0])]}}
    compliant = td_stack.preview(pinned)
    assert_only_the_host_stops_it(compliant)
    assert f"✅ {PACK}@v0.1.0" in compliant.output and violations(compliant.output) == []

    td_violation(td_stack.preview(pinned, td={"debug": True}), "td-debug-off", ": debug is true")
    td_violation(td_stack.preview(pinned, td={"sept_ve_disable": False}), "td-sept-ve-disabled",
                 ": sept_ve_disable is false")
    gpu = {"gpus": ["3b:00.0"]}
    td_violation(td_stack.preview(pinned, td=gpu), "td-gpus-in-cc-mode",
                 ": gpus 0000:3b:00.0 not known to be in confidential-computing mode")
    in_cc_mode = td_stack.preview(
        {**pinned, "td-gpus-in-cc-mode": {"cc_mode_gpus": ["0000:3b:00.0"]}}, td=gpu)
    assert_only_the_host_stops_it(in_cc_mode)
    assert violations(in_cc_mode.output) == [], in_cc_mode.output


def test_a_firmware_change_that_moves_the_mrtd_fails_with_old_and_new_values(
    td_stack: PolicyStack, firmware_a: tuple[Path, str], work_dir: Path
) -> None:
    layout = tdvf.Layout()
    image = bytearray(layout.build())
    image[0x2000] ^= 0xFF  # one byte of the measured boot firmware volume
    firmware_b = work_dir / "OVMF.inteltdx.b.fd"
    firmware_b.write_bytes(bytes(image))
    mrtd_b = tdvf.expected(bytes(image), layout.sections, two_pass=False)
    assert mrtd_b != firmware_a[1]

    config = {"td-expected-mrtd": {"pinned_mrtd": {"td": firmware_a[1]}}}
    assert violations(td_stack.preview(config).output) == []
    drifted = td_stack.preview(config, firmware=str(firmware_b))
    td_violation(drifted, "td-expected-mrtd", ": mrtd drifted from the pinned value",
                 f"pinned_mrtd['td'] is {firmware_a[1]}", f"this preview computes {mrtd_b}",
                 f"from firmware '{firmware_b}'")


def test_up_stops_a_violating_resource_before_it_is_created(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    import libvirt

    from tdx_provider.connection import connect

    stack = make_stack(program("policy_vm_without_disk"))
    (stack.project_dir / "options.json").write_text(
        json.dumps({"prefix": e2e_id, "work": str(work_dir)}))
    result = stack.run("up", "--yes", "--skip-preview", "--policy-pack", str(POLICY_DIR),
                       check=False)
    assert result.returncode != 0, result.output
    assert [(v.level, v.policy) for v in violations(result.output)] == [
        ("mandatory", "td-not-a-regular-vm")], result.output
    # the engine never asked the provider to create it (without the pack, this up gets to
    # the provider, whose start fails on the missing disk: "TrustDomain 'vm': create failed")
    assert "TrustDomain vm creating" not in result.output, result.output
    assert "create failed" not in result.output, result.output
    assert not [r for r in stack.resources() if r["type"].endswith(":TrustDomain")]
    with connect("qemu:///system") as conn, pytest.raises(libvirt.libvirtError):
        conn.lookupByName(f"{e2e_id}-vm")

"""A cloud-init seed through the real Pulumi CLI: up, the guest shows the declared host name and
key, a changed host name replaces the seed and the domain (shown at preview), user_data stays a
secret in preview and state, destroy leaves nothing."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tdx_provider.connection import connect
from tdx_provider.storage.pool import volume_names
from tests.support import guest as tg
from tests.support.hosts import LibvirtHost, by_name
from tests.support.programs import program
from tests.support.stack import Stack, steps

pytestmark = pytest.mark.e2e
BOOT_TIMEOUT = 90.0
SECRET_MARK = "s3cr3t-token-for-the-seed-test"


def public_key(directory: Path) -> str:
    path = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e@seed", "-f",
                    str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def ours(uri: str, prefix: str) -> dict[str, list[str]]:
    with connect(uri) as conn:
        pools = [p for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)]
        volumes = [f"{p.name()}/{v}" for p in pools if p.isActive() for v in volume_names(p)]
        domains = [d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
    return {"pools": [p.name() for p in pools], "volumes": sorted(volumes), "domains": domains}


def test_seed_up_change_hostname_and_destroy(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    seed_life(make_stack(program("seeded_vm")), e2e_id, work_dir, guest, libvirt_host,
              seed_name=None)


def test_a_seed_with_a_fixed_name_is_replaced_after_the_domain_that_uses_it(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
) -> None:
    # delete-before-replace: the engine deletes the domain that uses the seed first (else the
    # seed's delete would be refused while the old domain still names it)
    seed_life(make_stack(program("seeded_vm")), e2e_id, work_dir, guest, by_name("debian"),
              seed_name=f"{e2e_id}-seed")


def seed_life(stack: Stack, e2e_id: str, work_dir: Path, guest: tg.TestGuest,
              libvirt_host: LibvirtHost, seed_name: str | None) -> None:
    key = public_key(work_dir)
    kind, blob, _ = key.split()
    console = work_dir / "console.log"
    if seed_name is not None:
        stack.config({"seedName": seed_name})
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": libvirt_host.uri,
                  "image": str(guest.base_image), "kernel": str(guest.kernel),
                  "initrd": str(guest.initrd), "cmdline": tg.CMDLINE, "hostname": "seeded-a",
                  "key": key})
    stack.run("config", "set", "--secret", "userData", f"#cloud-config\nbootcmd:\n"
              f"  - [sh, -c, 'echo {SECRET_MARK}']\n")

    first = stack.preview()
    assert SECRET_MARK not in first.output
    assert re.search(r"user_data\s*: \[secret\]", first.stdout), first.stdout

    stack.up()
    tg.wait_for_text(console, f"{tg.HOSTNAME_MARKER} seeded-a", BOOT_TIMEOUT)
    tg.wait_for_text(console, f"{tg.SSH_KEY_MARKER} {kind} {blob}", BOOT_TIMEOUT)
    text = console.read_text(errors="replace")
    outputs = stack.outputs()
    assert f"{tg.SEED_INSTANCE_MARKER} {outputs['instance_id']}" in text
    assert outputs["seed_path"].startswith(f"{work_dir}/pool/{seed_name or 'seed-'}")
    # the secret is nowhere in plain text: not in state, not in the stack's outputs
    exported = stack.run("stack", "export").stdout
    assert SECRET_MARK not in exported
    raw = next(r for r in json.loads(exported)["deployment"]["resources"]
               if r["urn"].endswith("::raw"))
    assert "ciphertext" in json.dumps(raw["outputs"]["user_data"])
    assert all(op == "same" for op in steps(stack.preview_json()).values())

    # a new host name: a new seed (new instance-id), and the domain that uses it replaced
    stack.config({"hostname": "seeded-b"})
    changed = stack.preview()
    print(changed.stdout)
    plan = steps(stack.preview_json())
    assert plan["seed"] == "replace" and plan["td"] == "replace"
    assert {op for name, op in plan.items() if name not in ("seed", "td")} <= {"same"}
    assert re.search(r'~ hostname\s*: "seeded-a" => "seeded-b"', changed.stdout)
    assert re.search(r"~ seed\s*: \{", changed.stdout)
    assert re.search(r"~ instance_id: \"iid-ptdx-\w+\" => \"iid-ptdx-\w+\"", changed.stdout)
    old_path = outputs["seed_path"]

    stack.up()
    tg.wait_for_text(console, f"{tg.HOSTNAME_MARKER} seeded-b", BOOT_TIMEOUT)
    new = stack.outputs()
    assert new["instance_id"] != outputs["instance_id"]
    assert f"{tg.SEED_INSTANCE_MARKER} {new['instance_id']}" in console.read_text()
    left = ours(libvirt_host.uri, e2e_id)["volumes"]
    if seed_name is None:  # the old seed went with the old domain
        assert f"{e2e_id}/{Path(old_path).name}" not in left
    assert f"{e2e_id}/{Path(new['seed_path']).name}" in left

    stack.destroy()
    assert ours(libvirt_host.uri, e2e_id) == {"pools": [], "volumes": [], "domains": []}

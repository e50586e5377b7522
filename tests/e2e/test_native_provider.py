"""The native provider plugin (``pulumi-resource-tdx``) through the real Pulumi CLI: a Python
program of ``pulumi_tdx.native`` resources goes up, previews a change per property, updates and
replaces, refreshes a drift, and goes down; the schema the CLI reads is the generated one;
failures reach the user as one line. The host comes from the provider's ``tdx:uri`` config
(no resource names a uri), on each libvirt host of the matrix."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tdx_provider.connection import connect
from tdx_provider.native import schema
from tdx_provider.storage.pool import volume_names
from tests.e2e.test_lifecycle import libvirt_names
from tests.support import guest as tg
from tests.support.hosts import LibvirtHost
from tests.support.programs import program
from tests.support.stack import Stack, assert_no_traceback_of_ours, pulumi_env, steps

pytestmark = pytest.mark.e2e
BOOT_TIMEOUT = 90.0

PROGRAM = program("native_vm")  # tests/fixtures/programs/native_vm


def native_resources(stack: Stack) -> dict[str, dict[str, Any]]:
    """name -> resource of the ``tdx:index:*`` resources in state."""
    state = json.loads(stack.run("stack", "export", "--show-secrets").stdout)
    return {r["urn"].rsplit("::", 1)[-1]: r for r in state["deployment"].get("resources") or []
            if r["type"].startswith("tdx:index:")}


def detailed_diff(plan: dict[str, Any], name: str) -> dict[str, str]:
    """property -> diff kind of one resource's step in a ``pulumi preview --json`` plan."""
    for step in plan.get("steps", []):
        if step.get("urn", "").endswith(f"::{name}") and step.get("detailedDiff"):
            return {k: v["kind"] for k, v in step["detailedDiff"].items()}
    return {}


@pytest.fixture
def stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
          guest: tg.TestGuest, libvirt_host: LibvirtHost) -> Stack:
    s = make_stack(PROGRAM, project="ptdx-e2e-native")
    s.config({
        "tdx:uri": libvirt_host.uri, "prefix": e2e_id, "work": str(work_dir),
        "kernel": str(guest.kernel), "initrd": str(guest.initrd),
        "image": str(guest.base_image), "cmdline": tg.CMDLINE,
        "sha256": hashlib.sha256(guest.base_image.read_bytes()).hexdigest(),
    })
    return s


def test_native_stack_goes_up_changes_refreshes_and_goes_down(
        stack: Stack, e2e_id: str, work_dir: Path, libvirt_host: LibvirtHost) -> None:
    uri = libvirt_host.uri
    plan = steps(stack.preview_json())
    assert {plan[n] for n in ("pool", "base", "disk", "td")} == {"create"}
    assert libvirt_names(uri, e2e_id) == {"domains": [], "pools": [], "volumes": []}

    up = stack.up()
    assert "using pulumi-resource-tdx from $PATH" in up.output  # the venv's plugin, no download
    outputs = stack.outputs()
    assert libvirt_names(uri, e2e_id) == {"domains": [f"{e2e_id}-td"], "pools": [e2e_id],
                                          "volumes": sorted([f"{e2e_id}-base",
                                                             f"{e2e_id}-disk"])}
    assert outputs["state"] == "running"
    assert outputs["backing_path"] == f"{work_dir}/pool/{e2e_id}-base"
    resources = native_resources(stack)
    assert {r["type"] for r in resources.values()} == {
        "tdx:index:Pool", "tdx:index:BaseImage", "tdx:index:Overlay", "tdx:index:TrustDomain"}
    assert resources["td"]["outputs"]["memoryMib"] == 256  # camelCase in state
    assert resources["td"]["outputs"]["uri"] == uri  # the provider's
    assert resources["td"]["inputs"]["__owner"]["stack"] == "test"  # kept, not displayed
    # what the schema calls required (typed SDKs: no optional) is in every resource's outputs
    resource_schemas = schema.build()["resources"]
    for name, resource in resources.items():
        required = resource_schemas[resource["type"]]["required"]
        assert all(resource["outputs"].get(k) is not None for k in required), (name, required)
    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    assert tg.read_banner(outputs["ssh_port"], 30) == tg.SSH_BANNER

    stack.preview("--expect-no-changes")

    # an in-place change and a replacing one, each named by property in the plan
    stack.config({"timeout": 20})
    plan_json = stack.preview_json()
    assert steps(plan_json)["td"] == "update"
    assert detailed_diff(plan_json, "td") == {"shutdownTimeout": "update"}
    stack.up()
    stack.config({"memory": 320})
    plan_json = stack.preview_json()
    assert steps(plan_json)["td"] == "replace"
    assert detailed_diff(plan_json, "td") == {"memoryMib": "update-replace"}
    stack.up()
    with connect(uri) as conn:
        assert conn.lookupByName(f"{e2e_id}-td").maxMemory() == 320 * 1024
    assert stack.outputs()["disk_key"] == outputs["disk_key"]

    # a drift: refresh reads it into the inputs, preview shows it, up converges
    with connect(uri) as conn:
        conn.storagePoolLookupByName(e2e_id).setAutostart(1)
    stack.refresh()
    preview = stack.preview()
    assert "~ autostart: true => false" in preview.output, preview.output
    stack.up()
    with connect(uri) as conn:
        assert not conn.storagePoolLookupByName(e2e_id).autostart()
    stack.preview("--expect-no-changes")

    # gone out of band: refresh drops it from state, up makes it again
    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    with connect(uri) as conn:
        dom = conn.lookupByName(f"{e2e_id}-td")
        dom.destroy()
        dom.undefine()
    stack.refresh()
    assert "td" not in native_resources(stack)
    (work_dir / "td.log").unlink()  # the new guest's console starts afresh
    stack.up()
    assert libvirt_names(uri, e2e_id)["domains"] == [f"{e2e_id}-td"]

    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    result = stack.destroy()
    assert libvirt_names(uri, e2e_id) == {"domains": [], "pools": [], "volumes": []}
    assert "stopped by ACPI" in result.output  # the engine's line, under the resource
    assert tg.ACPI_POWEROFF_MARKER in (work_dir / "td.log").read_text()



def test_a_preview_shows_the_schemas_properties_and_none_of_the_engines_bookkeeping(
        stack: Stack) -> None:
    """The owner tag and the auto-name flag reach create and state as ``__owner`` and
    ``__autoNamed`` (the engine needs them), which Pulumi never displays: a create's preview
    with every property shown names neither."""
    shown = stack.preview("--diff").output
    assert "+ tdx:index:TrustDomain" in shown and "memoryMib" in shown, shown
    assert not re.search(r"\b(owner|autoNamed|baseCapacity)\b", shown), shown

BAD_PROGRAM = program("native_bad_inputs")  # tests/fixtures/programs/native_bad_inputs


def test_native_failures_are_one_line_naming_resource_and_property(
        make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path) -> None:
    stack = make_stack(BAD_PROGRAM, project="ptdx-e2e-native")
    stack.config({"prefix": e2e_id, "work": str(work_dir), "path": str(work_dir / "pool"),
                  "memory": 32})
    preview = stack.preview(check=False)
    assert preview.returncode != 0
    assert ("tdx:index:TrustDomain resource 'td': property memoryMib value {32} has a problem: "
            "memoryMib: must be at least 64 (got 32)") in preview.output
    # a create the host refuses: another pool already holds the path
    with connect("qemu:///system") as conn:
        other = conn.storagePoolDefineXML(
            f"<pool type='dir'><name>{e2e_id}-other</name><target><path>{work_dir}/pool"
            "</path></target></pool>", 0)
    try:
        stack.config({"memory": 256})
        up = stack.run("up", "--yes", "--skip-preview", "--target",
                       "urn:pulumi:test::ptdx-e2e-native::tdx:index:Pool::pool", check=False)
        assert up.returncode != 0
        lines = [ln for ln in up.output.splitlines() if "Pool 'pool': create failed" in ln]
        assert lines and all(f"{e2e_id}-other" in ln for ln in lines), up.output
        assert_no_traceback_of_ours(up.output)
    finally:
        other.undefine()
    assert libvirt_names("qemu:///system", e2e_id)["pools"] == []


def test_the_cli_reads_the_generated_schema_from_the_plugin(work_dir: Path) -> None:
    plugin = shutil.which("pulumi-resource-tdx")
    assert plugin, "pulumi-resource-tdx is not on PATH: run `make setup`"

    def pulumi(*args: str) -> str:
        proc = subprocess.run(["pulumi", *args], cwd=work_dir, env=pulumi_env(work_dir),
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    printed = pulumi("package", "get-schema", plugin)
    assert json.loads(printed) == json.loads(schema.render())
    (work_dir / "schema.json").write_text(printed)
    pulumi("schema", "check", str(work_dir / "schema.json"))  # Pulumi's own validation


def test_custom_delete_timeout_bounds_the_acpi_wait(stack: Stack, e2e_id: str,
                                                    work_dir: Path) -> None:
    """A guest that ignores ACPI, a 60 s shutdown_timeout and customTimeouts.delete of 6 s: the
    delete forces it off after the 3 s the timeout leaves, and destroy ends well within 60 s."""
    stack.config({"cmdline": f"{tg.CMDLINE} {tg.IGNORE_ACPI_ARG}", "timeout": 60,
                  "delete_timeout": "6s"})
    stack.up()
    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    started = time.monotonic()
    result = stack.destroy()
    elapsed = time.monotonic() - started
    forced = re.search(rf"{e2e_id}-td: forced off \(ACPI timed out\) after ([\d.]+) s",
                       result.output)
    assert forced, result.output
    assert 3 <= float(forced[1]) < 6
    assert elapsed < 30


def test_ctrl_c_ends_a_delete_wait_promptly_and_leaves_nothing_half_made(
        stack: Stack, e2e_id: str, work_dir: Path, libvirt_host: LibvirtHost) -> None:
    """Ctrl-C during the 60 s ACPI wait of a guest that ignores ACPI: Pulumi cancels, the
    provider's Cancel ends the wait as a timeout would (forced off, undefined), and destroy
    returns within seconds; the guest is gone from libvirt and from state, and a second
    destroy removes the rest."""
    stack.config({"cmdline": f"{tg.CMDLINE} {tg.IGNORE_ACPI_ARG}", "timeout": 60})
    stack.up()
    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    proc = subprocess.Popen(["pulumi", "destroy", "--yes", "--skip-preview",
                             "--non-interactive", "--color", "never"],
                            cwd=stack.project_dir, env=stack.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # until the guest's delete has begun its ACPI wait
        seen.append(line)
        if "tdx:index:TrustDomain td deleting" in line:
            break
    time.sleep(2)
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    output = "".join(seen) + proc.communicate(timeout=120)[0]
    assert time.monotonic() - interrupted < 20, output
    assert "^C received; cancelling" in output and "forced off (ACPI timed out)" in output
    assert libvirt_names(libvirt_host.uri, e2e_id)["domains"] == [], output
    assert "td" not in native_resources(stack), output
    stack.destroy()
    assert libvirt_names(libvirt_host.uri, e2e_id) == {"domains": [], "pools": [],
                                                       "volumes": []}


class _SlowImage:
    """Serves one file over HTTP at about 256 KiB/s: an import that takes ~12 s."""

    def __init__(self, path: Path) -> None:
        import http.server
        import threading

        data = path.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for start in range(0, len(data), 64 * 1024):
                        self.wfile.write(data[start:start + 64 * 1024])
                        time.sleep(0.25)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the importer gave up: that is the point

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{path.name}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_custom_create_timeout_stops_a_slow_import_and_leaves_nothing(
        stack: Stack, e2e_id: str, libvirt_host: LibvirtHost, guest: tg.TestGuest) -> None:
    """customTimeouts.create of 3 s on a base image whose download takes ~12 s: up fails within
    seconds naming the timeout, and neither the volume nor a state entry for it is left."""
    slow = _SlowImage(guest.base_image)
    try:
        stack.config({"image": slow.url, "create_timeout": "3s"})
        started = time.monotonic()
        result = stack.up(check=False)
        elapsed = time.monotonic() - started
    finally:
        slow.close()
    assert result.returncode != 0
    assert "create of BaseImage took longer than its timeout" in result.output, result.output
    assert_no_traceback_of_ours(result.output)
    assert elapsed < 60
    assert "base" not in native_resources(stack)
    with connect(libvirt_host.uri) as conn:
        pool = conn.storagePoolLookupByName(e2e_id)
        pool.refresh(0)
        assert f"{e2e_id}-base" not in volume_names(pool)

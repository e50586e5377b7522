"""Bad input fails at `pulumi preview`, names the property, says what is allowed, creates nothing.

Table-driven through the real Pulumi CLI. Every case is one `pulumi preview` of a program that
declares one resource with one bad property (plus, for one case, the valid base image it
depends on). The program reads its resources from ``case.json``, so a handful of project
directories are reused: the table runs on a few workers in parallel and each case is asserted
separately. Baseline cases (the same resources with nothing bad) must preview cleanly: the
failures come from the bad values, not from the scaffolding.

Shared scaffolding made through the engine (not through the stack): one pool, the test guest's
base image and one overlay, so that cases can point at real volumes. After every preview,
libvirt holds exactly that scaffolding under our prefix and no new file appeared.

The table runs against each libvirt host of the matrix (``debian``, ``upstream``). The upstream
host is another machine for the provider (``connection.is_local_uri``): files it would read
(kernel, initrd, firmware) are looked up there through its libvirt (``storage/host_files``), so
those cases fail the same way; the console log's directory is not checked there (the case
previews cleanly and would fail when libvirt starts the guest).

The property-based tests of the BDF parser and of name validation live in
``tests/unit/test_validation.py`` (``test_pci_address_*``/``test_name_*`` with hypothesis).
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tdx_provider.connection import connect, is_local_uri
from tdx_provider.metadata import Owner
from tdx_provider.storage import pool, volume
from tests.e2e.conftest import E2E_PREFIX, E2E_ROOT
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed
from tests.support.hosts import LibvirtHost
from tests.support.programs import program
from tests.support.stack import REPO_ROOT, Result, Stack, assert_no_traceback_of_ours

pytestmark = pytest.mark.e2e
FIXTURE_HOST = REPO_ROOT / "tests" / "fixtures" / "testhost.xml"
WORKERS = 3
SCAFFOLD_OWNER = Owner("tests", "e2e", "bad-input-scaffold")

# --- templates that do not render or render invalid XML ---------------------------------------

TEMPLATES = {
    "syntax.xml.j2": "<domain>{% if %}</domain>\n",
    "undefined.xml.j2": "<domain type='qemu'><name>{{ no_such_variable }}</name></domain>\n",
    "not-xml.xml.j2": "<domain type='qemu'><name>{{ name }}</nam></domain>\n",
    "wrong-root.xml.j2": "<network><name>{{ name }}</name></network>\n",
}


def schema_invalid_template() -> str:
    """Our own VM template with one value libvirt's RelaxNG schema does not allow."""
    text = (REPO_ROOT / "provider/tdx_provider/guest/templates/regular_vm.xml.j2").read_text()
    bad = text.replace("<vcpu placement='static'>", "<vcpu placement='sideways'>")
    assert bad != text
    return bad


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    """Run-time values the cases are built from."""

    prefix: str
    uri: str
    work: Path
    guest: tg.TestGuest
    pool: str
    base_path: str
    base_capacity: int
    base_sha256: str
    overlay_path: str
    host_mib: int
    host_cpus: int
    firmware: str

    def template(self, name: str) -> str:
        return str(self.work / "templates" / name)


def pool_args(c: Ctx) -> dict[str, Any]:
    return {"name": f"{c.prefix}-new-pool", "path": str(c.work / "new-pool"), "uri": c.uri}


def base_args(c: Ctx) -> dict[str, Any]:
    return {"pool": c.pool, "source": str(c.guest.base_image), "name": f"{c.prefix}-new-base",
            "sha256": c.base_sha256, "uri": c.uri}


def overlay_args(c: Ctx) -> dict[str, Any]:
    return {"pool": c.pool, "base_image": c.base_path, "name": f"{c.prefix}-new-disk",
            "uri": c.uri}


def td_args(c: Ctx) -> dict[str, Any]:
    return {
        "overlay": c.overlay_path, "name": f"{c.prefix}-td", "memory_mib": 128, "vcpus": 1,
        "tdx": False, "domain_type": "qemu", "vsock": False, "network": None,
        "kernel": str(c.guest.kernel), "initrd": str(c.guest.initrd),
        # free text with XML metacharacters is escaped, never parsed as elements
        "cmdline": tg.CMDLINE + " x='</cmdline><injected/>&amp;' \"<devices/>\"",
        "uri": c.uri,
    }


BASE_ARGS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "Pool": pool_args, "BaseImage": base_args, "Overlay": overlay_args, "TrustDomain": td_args,
}


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    bad: Callable[[Ctx], dict[str, Any]]
    """Overrides of the kind's valid arguments (the one bad property)."""
    prop: str | None
    """The property the error must name (None: a baseline that must preview cleanly)."""
    allowed: str = ""
    """Regex the message must match: what is allowed (or, for host limits, the limit)."""
    before: Callable[[Ctx], list[dict[str, Any]]] = field(default=lambda c: [])
    """Valid resources declared before the bad one (referenced as "@name")."""
    remote: tuple[str | None, str] | None = None
    """(prop, allowed) instead, on a host that is not this machine's libvirtd."""

    def expected(self, uri: str) -> tuple[str | None, str]:
        if self.remote is not None and not is_local_uri(uri):
            return self.remote
        return self.prop, self.allowed

    def resources(self, ctx: Ctx) -> list[dict[str, Any]]:
        args = {**BASE_ARGS[self.kind](ctx), **self.bad(ctx)}
        return [*self.before(ctx), {"kind": self.kind, "name": "bad", "args": args}]


NAME_RULE = r"may only contain letters, digits, '\.', '_' and '-'"
ABSOLUTE = r"must be an absolute path"
SCHEMES = r"use one of qemu, .*test"


def new_base_in_this_update(c: Ctx) -> list[dict[str, Any]]:
    return [{"kind": "BaseImage", "name": "fresh-base",
             "args": {**base_args(c), "name": f"{c.prefix}-fresh-base"}}]


CASES = [
    # baselines: the scaffolding itself is fine
    Case("baseline-pool", "Pool", lambda c: {}, None),
    Case("baseline-base-image", "BaseImage", lambda c: {}, None),
    Case("baseline-overlay", "Overlay", lambda c: {"capacity": c.base_capacity * 2}, None),
    Case("baseline-trust-domain", "TrustDomain", lambda c: {}, None),
    # names
    Case("td-name-slash", "TrustDomain", lambda c: {"name": f"{c.prefix}/td"}, "name", NAME_RULE),
    Case("td-name-dotdot", "TrustDomain", lambda c: {"name": f"{c.prefix}..td"}, "name",
         r"must not contain '\.\.'"),
    Case("td-name-space", "TrustDomain", lambda c: {"name": f"{c.prefix} td"}, "name", NAME_RULE),
    Case("td-name-xml-metacharacters", "TrustDomain",
         lambda c: {"name": f"{c.prefix}</name><injected/>&'\""}, "name", NAME_RULE),
    Case("td-name-too-long", "TrustDomain", lambda c: {"name": c.prefix + "x" * 64}, "name",
         r"must be at most 63 characters"),
    Case("pool-name-slash", "Pool", lambda c: {"name": f"{c.prefix}/../etc"}, "name",
         r"must not contain '\.\.'|" + NAME_RULE),
    Case("pool-name-xml", "Pool", lambda c: {"name": f"{c.prefix}<pool>"}, "name", NAME_RULE),
    Case("base-name-dotdot", "BaseImage", lambda c: {"name": ".."}, "name",
         r"must not contain '\.\.'"),
    Case("overlay-name-space", "Overlay", lambda c: {"name": f"{c.prefix} disk"}, "name",
         NAME_RULE),
    Case("overlay-name-too-long", "Overlay", lambda c: {"name": "d" * 64}, "name",
         r"at most 63 characters"),
    # local paths
    Case("pool-path-relative", "Pool", lambda c: {"path": "pools/here"}, "path", ABSOLUTE),
    Case("base-source-relative", "BaseImage", lambda c: {"source": "images/base.qcow2"},
         "source", ABSOLUTE),
    Case("base-source-missing", "BaseImage",
         lambda c: {"source": str(c.work / "no-such.qcow2")}, "source", r"does not exist"),
    Case("base-source-unknown-scheme", "BaseImage",
         lambda c: {"source": "ftp://example.invalid/base.qcow2"}, "source",
         r"use a path, file:// or http\(s\)://"),
    Case("td-kernel-relative", "TrustDomain", lambda c: {"kernel": "vmlinuz"}, "kernel",
         ABSOLUTE),
    # missing files on the libvirt host: refused here for this machine's libvirtd, asked of
    # another host's libvirt; a console log's directory is never looked up on another host
    # (remote=(None, ""): the preview passes there)
    Case("td-kernel-missing", "TrustDomain", lambda c: {"kernel": str(c.work / "no-vmlinuz")},
         "kernel", r"file .* does not exist"),
    Case("td-initrd-missing", "TrustDomain", lambda c: {"initrd": str(c.work / "no-initrd")},
         "initrd", r"file .* does not exist"),
    Case("td-firmware-relative", "TrustDomain", lambda c: {"firmware": "OVMF.fd"}, "firmware",
         ABSOLUTE),
    Case("td-firmware-missing", "TrustDomain", lambda c: {"firmware": str(c.work / "no-ovmf")},
         "firmware", r"file .* does not exist"),
    Case("td-console-log-directory-missing", "TrustDomain",
         lambda c: {"console_log": str(c.work / "no-such-dir" / "console.log")},
         "console_log", r"directory .* does not exist", remote=(None, "")),
    Case("td-template-relative", "TrustDomain", lambda c: {"template": "td.xml.j2"}, "template",
         ABSOLUTE),
    Case("td-template-missing", "TrustDomain",
         lambda c: {"template": c.template("no-such.xml.j2")}, "template",
         r"file .* does not exist"),
    Case("td-overlay-relative", "TrustDomain", lambda c: {"overlay": "disk.qcow2"}, "overlay",
         ABSOLUTE),
    # memory and vCPUs
    Case("memory-zero", "TrustDomain", lambda c: {"memory_mib": 0}, "memory_mib",
         r"must be at least 64 \(got 0\)"),
    Case("memory-negative", "TrustDomain", lambda c: {"memory_mib": -512}, "memory_mib",
         r"must be at least 64"),
    Case("memory-fraction", "TrustDomain", lambda c: {"memory_mib": 256.5}, "memory_mib",
         r"must be a whole number"),
    Case("memory-text", "TrustDomain", lambda c: {"memory_mib": "lots"}, "memory_mib",
         r"must be an integer"),
    Case("memory-above-host", "TrustDomain", lambda c: {"memory_mib": c.host_mib + 1},
         "memory_mib", r"is more than the host's \d+ MiB"),
    Case("vcpus-zero", "TrustDomain", lambda c: {"vcpus": 0}, "vcpus",
         r"must be at least 1 \(got 0\)"),
    Case("vcpus-negative", "TrustDomain", lambda c: {"vcpus": -2}, "vcpus", r"must be at least 1"),
    Case("vcpus-fraction", "TrustDomain", lambda c: {"vcpus": 1.5}, "vcpus",
         r"must be a whole number"),
    Case("vcpus-above-host", "TrustDomain", lambda c: {"vcpus": c.host_cpus + 1}, "vcpus",
         r"is more than the host's \d+ CPUs"),
    # GPUs
    Case("gpu-bdf-malformed", "TrustDomain", lambda c: {"gpus": ["0000:3b:00"]}, "gpus[0]",
         r"is not a PCI address of the form DDDD:BB:SS\.F"),
    Case("gpu-bdf-slot-out-of-range", "TrustDomain", lambda c: {"gpus": ["0000:00:20.0"]},
         "gpus[0]", r"PCI slot must be 00-1f"),
    Case("gpu-bdf-duplicate", "TrustDomain",
         lambda c: {"gpus": ["0000:00:01.0", "00:01.0"]}, "gpus[1]", r"is listed twice"),
    Case("gpu-bdf-absent-on-this-host", "TrustDomain", lambda c: {"gpus": ["0000:ff:1f.7"]},
         "gpus[0]", r"no PCI device 0000:ff:1f\.7 on this host \(.*nodedev-list"),
    Case("gpu-bdf-absent-on-fixture-host", "TrustDomain",
         lambda c: {"gpus": ["0000:3b:00.0", "0000:99:00.0"], "uri": f"test://{FIXTURE_HOST}"},
         "gpus[1]", r"no PCI device 0000:99:00\.0 .*GPUs libvirt lists here: 0000:3b:00\.0, "
         r"0000:86:00\.0"),
    # SSH forward
    Case("ssh-port-negative", "TrustDomain", lambda c: {"ssh_host_port": -1}, "ssh_host_port",
         r"must be at least 0"),
    Case("ssh-port-too-high", "TrustDomain", lambda c: {"ssh_host_port": 65536},
         "ssh_host_port", r"must be at most 65535"),
    # URIs
    Case("td-uri-xen", "TrustDomain", lambda c: {"uri": "xen:///system"}, "uri", SCHEMES),
    Case("pool-uri-vbox", "Pool", lambda c: {"uri": "vbox:///session"}, "uri", SCHEMES),
    Case("base-uri-not-a-uri", "BaseImage", lambda c: {"uri": "qemu"}, "uri",
         r"is not a libvirt URI such as 'qemu:///system'"),
    # templates
    Case("template-syntax-error", "TrustDomain",
         lambda c: {"template": c.template("syntax.xml.j2")}, "template",
         r"does not render \(line 1\)"),
    Case("template-undefined-variable", "TrustDomain",
         lambda c: {"template": c.template("undefined.xml.j2")}, "template",
         r"does not render.*no_such_variable"),
    Case("template-not-xml", "TrustDomain", lambda c: {"template": c.template("not-xml.xml.j2")},
         "template", r"renders XML that does not parse"),
    Case("template-wrong-root", "TrustDomain",
         lambda c: {"template": c.template("wrong-root.xml.j2")}, "template",
         r"renders <network>, expected <domain>"),
    Case("template-schema-invalid", "TrustDomain",
         lambda c: {"template": c.template("schema.xml.j2")}, "template",
         r"libvirt's domain schema rejects"),
    # TDX on this host (no TDX here: libvirt 9.0, no kvm_intel tdx)
    Case("tdx-on-a-host-without-tdx", "TrustDomain",
         lambda c: {"tdx": True, "domain_type": "kvm", "firmware": c.firmware}, "tdx",
         r"this host cannot run TDX trust domains: .*\(set tdx=False for a regular VM\)"),
    Case("tdx-with-tcg", "TrustDomain", lambda c: {"tdx": True, "firmware": c.firmware},
         "domain_type", r"a trust domain needs 'kvm'"),
    # overlays
    Case("overlay-below-existing-base", "Overlay", lambda c: {"capacity": 1 << 20}, "capacity",
         r"1048576 bytes is below the base image's size \d+ bytes"),
    Case("overlay-below-base-of-this-update", "Overlay",
         lambda c: {"base_image": "@fresh-base", "capacity": 1 << 20}, "capacity",
         r"1048576 bytes is below the base image's size \d+ bytes",
         before=new_base_in_this_update),
    Case("overlay-capacity-zero", "Overlay", lambda c: {"capacity": 0}, "capacity",
         r"must be at least 1"),
    # base images
    Case("base-sha256-mismatch", "BaseImage", lambda c: {"sha256": "0" * 64}, "sha256",
         r"has sha256 [0-9a-f]{64}, expected 0{64}"),
    Case("base-sha256-malformed", "BaseImage", lambda c: {"sha256": "abc123"}, "sha256",
         r"must be 64 hexadecimal characters"),
    Case("base-format-unknown", "BaseImage", lambda c: {"format": "vmdk"}, "format",
         r"must be 'qcow2' or 'raw'"),
]


# --- running the table ----------------------------------------------------------------------


@dataclass
class Outcome:
    result: Result
    resources: list[dict[str, Any]]
    libvirt_before: dict[str, list[str]]
    libvirt_after: dict[str, list[str]]
    files_before: list[str]
    files_after: list[str]


def libvirt_objects(uri: str, prefix: str) -> dict[str, list[str]]:
    with connect(uri) as conn:
        pools = [p for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)]
        volumes = []
        for p in pools:
            if p.isActive():
                volumes += [f"{p.name()}/{v}" for v in pool.volume_names(p)]
        return {
            "domains": sorted(d.name() for d in conn.listAllDomains(0)
                              if d.name().startswith(prefix)),
            "pools": sorted(p.name() for p in pools),
            "volumes": sorted(volumes),
        }


def files_outside_stacks(work: Path) -> list[str]:
    """Every path under the work dir except the Pulumi project/state dirs of the workers."""
    return sorted(
        str(p.relative_to(work)) for p in work.rglob("*")
        if not p.relative_to(work).parts[0].startswith("stack")
    )


@pytest.fixture(scope="module", params=["dynamic", "native"])
def table(request: pytest.FixtureRequest, libvirt_host: LibvirtHost,
          guest: tg.TestGuest) -> Iterator[dict[str, Outcome]]:
    """The outcome of every case through one adapter: the dynamic providers or the native
    provider plugin (the same engine; the answers must be the same)."""
    uri = libvirt_host.uri
    prefix = f"{E2E_PREFIX}{uuid.uuid4().hex[:6]}"
    work = E2E_ROOT / prefix
    (work / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (work / "templates" / name).write_text(text)
    (work / "templates" / "schema.xml.j2").write_text(schema_invalid_template())
    firmware = work / "OVMF.fd"
    firmware.write_bytes(b"\0" * 4096)  # any file: preview checks the path, not the content
    stacks: list[Stack] = []
    try:
        with connect(uri) as conn:
            pool_name = f"{prefix}-pool"
            pool.ensure(conn, pool_name, str(work / "pool"), autostart=False)
            base, digest = volume.import_base(conn, pool_name, f"{prefix}-base",
                                              str(guest.base_image), SCAFFOLD_OWNER)
            overlay = volume.create_overlay(conn, pool_name, f"{prefix}-disk", base.path,
                                            SCAFFOLD_OWNER)
            _model, host_mib, host_cpus, *_ = conn.getInfo()
        ctx = Ctx(prefix=prefix, uri=uri, work=work, guest=guest, pool=pool_name,
                  base_path=base.path, base_capacity=base.capacity, base_sha256=digest,
                  overlay_path=overlay.path,
                  host_mib=host_mib, host_cpus=host_cpus, firmware=str(firmware))
        assert digest == hashlib.sha256(guest.base_image.read_bytes()).hexdigest()
        case_program = program("resources_from_case_json")
        stacks = [Stack(work / f"stack{i}", case_program) for i in range(WORKERS)]
        for stack in stacks:
            stack.config({"adapter": request.param})
        idle: queue.Queue[Stack] = queue.Queue()
        for stack in stacks:
            idle.put(stack)

        def run(case: Case) -> tuple[str, Outcome]:
            stack = idle.get()
            try:
                resources = case.resources(ctx)
                (stack.project_dir / "case.json").write_text(json.dumps(resources))
                before = libvirt_objects(uri, prefix)
                files_before = files_outside_stacks(work)
                result = stack.preview(check=False)
                return case.id, Outcome(result, resources, before, libvirt_objects(uri, prefix),
                                        files_before, files_outside_stacks(work))
            finally:
                idle.put(stack)

        with ThreadPoolExecutor(max_workers=WORKERS) as executor:
            outcomes = dict(executor.map(run, CASES))
        yield outcomes
    finally:
        for stack in stacks:
            stack.remove()
        with connect(uri) as conn:
            remove_prefixed(conn, prefix)
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_at_preview_naming_the_property_and_creates_nothing(
    table: dict[str, Outcome], case: Case, libvirt_host: LibvirtHost
) -> None:
    outcome = table[case.id]
    prop, allowed = case.expected(libvirt_host.uri)
    output = outcome.result.output
    shown = f"case {case.id}: {json.dumps(outcome.resources)}\n{output}"
    assert_no_traceback_of_ours(output, shown)  # a clear message, not a stack dump
    if prop is None:
        assert outcome.result.returncode == 0, shown
    else:
        assert outcome.result.returncode != 0, shown
        messages = [line for line in output.splitlines() if line.startswith("error:")]
        # the native provider names the property as its schema does (memoryMib)
        named = {prop, re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), prop)}
        mine = [m for m in messages if any(f"{name}: " in m for name in named)]
        assert mine, shown
        assert any(re.search(allowed, m) for m in mine), shown
    # a preview never creates: libvirt and the disk hold exactly what they held before
    assert outcome.libvirt_after == outcome.libvirt_before, shown
    assert outcome.files_after == outcome.files_before, shown


def test_the_table_covers_every_kind_of_bad_input_the_contract_lists() -> None:
    ids = {c.id for c in CASES}
    for needed in ("td-name-slash", "td-name-dotdot", "td-name-space",
                   "td-name-xml-metacharacters", "td-name-too-long", "base-source-relative",
                   "base-source-missing", "td-kernel-missing", "td-initrd-missing",
                   "td-firmware-missing", "td-template-missing", "memory-zero",
                   "memory-negative", "memory-fraction", "memory-above-host", "vcpus-zero",
                   "vcpus-negative", "vcpus-fraction", "vcpus-above-host", "gpu-bdf-malformed",
                   "gpu-bdf-duplicate", "gpu-bdf-absent-on-this-host", "ssh-port-too-high",
                   "td-uri-xen", "template-syntax-error", "template-not-xml",
                   "tdx-on-a-host-without-tdx", "overlay-below-existing-base",
                   "overlay-below-base-of-this-update", "base-sha256-mismatch"):
        assert needed in ids

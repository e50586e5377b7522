"""Domain XML: render our Jinja2 templates (or the user's), parse back with lxml, validate.

Validation uses the installed libvirt's RelaxNG schema for everything it knows. libvirt 9.0 does
not know ``<launchSecurity type='tdx'>``, so that element is checked structurally (both QGS
dialects) and removed from the copy handed to the schema.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from lxml import etree

from .errors import InputError
from .metadata import NAMESPACE, Owner
from .validation import PciAddress

TEMPLATE_DIR = Path(__file__).with_name("templates")
SCHEMA_PATH = Path("/usr/share/libvirt/schemas/domain.rng")
# Canonical's default TD policy: SEPT_VE_DISABLE (bit 28), no debug.
DEFAULT_TDX_POLICY = 0x10000000


@dataclass(frozen=True)
class BackingLayer:
    path: str
    format: str


@dataclass(frozen=True)
class Disk:
    path: str
    backing_chain: tuple[BackingLayer, ...] = ()


@dataclass(frozen=True)
class QuoteGenerationService:
    """Either a unix socket ``path`` (upstream libvirt >= 11.6) or a vsock address (Canonical)."""

    path: str | None = None
    vsock_cid: int | None = None
    vsock_port: int | None = None


@dataclass(frozen=True)
class SshForward:
    host_port: int = 0
    bind_address: str = "127.0.0.1"


@dataclass(frozen=True)
class DomainSpec:
    """Everything a template may use. Field names are the template variables (documented API)."""

    name: str
    owner: Owner
    memory_mib: int
    vcpus: int
    disk: Disk
    tdx: bool = True
    domain_type: str = "kvm"
    firmware: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    gpus: tuple[PciAddress, ...] = ()
    ssh: SshForward = field(default_factory=SshForward)
    network: str | None = None
    vsock: bool = True
    cid: int | None = None
    qgs: QuoteGenerationService | None = None
    console_log: str | None = None
    shutdown_timeout: int = 60
    tdx_policy: int = DEFAULT_TDX_POLICY

    def template_vars(self) -> dict[str, object]:
        variables = {name: getattr(self, name) for name in self.__dataclass_fields__}
        variables["metadata_ns"] = NAMESPACE
        return variables


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@functools.cache
def _builtin_environment() -> jinja2.Environment:
    return _environment(jinja2.FileSystemLoader(str(TEMPLATE_DIR)))


def render(spec: DomainSpec, template: str | None = None) -> str:
    """Render the domain XML. ``template`` is a user template path that replaces ours; it may
    ``{% include %}`` our partials (``_common_devices.xml.j2`` …) and sees the same variables."""
    try:
        if template is None:
            name = "trust_domain.xml.j2" if spec.tdx else "regular_vm.xml.j2"
            return _builtin_environment().get_template(name).render(spec.template_vars())
        user_dir = str(Path(template).parent)
        env = _environment(jinja2.FileSystemLoader([user_dir, str(TEMPLATE_DIR)]))
        return env.get_template(Path(template).name).render(spec.template_vars())
    except jinja2.TemplateError as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise InputError("template", f"does not render{where}: {exc}") from exc
    except (UnicodeDecodeError, TypeError, ValueError, ArithmeticError) as exc:
        # a user template is code: its runtime errors are still errors of the template
        raise InputError("template", f"does not render: {type(exc).__name__}: {exc}") from exc


@functools.cache
def _schema() -> etree.RelaxNG | None:
    if not SCHEMA_PATH.exists():
        return None
    return etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))


def parse(xml: str, field_name: str = "template") -> etree._Element:
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        return etree.fromstring(xml.encode(), parser)
    except etree.XMLSyntaxError as exc:
        raise InputError(field_name, f"renders XML that does not parse: {exc}") from exc


def check_launch_security(launch_security: etree._Element) -> None:
    """Structural check of ``<launchSecurity type='tdx'>`` (unknown to libvirt 9.0's schema)."""
    problems: list[str] = []
    policy = (launch_security.findtext("policy") or "").strip()
    if not policy:
        problems.append("<policy> is missing")
    else:
        try:
            int(policy, 0)
        except ValueError:
            problems.append(f"<policy> {policy!r} is not a number")
    qgs_elements = launch_security.findall("quoteGenerationService")
    if len(qgs_elements) > 1:
        problems.append("more than one <quoteGenerationService>")
    for qgs in qgs_elements:
        sockets = qgs.findall("SocketAddress")
        if qgs.get("path") is not None and sockets:
            problems.append("<quoteGenerationService> has both path= and <SocketAddress>")
        elif qgs.get("path") is not None:
            if not qgs.get("path", "").startswith("/"):
                problems.append("quoteGenerationService path must be absolute")
        elif len(sockets) == 1:
            sock = sockets[0]
            if sock.get("type") != "vsock" or not (sock.get("cid") or "").isdigit() or not (
                sock.get("port") or ""
            ).isdigit():
                problems.append("<SocketAddress> needs type='vsock' and numeric cid and port")
        else:
            problems.append("<quoteGenerationService> needs path= or one <SocketAddress>")
    unknown = {child.tag for child in launch_security} - {"policy", "quoteGenerationService"}
    if unknown:
        problems.append(f"unexpected elements {sorted(unknown)}")
    if problems:
        raise InputError("template", "invalid <launchSecurity type='tdx'>: " + "; ".join(problems))


def validate(xml: str, field_name: str = "template") -> etree._Element:
    """Parse and validate domain XML; return the parsed tree (launchSecurity included)."""
    root = parse(xml, field_name)
    if root.tag != "domain":
        raise InputError(field_name, f"renders <{root.tag}>, expected <domain>")
    for name_el in ("name", "memory", "vcpu", "os", "devices"):
        if root.find(name_el) is None:
            raise InputError(field_name, f"renders a <domain> without <{name_el}>")
    candidate = etree.fromstring(etree.tostring(root))
    for launch_security in candidate.findall("launchSecurity"):
        if launch_security.get("type") == "tdx":
            check_launch_security(launch_security)
            candidate.remove(launch_security)
    schema = _schema()
    if schema is None:
        return root
    if not schema.validate(candidate):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[-3:])
        raise InputError(field_name, f"renders XML that libvirt's domain schema rejects: {errors}")
    return root


def render_and_validate(spec: DomainSpec, template: str | None = None) -> str:
    xml = render(spec, template)
    validate(xml)
    return xml


def to_string(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")

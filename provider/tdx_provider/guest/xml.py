"""Domain XML: render our Jinja2 templates (or the user's), parse back with lxml, validate.

Validation uses the target host's own RelaxNG schema (see :func:`schema_for_uri`):

- a libvirt whose schema knows ``<launchSecurity type='tdx'>`` (upstream >= 11.6) validates the
  whole document, launchSecurity included;
- a schema that does not know it (Debian 12's libvirt 9.0), or the local schema standing in for a
  remote host's, validates everything else: launchSecurity is checked structurally (both QGS
  dialects) and removed from the copy handed to the schema.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from lxml import etree

from tdx_provider import defaults
from tdx_provider.errors import InputError
from tdx_provider.metadata import NAMESPACE, Owner
from tdx_provider.readers._base import parse_xml
from tdx_provider.readers.domain import Domain, LaunchSecurity
from tdx_provider.validation import PciAddress

TEMPLATE_DIR = Path(__file__).with_name("templates")
SCHEMA_DIR = Path("/usr/share/libvirt/schemas")
SCHEMA_PATH = SCHEMA_DIR / "domain.rng"
# TD attributes (libvirt's <policy>, QEMU's tdx-guest attributes): bit 0 DEBUG, bit 28
# SEPT_VE_DISABLE. The default (Canonical's, QEMU's) is SEPT_VE_DISABLE without debug.
POLICY_DEBUG = 1 << 0
POLICY_SEPT_VE_DISABLE = 1 << 28
DEFAULT_TDX_POLICY = POLICY_SEPT_VE_DISABLE
MEASUREMENT_ELEMENTS = ("mrConfigId", "mrOwner", "mrOwnerConfig")


@dataclass(frozen=True)
class BackingLayer:
    path: str
    format: str


@dataclass(frozen=True)
class Disk:
    path: str
    backing_chain: tuple[BackingLayer, ...] = ()


@dataclass(frozen=True)
class SeedDisk:
    """A cloud-init NoCloud seed (``cidata`` image), attached read-only on virtio."""

    path: str
    instance_id: str | None = None


@dataclass(frozen=True)
class QuoteGenerationService:
    """Either a unix socket ``path`` (upstream libvirt >= 11.6) or a vsock address (Canonical)."""

    path: str | None = None
    vsock_cid: int | None = None
    vsock_port: int | None = None


@dataclass(frozen=True)
class SshForward:
    host_port: int = 0
    bind_address: str = defaults.SSH_BIND_ADDRESS


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
    shutdown_timeout: int = defaults.SHUTDOWN_TIMEOUT
    tdx_policy: int = DEFAULT_TDX_POLICY
    # 48-byte values (SHA-384 digests) as base64, which is what libvirt's parser takes
    mr_config_id: str | None = None
    mr_owner: str | None = None
    mr_owner_config: str | None = None
    seed: SeedDisk | None = None

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


@dataclass(frozen=True)
class Schema:
    """Where the target host's domain schema lives, and whether it may judge launchSecurity
    (it may when it is that host's own schema and it knows TDX)."""

    directory: Path
    launch_security: bool
    origin: str

    @property
    def path(self) -> Path:
        return self.directory / "domain.rng"


def schema_knows_tdx(directory: Path) -> bool:
    """True when the schema in ``directory`` defines ``<launchSecurity type='tdx'>``."""
    try:
        return "<value>tdx</value>" in (directory / "domaincommon.rng").read_text()
    except OSError:
        return False


def socket_root(uri: str) -> Path | None:
    """For ``...?socket=<root>/run/libvirt/...`` (a daemon chrooted on this machine), ``<root>``
    when it holds a libvirt schema; else None."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(uri)
    if parts.netloc:
        return None
    sockets = parse_qs(parts.query).get("socket")
    if not sockets:
        return None
    path = Path(sockets[-1])
    run = next((parent for parent in path.parents if parent.name == "run"), None)
    if run is None:
        return None
    root = run.parent.parent if run.parent.name == "var" else run.parent
    if root == Path("/") or not (root / SCHEMA_DIR.relative_to("/") / "domain.rng").is_file():
        return None
    return root


def schema_for_uri(uri: str) -> Schema:
    """The schema that judges XML for the host behind ``uri``.

    - a socket inside a directory tree holding libvirt (a chrooted daemon on this machine):
      that tree's ``usr/share/libvirt/schemas``;
    - any other URI without a host part: this machine's installed schema;
    - a remote host (``qemu+ssh://host/system``): its schema is not readable from here, so this
      machine's schema checks everything but launchSecurity (checked structurally and by the
      QGS dialect rule); the remote libvirt still validates with its own schema at define
      (``VIR_DOMAIN_DEFINE_VALIDATE``).
    """
    from urllib.parse import urlsplit

    root = socket_root(uri)
    if root is not None:
        directory = root / SCHEMA_DIR.relative_to("/")
        return Schema(directory, schema_knows_tdx(directory), f"{directory} (the daemon's root)")
    if urlsplit(uri).netloc:
        return Schema(SCHEMA_DIR, False, f"{SCHEMA_DIR} (this machine's, standing in for the "
                      "remote host's; launchSecurity checked structurally)")
    return local_schema()


def local_schema() -> Schema:
    """This machine's installed schema."""
    return Schema(SCHEMA_DIR, schema_knows_tdx(SCHEMA_DIR), str(SCHEMA_DIR))


@functools.cache
def _compiled(path: Path) -> etree.RelaxNG | None:
    if not path.exists():
        return None
    return etree.RelaxNG(etree.parse(str(path)))


def parse(xml: str, field_name: str = "template") -> etree._Element:
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        return etree.fromstring(xml.encode(), parser)
    except etree.XMLSyntaxError as exc:
        raise InputError(field_name, f"renders XML that does not parse: {exc}") from exc


def check_launch_security(launch_security: LaunchSecurity) -> None:
    """Structural check of ``<launchSecurity type='tdx'>`` (unknown to libvirt 9.0's schema)."""
    problems: list[str] = []
    policy = launch_security.policy or ""
    if not policy:
        problems.append("<policy> is missing")
    else:
        try:
            int(policy, 0)
        except ValueError:
            problems.append(f"<policy> {policy!r} is not a number")
    qgs_elements = launch_security.quote_generation_services
    if len(qgs_elements) > 1:
        problems.append("more than one <quoteGenerationService>")
    for qgs in qgs_elements:
        sockets = qgs.sockets
        if qgs.path is not None and sockets:
            problems.append("<quoteGenerationService> has both path= and <SocketAddress>")
        elif qgs.path is not None:
            if not qgs.path.startswith("/"):
                problems.append("quoteGenerationService path must be absolute")
        elif len(sockets) == 1:
            sock = sockets[0]
            if sock.type != "vsock" or not (sock.cid or "").isdigit() or not (
                sock.port or ""
            ).isdigit():
                problems.append("<SocketAddress> needs type='vsock' and numeric cid and port")
        else:
            problems.append("<quoteGenerationService> needs path= or one <SocketAddress>")
    children = launch_security.children
    for tag in MEASUREMENT_ELEMENTS:
        for element in (child for child in children if child.tag == tag):
            problem = _measurement_problem(element.text or "")
            if problem:
                problems.append(f"<{tag}> {problem}")
    known = {"policy", "quoteGenerationService", *MEASUREMENT_ELEMENTS}
    unknown = {child.tag for child in children} - known
    if unknown:
        problems.append(f"unexpected elements {sorted(unknown)}")
    if problems:
        raise InputError("template", "invalid <launchSecurity type='tdx'>: " + "; ".join(problems))


def _measurement_problem(text: str) -> str | None:
    import base64
    import binascii

    try:
        size = len(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        return "is not base64"
    return None if size == 48 else f"must be base64 of 48 bytes (decodes to {size})"


def validate(xml: str, field_name: str = "template", schema: Schema | None = None
             ) -> etree._Element:
    """Parse and validate domain XML against ``schema`` (default: this machine's); return the
    parsed tree (launchSecurity included)."""
    schema = schema or local_schema()
    root = parse(xml, field_name)
    if root.tag != "domain":
        raise InputError(field_name, f"renders <{root.tag}>, expected <domain>")
    domain = Domain(root)
    for name_el, present in (("name", domain.name), ("memory", domain.memory),
                             ("vcpu", domain.vcpu), ("os", domain.os),
                             ("devices", domain.devices)):
        if present is None:
            raise InputError(field_name, f"renders a <domain> without <{name_el}>")
    candidate = etree.fromstring(etree.tostring(root))
    for element in list(candidate.iterchildren("launchSecurity")):
        launch_security = LaunchSecurity(element)
        if launch_security.type == "tdx":
            check_launch_security(launch_security)
            if not schema.launch_security:
                candidate.remove(element)
    relaxng = _compiled(schema.path)
    if relaxng is None:
        return root
    if not relaxng.validate(candidate):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(relaxng.error_log)[-3:])
        raise InputError(field_name, f"renders XML that libvirt's domain schema rejects "
                         f"(schema: {schema.origin}): {errors}")
    return root


def render_and_validate(spec: DomainSpec, template: str | None = None,
                        schema: Schema | None = None) -> str:
    xml = render(spec, template)
    validate(xml, schema=schema)
    return xml


def to_string(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")


def with_uuid(document: str, uuid: str) -> str:
    """``document`` (domain XML) with its ``<uuid>`` set to ``uuid``, added when missing."""
    root = parse_xml(document)
    element = root.find("uuid")
    if element is None:
        element = etree.Element("uuid")
        root.insert(0, element)  # any position: the schema interleaves <uuid> and <name>
    element.text = uuid
    return etree.tostring(root, encoding="unicode")


def with_shutdown_timeout(instance: str, timeout: int) -> str:
    """Our metadata element (as ``virDomain.metadata`` returns it) with a new shutdown
    timeout; everything else in it is kept as it is."""
    root = parse_xml(instance)
    shutdown = root.find("{*}shutdown")
    if shutdown is None:
        shutdown = etree.SubElement(root, "shutdown")
    shutdown.set("timeout", str(timeout))
    return etree.tostring(root, encoding="unicode")


def indented(document: str) -> str:
    """The same document, indented two spaces a level: our templates leave blank lines and
    uneven indentation where optional parts are left out, which a reviewer need not read."""
    root = etree.fromstring(document.encode(), etree.XMLParser(remove_blank_text=True))
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"

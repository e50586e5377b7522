"""What a trust domain exposes: its GPUs, and consoles the host (or the network) can reach."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel

from .resources import Resource
from .rule import rule, string_list

BDF = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
# Elements of a domain template that open a console beyond the host's own pty.
GRAPHICS = re.compile(r"<graphics\b[^>]*", re.IGNORECASE)
NETWORK_CHARDEV = re.compile(
    r"<(serial|console|channel|parallel)\b[^>]*\btype\s*=\s*['\"](tcp|udp|telnet|telnets|"
    r"websocket)['\"]", re.IGNORECASE)
INCLUDE = re.compile(r"{%-?\s*include\s+['\"]([^'\"]+)['\"]")
SERIAL_KERNEL_CONSOLE = re.compile(r"(?:^|\s)console=(ttyS\d+|hvc\d+)", re.IGNORECASE)


def normalise_bdf(text: str) -> str:
    """``3b:00.0`` and ``0000:3B:00.0`` are the same GPU: ``0000:3b:00.0``."""
    match = BDF.match(text.strip())
    if not match:
        return text.strip().lower()
    domain, bus, slot, function = match.groups()
    return f"{(domain or '0000').lower()}:{bus.lower()}:{slot.lower()}.{function}"


def gpus_in_cc_mode(td: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if not td.is_trust_domain():
        return
    gpus = [normalise_bdf(str(g)) for g in td.get("gpus", [])]
    if not gpus:
        return
    setup = list(td.get("gpu_setup_command", []))
    trusted_setups = set(config.get("cc_setup_commands") or [])
    if setup and setup[0] in trusted_setups:
        return  # the site's command switches these GPUs into CC mode before the first start
    in_cc_mode = {normalise_bdf(g) for g in config.get("cc_mode_gpus") or []}
    missing = [g for g in gpus if g not in in_cc_mode]
    if missing:
        how = (f" (its {td.shown('gpu_setup_command')} {setup[0]!r} is not one of the rule's "
               "cc_setup_commands)" if setup else "")
        yield (f"{td.label()}: {td.shown('gpus')} {', '.join(missing)} not known to be in "
               f"confidential-computing mode{how}. List the GPU in the rule's cc_mode_gpus once "
               "it is in CC mode, or give a gpu_setup_command the site lists in "
               "cc_setup_commands.")


def template_consoles(path: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Graphical or network consoles in a domain template and the templates it includes
    from its own directory."""
    text = Path(path).read_text()
    found = [m.group(0).strip() + ">" for m in GRAPHICS.finditer(text)]
    found += [m.group(0) + ">" for m in NETWORK_CHARDEV.finditer(text)]
    for name in INCLUDE.findall(text):
        included = Path(path).parent / name
        if included.is_file() and str(included) not in seen:
            found += template_consoles(str(included), seen | {path})
    return found


def no_remote_console(domain: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    template = domain.get("template")
    if not template:
        return  # our own templates render a host pty console only
    try:
        found = template_consoles(str(template))
    except OSError as exc:
        yield (f"{domain.label()}: {domain.shown('template')} {template!r} cannot be read to "
               f"check it for VNC/SPICE or network consoles ({exc.strerror}).")
        return
    if found:
        yield (f"{domain.label()}: {domain.shown('template')} {template!r} opens a console "
               f"beyond the host's pty: {'; '.join(found)}. Remove it from the template.")


def serial_console_quiet(domain: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    log = domain.get("console_log")
    if log:
        yield (f"{domain.label()}: {domain.shown('console_log')} writes the guest's serial "
               f"console to {log!r} on the host. Drop it once the guest boots reliably.")
    cmdline = domain.get("cmdline")
    match = SERIAL_KERNEL_CONSOLE.search(str(cmdline or ""))
    if match:
        yield (f"{domain.label()}: {domain.shown('cmdline')} puts the kernel console on "
               f"{match.group(1)} (console={match.group(1)}), which the host reaches with "
               "`virsh console`; systemd starts a login prompt there. Drop console= from "
               "the command line, or disable serial-getty in the image.")


GPUS_IN_CC_MODE = rule(
    name="td-gpus-in-cc-mode",
    description=("Every GPU passed to a trust domain is in confidential-computing mode: either "
                 "the site lists it as switched (cc_mode_gpus) or the TD's gpu_setup_command is "
                 "a command the site trusts to switch it (cc_setup_commands). A GPU outside CC "
                 "mode exposes the TD's data in GPU memory and on the bus."),
    level=EnforcementLevel.MANDATORY, kinds=("TrustDomain",), check=gpus_in_cc_mode,
    config={
        "cc_mode_gpus": string_list("PCI addresses (DDDD:BB:SS.F) of GPUs known to be in CC "
                                    "mode on the site's hosts."),
        "cc_setup_commands": string_list("Programs (argv[0] of gpu_setup_command) trusted to "
                                         "put the TD's GPUs into CC mode before the first "
                                         "start."),
    },
)

NO_REMOTE_CONSOLE = rule(
    name="domain-no-remote-console",
    description=("A domain opens no VNC/SPICE display and no network console (serial over tcp, "
                 "udp, telnet): those reach the guest from outside the host without going "
                 "through its own login. Only a custom template can add one."),
    level=EnforcementLevel.MANDATORY, kinds=("TrustDomain",), check=no_remote_console,
)

SERIAL_CONSOLE_QUIET = rule(
    name="domain-serial-console-quiet",
    description=("A domain's serial console is not left open: no console_log file on the host "
                 "and no console=ttyS*/hvc* on the kernel command line (which starts a login "
                 "prompt the host can reach). Advisory: a serial console is often needed "
                 "while an image is brought up."),
    level=EnforcementLevel.ADVISORY, kinds=("TrustDomain",), check=serial_console_quiet,
)

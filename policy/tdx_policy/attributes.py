"""TD attributes and the TD itself: debug off, SEPT #VE disabled, no regular VM by accident."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from .resources import Resource
from .rule import rule, string_list


def debug_off(td: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if td.is_trust_domain() and td.get("debug") is True:
        yield (f"{td.label()}: {td.shown('debug')} is true. Set it to false; a debug TD is for "
               "a developer's own machine, never for data that must stay confidential.")


def sept_ve_disabled(td: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if td.is_trust_domain() and td.get("sept_ve_disable", True) is False:
        yield (f"{td.label()}: {td.shown('sept_ve_disable')} is false. Set it to true (the "
               "default) unless the guest kernel is built to handle #VE on EPT violations.")


def not_a_regular_vm(vm: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if vm.kind != "TrustDomain" or vm.get("tdx", True) is not False:
        return
    allowed = config.get("allowed_regular_vms") or []
    names = [vm.name] + [n for n in [_physical_name(vm)] if n]
    if any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in allowed):
        return
    yield (f"{vm.label()}: {vm.shown('tdx')} is false, so this is a regular VM whose memory and "
           "state the host can read. Remove tdx=false, or list this resource in the rule's "
           "allowed_regular_vms if a regular VM is intended.")


def _physical_name(resource: Resource) -> str | None:
    value = resource.get("name")
    return value if isinstance(value, str) else None


DEBUG_OFF = rule(
    name="td-debug-off",
    description=("A trust domain runs without the DEBUG attribute (debug=false): with DEBUG set, "
                 "the host can read and change the TD's memory and CPU state, and every quote "
                 "says so."),
    level=EnforcementLevel.MANDATORY, kinds=("TrustDomain",), check=debug_off,
)

SEPT_VE_DISABLED = rule(
    name="td-sept-ve-disabled",
    description=("A trust domain keeps SEPT_VE_DISABLE set (sept_ve_disable=true): without it "
                 "the host can inject #VE exceptions through EPT violations, a known attack "
                 "surface for guests that do not expect them."),
    level=EnforcementLevel.MANDATORY, kinds=("TrustDomain",), check=sept_ve_disabled,
)

NOT_A_REGULAR_VM = rule(
    name="td-not-a-regular-vm",
    description=("A TrustDomain resource is a trust domain (tdx=true) unless the site allows "
                 "that one to be a regular VM: a regular VM offers no memory confidentiality "
                 "and no attestation."),
    level=EnforcementLevel.MANDATORY, kinds=("TrustDomain",), check=not_a_regular_vm,
    config={"allowed_regular_vms": string_list(
        "Resource or domain names (shell-style patterns) that may be regular VMs (tdx=false).")},
)

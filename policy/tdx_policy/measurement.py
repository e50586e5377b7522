"""The measurement a relying party checks: allowed firmware, and the MRTD it pinned."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from .resources import Resource
from .rule import rule, string_list, string_map

MRTD_PATTERN = r"^(0x)?[0-9a-fA-F]{96}$"


def normalise_mrtd(value: str) -> str:
    text = value.strip().lower()
    return text[2:] if text.startswith("0x") else text


def pins_for(td: Resource, firmware: str | None,
             config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where the pin comes from, pinned MRTD) for this TD: by resource or domain name, and by
    its firmware path."""
    pins: list[tuple[str, str]] = []
    by_name = config.get("pinned_mrtd") or {}
    physical = td.get("name")
    for key in dict.fromkeys([td.name, physical]):
        if isinstance(key, str) and key in by_name:
            pins.append((f"pinned_mrtd[{key!r}]", normalise_mrtd(by_name[key])))
    by_firmware = config.get("pinned_mrtd_by_firmware") or {}
    if firmware and firmware in by_firmware:
        pins.append((f"pinned_mrtd_by_firmware[{firmware!r}]",
                     normalise_mrtd(by_firmware[firmware])))
    return pins


def expected_mrtd(td: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if not td.is_trust_domain():
        return
    firmware = td.get("firmware")
    allowed = config.get("allowed_firmware") or []
    if allowed and firmware not in allowed:
        shown = repr(firmware) if firmware else "none (the host has not picked one)"
        yield (f"{td.label()}: {td.shown('firmware')} {shown} is not one of the rule's "
               f"allowed_firmware ({', '.join(allowed)}).")
    pins = pins_for(td, firmware, config)
    if not pins:
        return
    mrtd = td.get("mrtd")
    if not mrtd:
        yield (f"{td.label()}: {td.shown('mrtd')} cannot be computed here (a remote host's "
               f"firmware is not readable, or the firmware is invalid), so the pinned "
               f"{pins[0][0]} cannot be confirmed. Measure it with `tdxctl measure` on the host.")
        return
    for source, pinned in pins:
        if normalise_mrtd(str(mrtd)) != pinned:
            yield (f"{td.label()}: {td.shown('mrtd')} drifted from the pinned value: "
                   f"{source} is {pinned}, this preview computes {normalise_mrtd(str(mrtd))} "
                   f"from {td.shown('firmware')} {firmware!r}. Quotes of this TD will not verify "
                   "until the relying party pins the new value (or the firmware goes back).")


EXPECTED_MRTD = rule(
    name="td-expected-mrtd",
    description=("A trust domain boots firmware the site allows, and the MRTD its quotes will "
                 "carry (computed at preview from that firmware) equals the value the relying "
                 "party pinned for it."),
    level=EnforcementLevel.MANDATORY, kinds=("TrustDomain",), check=expected_mrtd,
    config={
        "allowed_firmware": string_list("Firmware (TDVF) paths a trust domain may boot; empty: "
                                        "any."),
        "pinned_mrtd": string_map("MRTD (96 hex digits) pinned per resource or domain name.",
                                  MRTD_PATTERN),
        "pinned_mrtd_by_firmware": string_map("MRTD (96 hex digits) pinned per firmware path.",
                                              MRTD_PATTERN),
    },
)

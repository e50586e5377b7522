"""Per-guest teardown records: what the guest's console and libvirt's events show versus what
our delete reports.

All times are host ``time.monotonic()`` seconds. For one guest:

    requested      the ACPI request was about to be sent (known only when the benchmark itself
                   calls delete; inside ``pulumi destroy`` the provider process sends it)
    acpi_seen      the guest's ACPI marker appeared in its console log (acpid ran the action)
    powered_down   "reboot: Power down" appeared in the console log (the guest's last word)
    stopped        libvirt's STOPPED event: QEMU has exited, the domain is shut off
    undefined      libvirt's UNDEFINED event: our delete has finished its libvirt work
    reported       the seconds our delete says it waited ("stopped by ACPI after X s")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# The provider's log line (tdx_provider/dynamic/trust_domain.py, delete).
REPORT_LINE = re.compile(
    r"(?P<name>[A-Za-z0-9._-]+): (?P<how>stopped by ACPI|forced off \(ACPI timed out\)) "
    r"after (?P<seconds>[0-9.]+) s, undefined"
)


@dataclass
class GuestTeardown:
    name: str
    requested: float | None = None
    returned: float | None = None
    acpi_seen: float | None = None
    powered_down: float | None = None
    qemu_shutdown: float | None = None
    stopped: float | None = None
    undefined: float | None = None
    reported: float | None = None
    graceful: bool | None = None
    acpi_offset: float | None = None  # acpi_seen minus the first acpi_seen of the run

    def derived(self) -> dict[str, float | None]:
        def span(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round(b - a, 3)

        request_to_off = span(self.requested, self.stopped)
        guest_shutdown = span(self.acpi_seen, self.stopped)
        return {
            # The guest's own view: from handling the ACPI button to its last console line.
            "console_acpi_to_power_down": span(self.acpi_seen, self.powered_down),
            # From the guest handling ACPI to libvirt reporting shut-off (guest + QEMU exit).
            "guest_shutdown": guest_shutdown,
            # From QEMU reporting the guest's power-off to libvirt's shut-off (libvirt + QEMU).
            "qemu_exit": span(self.qemu_shutdown, self.stopped),
            # Known when the benchmark sent the request itself.
            "request_to_acpi_seen": span(self.requested, self.acpi_seen),
            "request_to_off": request_to_off,
            "delete_wall": span(self.requested, self.returned),
            "reported": self.reported,
            # How long after shut-off our delete noticed and undefined (polling + undefine).
            "off_to_undefined": span(self.stopped, self.undefined),
            # What our report adds on top of what the guest took (request delivery + polling);
            # available inside pulumi destroy too.
            "reported_minus_guest": (
                round(self.reported - guest_shutdown, 3)
                if self.reported is not None and guest_shutdown is not None else None
            ),
            # What our report adds on top of the true request-to-off time.
            "reported_minus_true": (
                round(self.reported - request_to_off, 3)
                if self.reported is not None and request_to_off is not None else None
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        """Durations only: absolute monotonic stamps mean nothing outside this process."""
        return {"name": self.name, "graceful": self.graceful, "acpi_offset": self.acpi_offset,
                **self.derived()}


def from_observers(names: list[str], console: Any, events: Any,
                   base: dict[str, GuestTeardown] | None = None) -> list[GuestTeardown]:
    """Merge console and libvirt-event observations into (possibly existing) records."""
    records = []
    for name in names:
        record = (base or {}).get(name) or GuestTeardown(name)
        seen = console.times(name)
        record.acpi_seen = seen.get("acpi_seen")
        record.powered_down = seen.get("powered_down")
        happened = events.times(name)
        record.qemu_shutdown = happened.get("qemu_shutdown")
        record.stopped = happened.get("stopped")
        record.undefined = happened.get("undefined")
        records.append(record)
    seen = [r.acpi_seen for r in records if r.acpi_seen is not None]
    for record in records:
        if record.acpi_seen is not None:
            record.acpi_offset = round(record.acpi_seen - min(seen), 3)
    return records


def parse_reports(text: str) -> dict[str, tuple[float, bool]]:
    """name -> (seconds, graceful) from provider log lines in ``pulumi destroy`` output."""
    found = {}
    for match in REPORT_LINE.finditer(text):
        found[match["name"]] = (float(match["seconds"]), match["how"] == "stopped by ACPI")
    return found


def summarise(records: list[GuestTeardown]) -> dict[str, float | None]:
    """Span of the whole guest teardown and the slowest single guest, for one run."""
    def pick(key: str) -> list[float]:
        return [v for r in records if (v := r.derived()[key]) is not None]

    starts = [s for r in records if (s := r.requested or r.acpi_seen) is not None]
    ends = [r.undefined for r in records if r.undefined is not None]
    guest = pick("guest_shutdown")
    return {
        "guests": len(records),
        # First ACPI request (or, inside pulumi destroy, first ACPI seen) to the last undefine.
        "teardown_span": round(max(ends) - min(starts), 3) if starts and ends else None,
        "slowest_guest_shutdown": max(guest) if guest else None,
        "max_console_acpi_to_power_down": max(pick("console_acpi_to_power_down"), default=None),
        "max_qemu_exit": max(pick("qemu_exit"), default=None),
        "max_reported": max(pick("reported"), default=None),
        "max_reported_minus_guest": max(pick("reported_minus_guest"), default=None),
        "max_off_to_undefined": max(pick("off_to_undefined"), default=None),
        "max_reported_minus_true": max(pick("reported_minus_true"), default=None),
    }

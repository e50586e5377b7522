"""The pack: its name and its rules, one per concern (docs/policy.md)."""

from __future__ import annotations

from pulumi_policy import Policy

from .attributes import DEBUG_OFF, NOT_A_REGULAR_VM, SEPT_VE_DISABLED
from .devices import GPUS_IN_CC_MODE, NO_REMOTE_CONSOLE, SERIAL_CONSOLE_QUIET
from .measurement import EXPECTED_MRTD
from .storage import ALLOWED_POOLS, BASE_IMAGE_CHECKSUM

NAME = "tdx-trust-domains"
POLICIES: list[Policy] = [
    DEBUG_OFF, SEPT_VE_DISABLED, NOT_A_REGULAR_VM, GPUS_IN_CC_MODE, EXPECTED_MRTD,
    NO_REMOTE_CONSOLE, SERIAL_CONSOLE_QUIET, BASE_IMAGE_CHECKSUM, ALLOWED_POOLS,
]

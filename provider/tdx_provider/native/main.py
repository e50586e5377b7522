"""Entry point of the ``pulumi-resource-tdx`` plugin executable.

PLACEHOLDER (infra branch): the real gRPC provider server replaces this module. Until then the
plugin says so and exits non-zero, so that Pulumi reports a failed plugin instead of hanging on a
handshake that never comes.
"""

from __future__ import annotations

import sys

PLACEHOLDER_MESSAGE = (
    "pulumi-resource-tdx: the native tdx provider is not built yet "
    "(tdx_provider.native.main is a placeholder); use the dynamic providers (pulumi_tdx)"
)


def main(argv: list[str] | None = None) -> int:
    """Print why nothing is served and fail; ``argv`` is what Pulumi passes (engine address)."""
    del argv
    print(PLACEHOLDER_MESSAGE, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

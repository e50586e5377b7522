"""``python -m bench.soak`` (``make soak``): see the package docstring and docs/reliability.md."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from tests.support.hosts import upstream_uri

from .daemons import HOSTS, host_of_uri
from .runner import Settings, run


def parse(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float,
                        default=float(os.environ.get("SOAK_MINUTES") or 20),
                        help="how long the stacks cycle (SOAK_MINUTES; default 20)")
    parser.add_argument("--host", choices=HOSTS, default=os.environ.get("SOAK_HOST") or None,
                        help="a private daemon of this libvirt (SOAK_HOST; default debian)")
    parser.add_argument("--uri", default=os.environ.get("SOAK_URI") or None,
                        help="SOAK_URI: the Debian or upstream host's URI picks that host (still "
                        "a private daemon of it); any other URI is used as is, never restarted")
    parser.add_argument("--seed", type=int,
                        default=int(os.environ.get("SOAK_SEED") or secrets.randbelow(10**6)))
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--overlays", type=int, default=3)
    parser.add_argument("--release-chance", type=float,
                        default=float(os.environ.get("SOAK_RELEASE_CHANCE") or 0.4),
                        help="chance that a cycle has the operator delete the stack's guests "
                        "(and hot-plug its released overlay into the other stack's guest); "
                        "SOAK_RELEASE_CHANCE")
    parser.add_argument("--strict", action="store_true",
                        default=bool(os.environ.get("SOAK_STRICT")),
                        help="also exit non-zero on a real failure (SOAK_STRICT=1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the run's files")
    args = parser.parse_args(argv)
    host, uri = args.host, None
    if host is None and args.uri:
        host = host_of_uri(args.uri, upstream_uri())
        uri = None if host else args.uri
    if host is None and uri is None:
        host = "debian"
    return Settings(args.minutes, host, uri, args.seed, args.stacks, args.overlays, args.json,
                    args.keep, args.release_chance, args.strict)


def main(argv: list[str] | None = None) -> int:
    return run(parse(argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""``tdxctl render INPUTS.json``: the domain XML a TrustDomain with these inputs would define.

The checks and the render are :mod:`tdx_provider.resources.trust_domain_render` (the
provider's own preview checks); this module only reads the options and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tdx_provider.connection import DEFAULT_URI
from tdx_provider.resources import trust_domain_render as render
from tdx_provider.tdxctl.base import PROG, Command, CommandError, ExitCode, add_root_option


class RenderCommand(Command):
    common_options = False  # its --uri is the host to render for, and it prints XML only

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("inputs", type=Path, metavar="INPUTS.json",
                            help="a JSON object of TrustDomain inputs (the SDK's keywords)")
        parser.add_argument("--uri", dest="render_uri", default=None,
                            help="the host to render for (default: the inputs' uri, else "
                                 f"{DEFAULT_URI})")
        add_root_option(parser, "host root for the TDX readiness warnings (as host-check)")

    def run(self, args: argparse.Namespace) -> int:
        uri = args.render_uri or (args.uri if args.uri != DEFAULT_URI else None)
        try:
            rendered = render.render_inputs(render.load_inputs(args.inputs), uri, args.root)
        except render.RenderInputError as exc:
            raise CommandError(*(f"render: {failure}" for failure in exc.failures)) from exc
        for warning in rendered.warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        sys.stdout.write(rendered.xml)
        return ExitCode.OK

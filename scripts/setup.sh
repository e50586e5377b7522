#!/usr/bin/env bash
# make setup: everything the demo and the tests need, idempotent and quick when done.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"

step() { printf '==> %s\n' "$*"; }

step "host packages and libvirtd"
bash scripts/setup-host.sh

step "Python environment (.venv)"
# Reinstall only when the project metadata changed.
stamp=.venv/.pulumi-tdx-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,lint,policy]'
  echo "$want" >"$stamp"
fi

step "Pulumi CLI and Python plugins (.venv/bin)"
bash scripts/install-pulumi.sh .venv/bin
pulumi version

step "TypeScript SDK (sdk/nodejs/bin) and examples/typescript/node_modules"
bash scripts/setup-typescript.sh

step "tiny test guest ($PULUMI_TDX_CACHE/guest)"
bash scripts/build-test-guest.sh

step "upstream libvirt host ($PULUMI_TDX_UPSTREAM_ROOT)"
bash scripts/setup-upstream-host.sh
